"""Grid, refine and compare: requests in, tiles out, one lock around the model.

Every request renders on a per-request *view* of the cached pipeline: the same modules (same
weights in memory) with a scheduler of its own, so a request never changes what another one
sees (diffusers issues 1606, 3672, 5749). Every image gets its own generator.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from diffusers import DiffusionPipeline, SchedulerMixin
from PIL import Image

from pipeline.loading import LoadedModel
from pipeline.requests import (
    CompareRequest,
    GridRequest,
    Limits,
    RefineRequest,
    RenderSettings,
    RequestError,
    check_compare,
    check_grid,
    check_refine,
)
from pipeline.schedulers import SchedulerEntry, SchedulerError, SchedulerRegistry
from pipeline.seeds import generators

# Called with the fraction done (0..1) and a short line on what is running.
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Tile:
    """One rendered image and everything needed to make it again."""

    image: Image.Image
    seed: int
    prompt: str
    negative_prompt: str
    scheduler: str
    steps: int
    guidance_scale: float
    width: int
    height: int
    seconds: float
    batch_size: int
    suffix: str | None = None
    filtered: bool = False


@dataclass(frozen=True)
class _Plan:
    """A render with every default filled in."""

    entry: SchedulerEntry
    steps: int
    negative_prompt: str
    guidance_scale: float
    width: int
    height: int


class Engine:
    """The app's only way to the model; safe to share between threads."""

    def __init__(
        self, model: LoadedModel, limits: Limits | None = None, generator_device: str = "cpu"
    ) -> None:
        self.model = model
        self.limits = limits or Limits()
        self.generator_device = generator_device
        self.registry = SchedulerRegistry(model.pipe.scheduler)
        self._lock = threading.Lock()
        pipe = model.pipe
        # Constructor options a view must repeat (requires_safety_checker, ...), read once.
        self._view_options = {
            name: pipe.config[name]
            for name in inspect.signature(type(pipe).__init__).parameters
            if name not in pipe.components and name in pipe.config
        }

    def grid(self, request: GridRequest, progress: Progress | None = None) -> list[Tile]:
        """One prompt, one tile per seed, in one batched call."""
        check_grid(request, self.limits)
        plan = self._plan(request.settings)
        prompts = [request.prompt] * len(request.seeds)
        with self._lock:
            return self._render(prompts, list(request.seeds), plan, progress)

    def refine(self, request: RefineRequest, progress: Progress | None = None) -> list[Tile]:
        """The pinned seed once per suffix, in one batched call: the composition stays."""
        check_refine(request, self.limits)
        plan = self._plan(request.settings)
        prompts = [request.prompt + suffix for suffix in request.suffixes]
        seeds = [request.seed] * len(prompts)
        with self._lock:
            tiles = self._render(prompts, seeds, plan, progress)
        return [replace(t, suffix=s) for t, s in zip(tiles, request.suffixes, strict=True)]

    def compare(self, request: CompareRequest, progress: Progress | None = None) -> list[Tile]:
        """The pinned seed once per scheduler, each at its own step count, timed alone."""
        check_compare(request, self.limits)
        own_steps = {
            self._entry(name, "Steps per scheduler").name: steps
            for name, steps in request.scheduler_steps
        }
        plans = []
        for name in request.schedulers:
            entry = self._entry(name, "Schedulers")
            steps = request.settings.steps or own_steps.get(entry.name)
            plans.append(self._plan(replace(request.settings, scheduler=entry.name, steps=steps)))
        tiles = []
        with self._lock:
            for index, plan in enumerate(plans):
                part = _part_progress(progress, index, len(plans))
                tiles += self._render([request.prompt], [request.seed], plan, part)
        return tiles

    def default_settings(self) -> RenderSettings:
        """The loaded model's own defaults: its scheduler and its native resolution."""
        plan = self._plan(RenderSettings())
        return RenderSettings(
            scheduler=plan.entry.name, steps=plan.steps, width=plan.width, height=plan.height
        )

    def _entry(self, name: str, field_name: str) -> SchedulerEntry:
        try:
            return self.registry.resolve(name)
        except SchedulerError as error:
            raise RequestError(field_name, str(error)) from None

    def _plan(self, settings: RenderSettings) -> _Plan:
        entry = (
            self._entry(settings.scheduler, "Scheduler")
            if settings.scheduler
            else self.registry.default
        )
        native = self.model.native_size
        return _Plan(
            entry=entry,
            steps=settings.steps or entry.default_steps,
            negative_prompt=settings.negative_prompt or "",
            guidance_scale=float(settings.guidance_scale),
            width=settings.width or native,
            height=settings.height or native,
        )

    def _view(self, scheduler: SchedulerMixin) -> DiffusionPipeline:
        """The cached modules with a scheduler of this request's own (about 2 ms)."""
        pipe = self.model.pipe
        view = type(pipe)(**{**pipe.components, "scheduler": scheduler}, **self._view_options)
        view.set_progress_bar_config(disable=True)
        return view

    def _render(
        self, prompts: list[str], seeds: list[int], plan: _Plan, progress: Progress | None
    ) -> list[Tile]:
        view = self._view(self.registry.make(plan.entry.name))
        label = plan.entry.name

        def on_step_end(pipe: DiffusionPipeline, step: int, timestep: int, tensors: dict) -> dict:
            if progress is not None:
                total = pipe.num_timesteps
                progress((step + 1) / total, f"{label}: step {step + 1}/{total}")
            return tensors

        started = time.perf_counter()
        output = view(
            prompt=prompts,
            negative_prompt=[plan.negative_prompt] * len(prompts),
            generator=generators(seeds, self.generator_device),
            num_inference_steps=plan.steps,
            guidance_scale=plan.guidance_scale,
            width=plan.width,
            height=plan.height,
            callback_on_step_end=on_step_end,
        )
        seconds = time.perf_counter() - started
        flags = getattr(output, "nsfw_content_detected", None) or [False] * len(prompts)
        return [
            Tile(
                image=image,
                seed=seed,
                prompt=prompt,
                negative_prompt=plan.negative_prompt,
                scheduler=plan.entry.name,
                steps=plan.steps,
                guidance_scale=plan.guidance_scale,
                width=plan.width,
                height=plan.height,
                seconds=seconds,
                batch_size=len(prompts),
                filtered=bool(flagged),
            )
            for image, seed, prompt, flagged in zip(
                output.images, seeds, prompts, flags, strict=True
            )
        ]


def _part_progress(progress: Progress | None, index: int, parts: int) -> Progress | None:
    """Progress of part `index` of `parts`, reported as progress of the whole."""
    if progress is None:
        return None
    return lambda fraction, text: progress((index + fraction) / parts, text)
