"""The engine: one lock around the model, and a plan rendered as batched calls or in lockstep.

Every call renders on a per-request *view* of the cached pipeline: the same modules (same
weights in memory) with a scheduler of its own, so a request never changes what another one
sees (diffusers issues 1606, 3672, 5749). Every image gets its own generator, and its initial
noise is drawn here, so the recipe can carry a hash of it.

A batched plan is split into calls of `plan.per_call` images: a tile's pixels depend on the
shape of the call that rendered it (batched matrix products round differently), so a tile
re-rendered later in a call of the same shape is bit-identical. A comparison renders its
schedulers in lockstep (pipeline/lockstep.py): one batched UNet call per step for all of them.

What a plan is, and every rule and default, is pipeline/plan.py's; what differs between model
families is pipeline/families.py's; a tile and its recipe are pipeline/recipe.py's.
"""

from __future__ import annotations

import gc
import inspect
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from pipeline import __version__, lockstep
from pipeline.accel import Speedups, slice_vae
from pipeline.card import ModelCard, card_of
from pipeline.embeddings import PromptEmbeddings
from pipeline.families import Family
from pipeline.loading import LoadedModel
from pipeline.plan import Item, Matrix, Plan, Request, Sampler
from pipeline.planner import Planner
from pipeline.preview import PREVIEW_INTERVAL, Previewer, preview_size
from pipeline.recipe import Provenance, Recipe, Tile, replay_plan, tile
from pipeline.requests import Limits
from pipeline.variation import nv_noise, start_noise, step_generator

# Called with the fraction done (0..1) and a short line on what is running.
Progress = Callable[[float, str], None]
# Called with the index of the first tile shown and rough previews of the tiles being denoised,
# on a thread of its own (pipeline/preview.py), never after the run's tiles are returned.
Preview = Callable[[int, list[Image.Image]], None]
# Called from the step callback with the latents of the tiles being denoised, by a function
# that is only called when a preview is due (pipeline/preview.py's Previewer.offer).
Offer = Callable[[Callable[[], torch.Tensor]], object]

DEFAULT_MICRO_BATCH = 8
NV = "nv"  # the generator device that makes A1111's NV noise (NVIDIA's) on the CPU


class RenderError(RuntimeError):
    """A run that could not finish, said in words a user can act on."""


class Stopped(RenderError):
    """The user pressed Stop; nothing was rendered."""


class OutOfMemory(RenderError):
    """The device ran out of memory; what could be freed was freed."""


@dataclass
class Hooks:
    """What a caller hears of a run while it renders, and how it stops one.

    `stop` is anything with `is_set()`: a threading.Event, or ui/runs.py's StopFlag, which
    also reaches a render in another process (ZeroGPU).
    """

    progress: Progress | None = None
    preview: Preview | None = None
    preview_interval: float = PREVIEW_INTERVAL  # seconds between previews, at the earliest
    stop: Any = field(default_factory=threading.Event)

    def part(self, done: float, share: float) -> Hooks:
        """Hooks for a part of a run: `share` of the work, after `done`."""
        progress = self.progress
        return replace(
            self, progress=progress and (lambda f, text: progress(done + share * f, text))
        )


class Engine:
    """The app's only way to the model; safe to share between threads."""

    def __init__(
        self,
        model: LoadedModel,
        limits: Limits | None = None,
        generator_device: str = "cpu",
        micro_batch: int | None = DEFAULT_MICRO_BATCH,
        speedups: Speedups | None = None,
    ) -> None:
        self.model = model
        self.planner = Planner(model, limits or Limits(), micro_batch, generator_device)
        # A compiled UNet recompiles at every new batch shape: pad every call to one size.
        self._pad_to = micro_batch if speedups is not None and speedups.compile else None
        self._lock = threading.Lock()
        pipe = model.pipe
        self.embeddings = PromptEmbeddings(pipe, model.family)
        # Constructor options a view must repeat (requires_safety_checker, ...), read once.
        self._view_options = {
            name: pipe.config[name]
            for name in inspect.signature(type(pipe).__init__).parameters
            if name not in pipe.components and name in pipe.config
        }
        if "add_watermarker" in inspect.signature(type(pipe).__init__).parameters:
            self._view_options["add_watermarker"] = getattr(pipe, "watermark", None) is not None
        identity = model.identity
        self.provenance = Provenance(
            model_id=model.model_id,
            model_hash=identity.a1111_hash if identity else None,
            model_revision=model.revision,
            family=model.family.name,
            native_size=model.native_size,
            dtype=str(model.dtype).removeprefix("torch."),
            device=model.device,
            device_name=_device_name(model.device),
            deterministic=torch.are_deterministic_algorithms_enabled(),
            versions={
                "seed-explorer": __version__,
                **{name: version(name) for name in ("torch", "diffusers", "transformers")},
            },
            safety_checker=model.safety_checker,
            speedups=(speedups or Speedups()).as_dict(),
            guidance_kind=model.guidance_kind,
            offload=model.offload,
            model_name=identity.name if identity else model.model_id,
            model_sha256=identity.sha256 if identity else None,
            model_config=model.config,
            loras=tuple(lora.to_dict() for lora in model.loras),
        )

    @property
    def limits(self) -> Limits:
        return self.planner.limits

    @property
    def micro_batch(self) -> int | None:
        return self.planner.micro_batch

    @property
    def generator_device(self) -> str:
        return self.planner.generator_device

    @property
    def schedulers(self) -> list[str]:
        """The schedulers this model offers, by the names people pick them by."""
        return self.model.registry.names

    def defaults(self) -> dict[str, Any]:
        """What an unset setting becomes (pipeline/plan.py)."""
        return self.planner.defaults()

    def scheduler_steps(self, names: Sequence[str]) -> dict[str, int]:
        """Each named scheduler's own step count (Compare's table)."""
        return self.planner.scheduler_steps(names)

    @property
    def card(self) -> ModelCard:
        """The loaded model as the UI describes it."""
        return card_of(self.model)

    def plan(self, request: Request) -> Plan | Matrix:
        """The request's plan, or a RequestError naming the field (pipeline/plan.py)."""
        return self.planner.plan(request)

    def run(self, request: Request, hooks: Hooks | None = None) -> list[Tile]:
        """Plan a run and render it."""
        return self.render(self.plan(request), hooks)

    def replay_plan(self, recipe: Recipe) -> Plan:
        """The call that rendered `recipe`, again, or a RequestError naming the field: a
        recipe from a client is checked as a request is."""
        return replay_plan(recipe, self.planner)

    def replay(self, recipe: Recipe, hooks: Hooks | None = None) -> Tile:
        """One recipe again, in a call of the shape that rendered it: bit-exact on the same
        machine and software."""
        return self.render(self.replay_plan(recipe), hooks)[recipe.batch_index]

    def render(self, plan: Plan | Matrix, hooks: Hooks | None = None) -> list[Tile]:
        """A plan's tiles, in order, under the model lock: in lockstep, or in batched calls."""
        hooks = hooks or Hooks()
        with self._lock:
            if hooks.stop.is_set():
                raise Stopped("Stopped before it started")
            if not self.provenance.device_name:  # ZeroGPU: CUDA starts in the render's process
                self.provenance = replace(
                    self.provenance, device_name=_device_name(self.model.device)
                )
            # A matrix previews each of its plans with a previewer of its own.
            previewer = None if isinstance(plan, Matrix) else self._previewer(plan, hooks)
            try:
                if isinstance(plan, Matrix):
                    return self._matrix(plan, hooks)
                if plan.lockstep:
                    return self._lockstep(plan, hooks, previewer)
                return self._batched(plan, hooks, previewer)
            except torch.OutOfMemoryError:
                raise _out_of_memory(plan) from None
            finally:
                if previewer is not None:
                    previewer.close()  # no preview after the tiles

    def truncated(self, prompt: str) -> bool:
        """Whether the text encoder that reads the prompt will cut its tail off (CLIP reads 77
        tokens; Flux's T5 512, SD3's 256)."""
        return self.model.family.truncated(self.model.pipe, prompt)

    def _view(self, config: dict[str, Any]) -> DiffusionPipeline:
        """The cached modules with a new scheduler of this config (about 2 ms)."""
        pipe = self.model.pipe
        scheduler = self.model.registry.make_exact(config)
        view = type(pipe)(**{**pipe.components, "scheduler": scheduler}, **self._view_options)
        view.set_progress_bar_config(disable=True)
        return view

    def _noise(
        self, items: list[Item], plan: Plan
    ) -> tuple[list[torch.Generator], torch.Tensor, torch.Tensor]:
        """Each image's start noise, always in float32 (then cast to the model's dtype): a
        seed's noise is the same whatever the precision. Without a variation it is what
        diffusers draws from the image's own generator; with one, A1111's blend of the seed's
        and the variation seed's (pipeline/variation.py). Either way the generator an
        ancestral scheduler then draws from is the seed's, past that first draw. Returns the
        generators, the noise, and the model's latents."""
        pipe = self.model.pipe
        scale = pipe.vae_scale_factor
        shape = self.model.family.latent_shape(pipe, plan.width, plan.height)
        device = plan.generator_device

        def source(seed: int, size: Any) -> torch.Tensor:
            generator = torch.Generator(device).manual_seed(seed)
            return torch.randn(tuple(size), generator=generator, device=device)

        if device == NV:
            # A1111's NV noise starts the image; diffusers draws step noise from a
            # torch.Generator, so an ancestral scheduler's is the CPU generator's.
            source, device = nv_noise, "cpu"

        noise = torch.stack(
            [
                start_noise(
                    item.seed,
                    shape,
                    source,
                    item.variation_seed,
                    item.strength,
                    item.resize_from,
                    scale,
                )
                for item in items
            ]
        ).to(pipe._execution_device)  # under --offload, the GPU the modules run on
        gens = [step_generator(item.seed, shape, device) for item in items]
        return gens, noise, noise.to(self.model.family.denoiser(pipe).dtype)

    def _previewer(self, plan: Plan, hooks: Hooks) -> Previewer | None:
        """Previews made on their own thread, small, at most one per `preview_interval`."""
        if hooks.preview is None:
            return None
        family = self.model.family
        size = preview_size(plan.width, plan.height)
        return Previewer(
            hooks.preview,
            family.preview_factors,
            family.preview_bias,
            size,
            hooks.preview_interval,
        )

    def _batched(self, plan: Plan, hooks: Hooks, previewer: Previewer | None) -> list[Tile]:
        """The items in calls of `plan.per_call` images."""
        size, count = plan.per_call, len(plan.items)
        tiles = []
        for start in range(0, count, size):
            chunk = list(plan.items[start : start + size])
            real = len(chunk)
            part = hooks.part(start / count, real / count)
            offer = previewer and (
                lambda latents, first=start, n=real: previewer.offer(first, lambda: latents()[:n])
            )
            # Padded with its last item: the call's shape, recorded in every tile's recipe
            # (batch_size), is what replay renders again; the padding's tiles are dropped.
            padding = [chunk[-1]] * max(0, (self._pad_to or 0) - len(chunk))
            tiles += self._call(chunk + padding, plan, part, offer)[:real]
        return tiles

    def _call(
        self, items: list[Item], plan: Plan, hooks: Hooks, offer: Offer | None = None
    ) -> list[Tile]:
        """One call of the family's pipeline (a flow family's: of our own loop, as its pipeline
        would make it): every item a tile, rendered together."""
        if hooks.stop.is_set():
            raise Stopped("Stopped before it started")
        sampler = plan.samplers[0]
        gens, noise, latents = self._noise(items, plan)
        render = self._own_loop if self.model.family.flow else self._pipeline_call
        started = time.perf_counter()
        images, flags = render(items, plan, hooks, offer, gens, latents)
        shares = [(time.perf_counter() - started) / len(items)] * len(items)
        return self._tiles(plan, images, flags, items, [sampler] * len(items), noise, shares)

    def _pipeline_call(
        self,
        items: list[Item],
        plan: Plan,
        hooks: Hooks,
        offer: Offer | None,
        gens: list[torch.Generator],
        latents: torch.Tensor,
    ) -> tuple[list[Image.Image], list[bool]]:
        """The pipeline's own `__call__`: its images, and which the safety checker blanked.

        Stop raises from the step callback, so the pipeline decodes nothing after it. The
        callback only offers the latents for a preview (a clone when one is due).
        """
        sampler = plan.samplers[0]
        view = self._view(sampler.config)

        def on_step_end(pipe: DiffusionPipeline, step: int, timestep: Any, tensors: dict) -> dict:
            done = step + 1
            if hooks.progress is not None:
                hooks.progress(
                    done / len(pipe.scheduler.timesteps), _step_line(sampler, pipe, done)
                )
            if hooks.stop.is_set():
                raise Stopped(f"Stopped at step {_steps_done(pipe, done)} of {sampler.steps}")
            # Not at the last step: its image is the tile itself, a moment later.
            if offer is not None and done < pipe.num_timesteps:
                offer(lambda: tensors["latents"])
            return tensors

        slice_vae(view, len(items))
        arguments = self.model.family.call_arguments(
            self.embeddings.batch([item.prompt for item in items]),
            self.embeddings.negative(plan.negative_prompt, len(items)),
            plan.extras,
        )
        output = view(
            **arguments,
            generator=gens,
            latents=latents,
            num_inference_steps=sampler.steps,
            guidance_scale=plan.guidance_scale,
            width=plan.width,
            height=plan.height,
            callback_on_step_end=on_step_end,
        )
        flags = getattr(output, "nsfw_content_detected", None) or [False] * len(items)
        return output.images, flags

    def _own_loop(
        self,
        items: list[Item],
        plan: Plan,
        hooks: Hooks,
        offer: Offer | None,
        gens: list[torch.Generator],
        latents: torch.Tensor,
    ) -> tuple[list[Image.Image], list[bool]]:
        """A flow family's call: its items as one lane of our own loop (pipeline/lockstep.py),
        with the shift and the generators its pipeline cannot pass."""
        sampler = plan.samplers[0]
        text = (
            self.embeddings.batch([item.prompt for item in items]),
            self.embeddings.negative(plan.negative_prompt, len(items)),
        )
        view = self._view(sampler.config)
        family = self.model.family
        lane = lockstep.start(
            family, view, sampler.steps, gens, latents, text, (plan.width, plan.height)
        )
        slice_vae(view, len(items))
        for _ in lockstep.denoise([lane], _guidance(family, plan), 1):
            if hooks.progress is not None:
                hooks.progress(lane.done / lane.evaluations, _step_line(sampler, view, lane.done))
            if hooks.stop.is_set():
                raise Stopped(f"Stopped at step {_lane_steps(lane)} of {sampler.steps}")
            if offer is not None and not lane.finished:
                offer(lane.images)
        return lockstep.decode([lane], 1, family)

    def _lockstep(self, plan: Plan, hooks: Hooks, previewer: Previewer | None) -> list[Tile]:
        """One item under every sampler, denoised together (pipeline/lockstep.py).

        `plan.per_call` lanes share a UNet call (and a VAE call): by default all of them, one
        UNet call per step (at most `limits.max_tiles` schedulers, so as much memory as a grid
        of that many tiles in one call). Each tile's `seconds` is the whole call's time split
        by its number of model evaluations (DDIM at 50 steps costs more than UniPC at 20).
        """
        item = plan.items[0]
        family = self.model.family
        label = plan.samplers[0].name if len(plan.samplers) == 1 else f"{plan.tiles} schedulers"
        started = time.perf_counter()
        prompt = self.embeddings.batch([item.prompt])
        negative = self.embeddings.negative(plan.negative_prompt, 1)
        # One seed, one draw: every lane starts from this noise, each with its own generator
        # in the state the draw left (ancestral schedulers draw their step noise from it).
        gens, noise, latents = self._noise([item], plan)
        lanes = []
        for sampler in plan.samplers:
            view = self._view(sampler.config)
            size = (plan.width, plan.height)
            lanes.append(
                lockstep.start(
                    family, view, sampler.steps, [_fork(gens[0])], latents, (prompt, negative), size
                )
            )
        total = sum(lane.evaluations for lane in lanes)
        longest = max(sampler.steps for sampler in plan.samplers)
        for iteration in lockstep.denoise(lanes, _guidance(family, plan), plan.per_call):
            # The group's step: every lane still running has made at least this many.
            step = min((_lane_steps(lane) for lane in lanes if not lane.finished), default=longest)
            if hooks.progress is not None:
                done = sum(lane.done for lane in lanes)
                hooks.progress(done / total, f"{label}: step {step}/{longest}")
            if hooks.stop.is_set():
                raise Stopped(f"Stopped at step {step} of {longest}")
            # After the iteration's last UNet call every lane has made it (or is done).
            whole = all(lane.finished or lane.done >= iteration for lane in lanes)
            if previewer is not None and whole and step < longest:
                previewer.offer(0, lambda: torch.cat([lane.images() for lane in lanes]))
        slice_vae(lanes[0].view, plan.per_call)
        images, flags = lockstep.decode(lanes, plan.per_call, family)
        seconds = time.perf_counter() - started
        count = len(plan.samplers)
        shares = [seconds * lane.evaluations / total for lane in lanes]
        return self._tiles(
            plan, images, flags, [item] * count, plan.samplers, [noise[0]] * count, shares
        )

    def _tiles(
        self,
        plan: Plan,
        images: list[Image.Image],
        flags: list[bool],
        items: list[Item],
        samplers: Sequence[Sampler],
        noise: Sequence[torch.Tensor],
        seconds: list[float],
    ) -> list[Tile]:
        """A call's images as tiles with their recipes, for batched calls and lockstep alike:
        image i is `items[i]` under `samplers[i]` from `noise[i]`, in a call of them all."""
        return [
            tile(
                image,
                self.provenance,
                plan,
                items[index],
                samplers[index],
                noise=noise[index],
                batch_index=index,
                batch_size=len(images),
                seconds=seconds[index],
                filtered=bool(flags[index]),
            )
            for index, image in enumerate(images)
        ]

    def _matrix(self, matrix: Matrix, hooks: Hooks) -> list[Tile]:
        """Each of the matrix's plans in turn, its tiles put in their cells (row-major) and
        stamped with their headers; previews go to their cells as they come."""
        rendered: list[list[Tile]] = []
        done = 0
        for number, plan in enumerate(matrix.plans):
            cells = [i for i, (which, _) in enumerate(matrix.cells) if which == number]
            part = hooks.part(done / matrix.tiles, plan.tiles / matrix.tiles)
            part.preview = part.preview and _to_cells(part.preview, cells)
            previewer = self._previewer(plan, part)
            render = self._lockstep if plan.lockstep else self._batched
            try:
                rendered.append(render(plan, part, previewer))
            finally:
                if previewer is not None:
                    previewer.close()
            done += plan.tiles
        tiles = []
        for index, (which, place) in enumerate(matrix.cells):
            tile = rendered[which][place]
            row, column = divmod(index, len(matrix.x.values))
            x, y = matrix.labels(index)
            cell = {"x_axis": matrix.x.name, "x": x, "y_axis": matrix.y.name, "y": y}
            cell |= {"row": row, "column": column}
            tiles.append(replace(tile, recipe=replace(tile.recipe, cell=cell)))
        return tiles


def _guidance(family: Family, plan: Plan) -> lockstep.Guidance:
    return lockstep.Guidance(family, plan.guidance_scale, plan.extras, plan.true_cfg_scale)


def _to_cells(preview: Preview, cells: list[int]) -> Preview:
    """A plan's previews sent to the matrix cells its tiles fill."""

    def send(first: int, images: list[Image.Image]) -> None:
        for offset, image in enumerate(images):
            preview(cells[first + offset], [image])

    return send


def _fork(generator: torch.Generator) -> torch.Generator:
    """A new generator in the same state: a lane's own, from the one that drew the noise."""
    fork = torch.Generator(generator.device)
    fork.set_state(generator.get_state())
    return fork


def _steps_done(pipe: DiffusionPipeline, evaluations: int) -> int:
    """Steps made after `evaluations` model evaluations: Heun and DPM2 evaluate twice a step."""
    order = getattr(pipe.scheduler, "order", 1)
    return min(-(-evaluations // order), pipe.scheduler.num_inference_steps or evaluations)


def _step_line(sampler: Any, pipe: DiffusionPipeline, evaluations: int) -> str:
    return f"{sampler.name}: step {_steps_done(pipe, evaluations)}/{sampler.steps}"


def _lane_steps(lane: lockstep.Lane) -> int:
    return _steps_done(lane.view, lane.done)


def _out_of_memory(plan: Plan) -> OutOfMemory:
    """What is left to say after the device ran out of memory, once what could go has gone."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return OutOfMemory(
        f"out of memory rendering {plan.tiles} images at {plan.width}x{plan.height}: "
        "try fewer tiles, a smaller size, or fewer images per call (--micro-batch)"
    )


def _device_name(device: str) -> str:
    """The device's name; "" on CUDA before CUDA has started, which it must not do in a ZeroGPU
    Space's main process (the render's process fills it in)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device) if torch.cuda.is_initialized() else ""
    return platform.processor() or platform.machine() or "cpu"
