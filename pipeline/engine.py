"""Grid, refine and compare: requests in, tiles out, one lock around the model.

Every request renders on a per-request *view* of the cached pipeline: the same modules (same
weights in memory) with a scheduler of its own, so a request never changes what another one
sees (diffusers issues 1606, 3672, 5749). Every image gets its own generator, and its initial
noise is drawn here, so the recipe can carry a hash of it.

Runs are split into micro-batches of a fixed size: a tile's pixels depend on the shape of the
call that rendered it (batched matrix products round differently), so a tile re-rendered later
in a call of the same shape is bit-identical, and re-rendering one costs one micro-batch.

A comparison renders its schedulers in lockstep (pipeline/lockstep.py): one batched UNet call
per step for all of them; its tiles replay by rendering the whole group again.
"""

from __future__ import annotations

import gc
import inspect
import json
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from typing import Any

import torch
from diffusers import DiffusionPipeline, SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from pipeline import __version__, lockstep
from pipeline.accel import slice_vae
from pipeline.embeddings import PromptEmbeddings
from pipeline.loading import LoadedModel
from pipeline.preview import latents_to_previews
from pipeline.recipe import Recipe, tensor_sha256
from pipeline.requests import (
    CompareRequest,
    GridRequest,
    Limits,
    ModelFacts,
    RefineRequest,
    RenderSettings,
    RequestError,
    check_compare,
    check_grid,
    check_recipe,
    check_refine,
)
from pipeline.schedulers import SchedulerEntry, SchedulerError, SchedulerRegistry
from pipeline.seeds import generators

# Called with the fraction done (0..1) and a short line on what is running.
Progress = Callable[[float, str], None]
# Called with the index of the first tile shown and rough previews of the tiles being denoised.
Preview = Callable[[int, list[Image.Image]], None]

DEFAULT_MICRO_BATCH = 4


class RenderError(RuntimeError):
    """A run that could not finish, said in words a user can act on."""


class Stopped(RenderError):
    """The user pressed Stop; nothing was rendered."""


class OutOfMemory(RenderError):
    """The device ran out of memory; what could be freed was freed."""


@dataclass
class Hooks:
    """What a caller hears of a run while it renders, and how it stops one."""

    progress: Progress | None = None
    preview: Preview | None = None
    preview_every: int = 5  # steps between previews
    stop: threading.Event = field(default_factory=threading.Event)

    def part(self, done: float, share: float, first_tile: int) -> Hooks:
        """Hooks for a part of a run: `share` of the work, after `done`, from tile `first_tile`."""
        progress, preview = self.progress, self.preview
        return replace(
            self,
            progress=progress and (lambda f, text: progress(done + share * f, text)),
            preview=preview and (lambda first, images: preview(first_tile + first, images)),
        )


@dataclass(frozen=True)
class Tile:
    """One rendered image and the recipe that makes it again."""

    image: Image.Image
    recipe: Recipe
    # Its share of the call that rendered it: a batched call's seconds split evenly between
    # its tiles; a lockstep call's split by each tile's number of model evaluations.
    seconds: float
    filtered: bool = False  # the safety checker blanked it


@dataclass(frozen=True)
class _Item:
    prompt: str
    seed: int
    suffix: str | None = None


@dataclass(frozen=True)
class _Plan:
    """A render with every default filled in."""

    kind: str
    entry: SchedulerEntry
    steps: int
    negative_prompt: str
    guidance_scale: float
    width: int
    height: int
    scheduler_config: dict[str, Any] | None = None  # exact config to replay, else the entry's


class Engine:
    """The app's only way to the model; safe to share between threads."""

    def __init__(
        self,
        model: LoadedModel,
        limits: Limits | None = None,
        generator_device: str = "cpu",
        micro_batch: int | None = DEFAULT_MICRO_BATCH,
    ) -> None:
        self.model = model
        self.limits = limits or Limits()
        self.generator_device = generator_device
        self.micro_batch = micro_batch
        self.registry = SchedulerRegistry(model.pipe.scheduler)
        self.facts = ModelFacts(model.native_size, self.registry)
        self._lock = threading.Lock()
        pipe = model.pipe
        self.embeddings = PromptEmbeddings(pipe)
        # Constructor options a view must repeat (requires_safety_checker, ...), read once.
        self._view_options = {
            name: pipe.config[name]
            for name in inspect.signature(type(pipe).__init__).parameters
            if name not in pipe.components and name in pipe.config
        }
        self.device_name = _device_name(model.device)
        self.versions = {
            "seed-explorer": __version__,
            **{name: version(name) for name in ("torch", "diffusers", "transformers")},
        }

    def grid(self, request: GridRequest, hooks: Hooks | None = None) -> list[Tile]:
        """One prompt, one tile per seed, in micro-batched calls."""
        check_grid(request, self.limits, self.facts)
        plan = self._plan("grid", request.settings)
        items = [_Item(request.prompt, seed) for seed in request.seeds]
        with self._lock:
            return self._render(items, plan, hooks or Hooks())

    def refine(self, request: RefineRequest, hooks: Hooks | None = None) -> list[Tile]:
        """The pinned seed once per suffix: the composition stays, the style moves."""
        check_refine(request, self.limits, self.facts)
        plan = self._plan("refine", request.settings)
        items = [_Item(request.prompt + s, request.seed, s) for s in request.suffixes]
        with self._lock:
            return self._render(items, plan, hooks or Hooks())

    def compare(self, request: CompareRequest, hooks: Hooks | None = None) -> list[Tile]:
        """The pinned seed once per scheduler, each at its own step count, all in lockstep."""
        check_compare(request, self.limits, self.facts)
        hooks = hooks or Hooks()
        own_steps = {
            self._entry(name, "Steps per scheduler").name: steps
            for name, steps in request.scheduler_steps
        }
        plans = []
        for name in request.schedulers:
            entry = self._entry(name, "Schedulers")
            steps = request.settings.steps or own_steps.get(entry.name)
            settings = replace(request.settings, scheduler=entry.name, steps=steps)
            plans.append(self._plan("compare", settings))
        item = _Item(request.prompt, request.seed)
        with self._lock:
            return self._lockstep(item, plans, hooks)

    def replay(self, recipe: Recipe, hooks: Hooks | None = None) -> Tile:
        """One recipe again, in a call of the shape that rendered it: bit-exact on the same
        machine and software."""
        return self.replay_call(recipe, hooks)[recipe.batch_index]

    def replay_call(self, recipe: Recipe, hooks: Hooks | None = None) -> list[Tile]:
        """The whole call that renders `recipe` again: a comparison's lockstep group, every
        scheduler's tile; else the recipe's tile in each place of a call of its shape."""
        check_recipe(recipe, self.limits)
        hooks = hooks or Hooks()
        item = _Item(recipe.prompt, recipe.seed, recipe.suffix)
        if recipe.lockstep is None:
            plan = self._replay_plan(recipe, recipe.sampler, recipe.scheduler_config, recipe.steps)
            with self._lock:
                tiles = self._call([item] * recipe.batch_size, plan, hooks, recipe.generator_device)
        else:
            plans = [
                self._replay_plan(recipe, lane["sampler"], lane["scheduler_config"], lane["steps"])
                for lane in recipe.lockstep["schedulers"]
            ]
            per_call = recipe.lockstep["per_call"]
            with self._lock:
                tiles = self._lockstep(item, plans, hooks, recipe.generator_device, per_call)
        return tiles

    @property
    def deterministic(self) -> bool:
        """Deterministic mode: torch's deterministic algorithms are on (--deterministic)."""
        return torch.are_deterministic_algorithms_enabled()

    def default_settings(self) -> RenderSettings:
        """The loaded model's own defaults: its scheduler and its native resolution."""
        plan = self._plan("grid", RenderSettings())
        return RenderSettings(
            scheduler=plan.entry.name, steps=plan.steps, width=plan.width, height=plan.height
        )

    def truncated(self, prompt: str) -> bool:
        """Whether the text encoder will cut the prompt's tail off (CLIP reads 77 tokens)."""
        tokenizer = self.model.pipe.tokenizer
        return len(tokenizer(prompt).input_ids) > tokenizer.model_max_length

    def _entry(self, name: str, field_name: str) -> SchedulerEntry:
        try:
            return self.registry.resolve(name)
        except SchedulerError as error:
            raise RequestError(field_name, str(error)) from None

    def _replay_plan(
        self, recipe: Recipe, sampler: str, scheduler_config: dict[str, Any], steps: int
    ) -> _Plan:
        """The recipe's settings with one of its schedulers: the recorded config, exactly."""
        try:  # the entry only names the scheduler in progress lines
            entry = self.registry.resolve(sampler)
        except SchedulerError:
            entry = self._entry(scheduler_config.get("_class_name", sampler), "Scheduler")
        return _Plan(
            kind=recipe.kind,
            entry=entry,
            steps=steps,
            negative_prompt=recipe.negative_prompt,
            guidance_scale=recipe.guidance_scale,
            width=recipe.width,
            height=recipe.height,
            scheduler_config=scheduler_config,
        )

    def _plan(self, kind: str, settings: RenderSettings) -> _Plan:
        entry = (
            self._entry(settings.scheduler, "Scheduler")
            if settings.scheduler
            else self.registry.default
        )
        native = self.model.native_size
        return _Plan(
            kind=kind,
            entry=entry,
            steps=settings.steps or entry.default_steps,
            negative_prompt=settings.negative_prompt or "",
            guidance_scale=float(settings.guidance_scale),
            width=settings.width or native,
            height=settings.height or native,
        )

    def _scheduler(self, plan: _Plan) -> SchedulerMixin:
        if plan.scheduler_config is None:
            return self.registry.make(plan.entry.name)
        return self.registry.make_exact(plan.scheduler_config)

    def _view(self, scheduler: SchedulerMixin) -> DiffusionPipeline:
        """The cached modules with a scheduler of this request's own (about 2 ms)."""
        pipe = self.model.pipe
        view = type(pipe)(**{**pipe.components, "scheduler": scheduler}, **self._view_options)
        view.set_progress_bar_config(disable=True)
        return view

    def _render(self, items: list[_Item], plan: _Plan, hooks: Hooks) -> list[Tile]:
        """Items in micro-batches of the engine's fixed size."""
        size = self.micro_batch or len(items)
        tiles = []
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            part = hooks.part(start / len(items), len(chunk) / len(items), start)
            tiles += self._call(chunk, plan, part)
        return tiles

    def _noise(self, seeds: list[int], plan: _Plan, generator_device: str) -> tuple:
        """Each image's starting noise from its own generator, as diffusers would draw it."""
        pipe = self.model.pipe
        scale = pipe.vae_scale_factor
        shape = (
            len(seeds),
            pipe.unet.config.in_channels,
            plan.height // scale,
            plan.width // scale,
        )
        gens = generators(seeds, generator_device)
        latents = randn_tensor(shape, generator=gens, device=pipe.device, dtype=pipe.unet.dtype)
        return gens, latents

    def _call(
        self, items: list[_Item], plan: _Plan, hooks: Hooks, generator_device: str | None = None
    ) -> list[Tile]:
        """One diffusers call: every item a tile, rendered together."""
        if hooks.stop.is_set():
            raise Stopped("Stopped before it started")
        generator_device = generator_device or self.generator_device
        scheduler = self._scheduler(plan)
        config = json.loads(scheduler.to_json_string())
        view = self._view(scheduler)
        label = plan.entry.name
        stopped_at = 0
        gens, latents = self._noise([i.seed for i in items], plan, generator_device)

        def on_step_end(pipe: DiffusionPipeline, step: int, timestep: Any, tensors: dict) -> dict:
            nonlocal stopped_at
            total = pipe.num_timesteps
            if hooks.progress is not None:
                hooks.progress((step + 1) / total, f"{label}: step {step + 1}/{total}")
            if hooks.stop.is_set() and not stopped_at:
                stopped_at = step + 1
                pipe._interrupt = True  # the loop skips the remaining steps
            every = hooks.preview_every
            # Not at the last step: its image is the tile itself, a moment later.
            if hooks.preview and every and (step + 1) % every == 0 and step + 1 < total:
                size = (plan.width, plan.height)
                hooks.preview(0, latents_to_previews(tensors["latents"], size))
            return tensors

        slice_vae(view, len(items))
        started = time.perf_counter()
        try:
            output = view(
                prompt_embeds=self.embeddings.batch([i.prompt for i in items]),
                negative_prompt_embeds=self.embeddings.batch([plan.negative_prompt] * len(items)),
                generator=gens,
                latents=latents,
                num_inference_steps=plan.steps,
                guidance_scale=plan.guidance_scale,
                width=plan.width,
                height=plan.height,
                callback_on_step_end=on_step_end,
            )
        except torch.OutOfMemoryError:
            raise _out_of_memory(len(items), plan) from None
        if stopped_at:
            raise Stopped(f"Stopped at step {stopped_at} of {plan.steps}")
        seconds = time.perf_counter() - started
        flags = getattr(output, "nsfw_content_detected", None) or [False] * len(items)
        shares = seconds / len(items)
        return [
            self._tile(
                image,
                flagged,
                shares,
                item,
                plan,
                config,
                generator_device,
                latents[index],
                index,
                len(items),
            )
            for index, (image, item, flagged) in enumerate(
                zip(output.images, items, flags, strict=True)
            )
        ]

    def _lockstep(
        self,
        item: _Item,
        plans: list[_Plan],
        hooks: Hooks,
        generator_device: str | None = None,
        per_call: int | None = None,
    ) -> list[Tile]:
        """One item under every plan's scheduler, denoised together (pipeline/lockstep.py).

        `per_call` lanes share a UNet call (and a VAE call): by default all of them, one UNet
        call per step (at most `limits.max_tiles` schedulers, so as much memory as a grid of
        that many tiles in one call; on a small GPU the out-of-memory message says to choose
        fewer). Each tile's `seconds` is the whole call's time split by its number of model
        evaluations (DDIM at 50 steps costs more than UniPC at 20).
        """
        if hooks.stop.is_set():
            raise Stopped("Stopped before it started")
        generator_device = generator_device or self.generator_device
        per_call = per_call or len(plans)
        first = plans[0]  # the plans differ only in scheduler and steps
        size = (first.width, first.height)
        label = first.entry.name if len(plans) == 1 else f"{len(plans)} schedulers"
        configs = []
        started = time.perf_counter()
        try:
            conditioning = lockstep.Conditioning(
                self.embeddings.batch([item.prompt]),
                self.embeddings.batch([first.negative_prompt]),
                first.guidance_scale,
            )
            lanes = []
            for plan in plans:
                scheduler = self._scheduler(plan)
                configs.append(json.loads(scheduler.to_json_string()))
                # Each lane its own generator, advanced past the same initial noise.
                gens, noise = self._noise([item.seed], plan, generator_device)
                lanes.append(lockstep.start(self._view(scheduler), plan.steps, gens, noise))
            total = sum(lane.evaluations for lane in lanes)
            longest = max(lane.evaluations for lane in lanes)
            every = hooks.preview_every
            for step in lockstep.denoise(lanes, conditioning, per_call):
                done = sum(lane.done for lane in lanes)
                if hooks.progress is not None:
                    hooks.progress(done / total, f"{label}: step {step}/{longest}")
                if hooks.stop.is_set():
                    raise Stopped(f"Stopped at step {step} of {longest}")
                # After the step's last UNet call every lane has made that step (or is done).
                whole = all(lane.finished or lane.done >= step for lane in lanes)
                if hooks.preview and every and whole and step % every == 0 and step < longest:
                    latents = torch.cat([lane.latents for lane in lanes])
                    hooks.preview(0, latents_to_previews(latents, size))
            slice_vae(lanes[0].view, per_call)
            images, flags = lockstep.decode(lanes, per_call, conditioning.prompt_embeds.dtype)
        except torch.OutOfMemoryError:
            raise _out_of_memory(len(plans), first) from None
        seconds = time.perf_counter() - started
        record = {
            "schedulers": [
                {"sampler": plan.entry.name, "scheduler_config": config, "steps": plan.steps}
                for plan, config in zip(plans, configs, strict=True)
            ],
            "per_call": per_call,
        }
        return [
            self._tile(
                image,
                flagged,
                seconds * lane.evaluations / total,
                item,
                plan,
                config,
                generator_device,
                noise[0],  # every lane's: one seed, one draw
                index,
                len(plans),
                group=record,
            )
            for index, (image, plan, config, lane, flagged) in enumerate(
                zip(images, plans, configs, lanes, flags, strict=True)
            )
        ]

    def _tile(
        self,
        image: Image.Image,
        filtered: bool,
        seconds: float,
        item: _Item,
        plan: _Plan,
        scheduler_config: dict[str, Any],
        generator_device: str,
        noise: torch.Tensor,
        batch_index: int,
        batch_size: int,
        group: dict[str, Any] | None = None,
    ) -> Tile:
        """One rendered image with its recipe: `noise` its initial latents, `batch_size` the
        images of the call that rendered it, `group` its lockstep group (Recipe.lockstep)."""
        recipe = Recipe(
            kind=plan.kind,
            prompt=item.prompt,
            negative_prompt=plan.negative_prompt,
            seed=item.seed,
            sampler=plan.entry.name,
            scheduler_class=scheduler_config["_class_name"],
            scheduler_config=scheduler_config,
            steps=plan.steps,
            guidance_scale=plan.guidance_scale,
            width=plan.width,
            height=plan.height,
            model_id=self.model.model_id,
            model_hash=self.model.weights_hash,
            model_revision=self.model.revision,
            dtype=str(self.model.dtype).removeprefix("torch."),
            device=self.model.device,
            device_name=self.device_name,
            generator_device=str(generator_device),
            batch_size=batch_size,
            batch_index=batch_index,
            noise_sha256=tensor_sha256(noise),
            deterministic=self.deterministic,
            versions=self.versions,
            suffix=item.suffix,
            lockstep=group,
        )
        return Tile(image, recipe, seconds, bool(filtered))


def _out_of_memory(images: int, plan: _Plan) -> OutOfMemory:
    """What is left to say after the device ran out of memory, once what could go has gone."""
    _free_memory()
    return OutOfMemory(
        f"out of memory rendering {images} images at {plan.width}x{plan.height}: "
        "try fewer tiles or a smaller size"
    )


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"
