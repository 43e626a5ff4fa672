"""Rendering a plan: batched calls of the family's pipeline, our own loop for a flow family,
schedulers in lockstep, a matrix plan by plan.

Every call renders on a per-request *view* of the cached pipeline: the same modules (same
weights in memory) with a scheduler of its own, so a request never changes what another one
sees (diffusers issues 1606, 3672, 5749). Every image gets its own generator, and its initial
noise is drawn for it (pipeline/noise.py), so the recipe can carry a hash of it.

A batched plan is split into calls of `plan.per_call` images: a tile's pixels depend on the
shape of the call that rendered it (batched matrix products round differently), so a tile
re-rendered later in a call of the same shape is bit-identical. A comparison renders its
schedulers in lockstep (pipeline/lockstep.py): one batched UNet call per step for all of them.

The model lock, and what a run is asked for, are pipeline/engine.py's.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from pipeline import lockstep
from pipeline.accel import slice_vae
from pipeline.embeddings import PromptEmbeddings
from pipeline.families import Embedding, Family
from pipeline.loading import LoadedModel
from pipeline.noise import draw_noise
from pipeline.plan import Item, Matrix, Plan, Sampler
from pipeline.preview import PREVIEW_INTERVAL, Previewer, preview_size
from pipeline.recipe import Provenance, Tile, tile
from pipeline.sharing import StepScheduler

# Called with the fraction done (0..1) and a short line on what is running.
Progress = Callable[[float, str], None]
# Called with the index of the first tile shown and rough previews of the tiles being denoised,
# on a thread of its own (pipeline/preview.py), never after the run's tiles are returned.
Preview = Callable[[int, list[Image.Image]], None]
# Called from the step callback with the latents of the tiles being denoised, by a function
# that is only called when a preview is due (pipeline/preview.py's Previewer.offer).
Offer = Callable[[Callable[[], torch.Tensor]], object]


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


class Renderer:
    """A plan's tiles from the loaded model; the caller holds the model lock."""

    def __init__(
        self,
        model: LoadedModel,
        embeddings: PromptEmbeddings,
        provenance: Provenance,
        pad_to: int | None,
    ) -> None:
        self.model = model
        self.embeddings = embeddings
        self.provenance = provenance  # stamped on every tile's recipe
        # A compiled UNet recompiles at every new batch shape: pad every call to one size.
        self._pad_to = pad_to
        pipe = model.pipe
        # Constructor options a view must repeat (requires_safety_checker, ...), read once.
        self.view_options = {
            name: pipe.config[name]
            for name in inspect.signature(type(pipe).__init__).parameters
            if name not in pipe.components and name in pipe.config
        }
        if "add_watermarker" in inspect.signature(type(pipe).__init__).parameters:
            self.view_options["add_watermarker"] = getattr(pipe, "watermark", None) is not None

    def render(self, plan: Plan | Matrix, hooks: Hooks) -> list[Tile]:
        """A plan's tiles, in order: in lockstep, or in batched calls."""
        if isinstance(plan, Matrix):
            return self._matrix(plan, hooks)
        return self._plan(plan, hooks)

    def view(self, config: dict[str, Any]) -> DiffusionPipeline:
        """The cached modules with a new scheduler of this config (about 2 ms)."""
        pipe = self.model.pipe
        scheduler = self.model.registry.make_exact(config)
        view = type(pipe)(**{**pipe.components, "scheduler": scheduler}, **self.view_options)
        view.set_progress_bar_config(disable=True)
        return view

    def _plan(self, plan: Plan, hooks: Hooks) -> list[Tile]:
        """One plan, previewed by a previewer of its own that never outlives its tiles."""
        previewer = _previewer(self.model.family, plan, hooks)
        try:
            if plan.lockstep:
                return self._lockstep(plan, hooks, previewer)
            return self._batched(plan, hooks, previewer)
        finally:
            if previewer is not None:
                previewer.close()  # no preview after the tiles

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
        gens, noise, latents = draw_noise(self.model, items, plan)
        render = self._own_loop if self.model.family.flow else self._pipeline_call
        started = time.perf_counter()
        images, flags = render(items, plan, hooks, offer, gens, latents)
        shares = [(time.perf_counter() - started) / len(items)] * len(items)
        return _tiles(
            self.provenance, plan, images, flags, items, [sampler] * len(items), noise, shares
        )

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
        view = self.view(sampler.config)

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
            self._prompts(items, plan),
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

    def _prompts(self, items: list[Item], plan: Plan) -> Embedding:
        """The items' prompt embeddings, each moved by its seed's noise (seed variance)."""
        texts, seeds = [item.prompt for item in items], [item.seed for item in items]
        return self.embeddings.seeded(texts, seeds, plan.seed_variance)

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
            self._prompts(items, plan),
            self.embeddings.negative(plan.negative_prompt, len(items)),
        )
        view = self.view(sampler.config)
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
        prompt = self._prompts([item], plan)
        negative = self.embeddings.negative(plan.negative_prompt, 1)
        # One seed, one draw: every lane starts from this noise, each with its own generator
        # in the state the draw left (ancestral schedulers draw their step noise from it).
        gens, noise, latents = draw_noise(self.model, [item], plan)
        lanes = []
        for sampler in plan.samplers:
            view = self.view(sampler.config)
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
        return _tiles(
            self.provenance,
            plan,
            images,
            flags,
            [item] * count,
            plan.samplers,
            [noise[0]] * count,
            shares,
        )

    def _matrix(self, matrix: Matrix, hooks: Hooks) -> list[Tile]:
        """Each of the matrix's plans in turn, its tiles put in their cells (row-major) and
        stamped with their headers; previews go to their cells as they come."""
        rendered: list[list[Tile]] = []
        done = 0
        for number, plan in enumerate(matrix.plans):
            cells = [i for i, (which, _) in enumerate(matrix.cells) if which == number]
            part = hooks.part(done / matrix.tiles, plan.tiles / matrix.tiles)
            part.preview = part.preview and _to_cells(part.preview, cells)
            rendered.append(self._plan(plan, part))
            done += plan.tiles
        return _cells(matrix, rendered)


class SharingRenderer(Renderer):
    """A Renderer that also renders through the engine's shared loop (pipeline/sharing.py):
    every plan as lanes of one image each, denoised beside other runs' lanes."""

    def shared(self, plan: Plan | Matrix, hooks: Hooks, loop: StepScheduler) -> list[Tile]:
        """A plan's tiles (a matrix's, every plan at once) denoised lane by lane in the
        engine's shared loop (pipeline/sharing.py), in calls of `plan.rows` rows, each tile
        decoded alone: pixels that depend on nothing else in the calls. No lock is held."""
        plans = plan.plans if isinstance(plan, Matrix) else (plan,)
        family = self.model.family
        started = time.perf_counter()
        made = [self._lanes(each) for each in plans]
        lanes = [lane for each in made for lane, _ in each]
        total = sum(lane.evaluations for lane in lanes)
        longest = max(sampler.steps for each in plans for sampler in each.samplers)
        label = _label(plan)
        if hooks.preview is not None and isinstance(plan, Matrix):
            hooks = replace(hooks, preview=_to_cells(hooks.preview, _cell_order(plan)))
        previewer = _previewer(family, plan, hooks)

        def step() -> int:
            running = [lane for lane in lanes if not lane.finished]
            return min((_lane_steps(lane) for lane in running), default=longest)

        def on_call() -> None:
            if hooks.progress is not None:
                done = sum(lane.done for lane in lanes)
                hooks.progress(done / total, f"{label}: step {step()}/{longest}")
            if previewer is not None and step() < longest:
                previewer.offer(0, lambda: torch.cat([lane.images() for lane in lanes]))

        guided = [
            (lane, _guidance(family, each))
            for each, own in zip(plans, made, strict=True)
            for lane, _ in own
        ]
        try:
            loop.denoise(guided, plans[0].rows or 0, hooks.stop, on_call)
        finally:
            if previewer is not None:
                previewer.close()
        if hooks.stop.is_set():
            raise Stopped(f"Stopped at step {step()} of {longest}")
        rendered = []
        for each, own in zip(plans, made, strict=True):
            tiles = []
            for index, (lane, (item, sampler, noise)) in enumerate(own):
                if hooks.stop.is_set():
                    raise Stopped("Stopped before the last images were decoded")
                images, flags = lockstep.decode([lane], 1, family)
                seconds = (time.perf_counter() - started) * lane.evaluations / total
                tiles.append(
                    tile(
                        images[0],
                        self.provenance,
                        each,
                        item,
                        sampler,
                        noise=noise,
                        batch_index=index if each.lockstep else 0,
                        batch_size=len(own) if each.lockstep else 1,
                        seconds=seconds,
                        filtered=bool(flags[0]),
                        call_rows=each.rows,
                    )
                )
            rendered.append(tiles)
        return _cells(plan, rendered) if isinstance(plan, Matrix) else rendered[0]

    def _lanes(self, plan: Plan) -> list[tuple[lockstep.Lane, tuple[Item, Sampler, torch.Tensor]]]:
        """A plan as lanes of one image each, with what each tile's recipe records: a
        comparison's lanes start from one draw, each with its own fork of the generator;
        a batched plan's each from its own seed."""
        family = self.model.family
        size = (plan.width, plan.height)
        negative = self.embeddings.negative(plan.negative_prompt, 1)
        if plan.lockstep:
            item = plan.items[0]
            gens, noise, latents = draw_noise(self.model, [item], plan)
            text = (self.embeddings.batch([item.prompt]), negative)
            return [
                (
                    lockstep.start(
                        family,
                        self.view(sampler.config),
                        sampler.steps,
                        [_fork(gens[0])],
                        latents,
                        text,
                        size,
                    ),
                    (item, sampler, noise[0]),
                )
                for sampler in plan.samplers
            ]
        sampler = plan.samplers[0]
        gens, noise, latents = draw_noise(self.model, list(plan.items), plan)
        return [
            (
                lockstep.start(
                    family,
                    self.view(sampler.config),
                    sampler.steps,
                    [gens[index]],
                    latents[index : index + 1],
                    (self.embeddings.batch([item.prompt]), negative),
                    size,
                ),
                (item, sampler, noise[index]),
            )
            for index, item in enumerate(plan.items)
        ]


def _tiles(
    provenance: Provenance,
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
            provenance,
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


def _cells(matrix: Matrix, rendered: list[list[Tile]]) -> list[Tile]:
    """A matrix's tiles by plan put in their cells (row-major), stamped with their headers."""
    tiles = []
    for index, (which, place) in enumerate(matrix.cells):
        tile = rendered[which][place]
        row, column = divmod(index, len(matrix.x.values))
        x, y = matrix.labels(index)
        cell = {"x_axis": matrix.x.name, "x": x, "y_axis": matrix.y.name, "y": y}
        cell |= {"row": row, "column": column}
        tiles.append(replace(tile, recipe=replace(tile.recipe, cell=cell)))
    return tiles


def _cell_order(matrix: Matrix) -> list[int]:
    """The cell of each of a matrix's tiles taken plan by plan."""
    cell_of = {where: index for index, where in enumerate(matrix.cells)}
    return [
        cell_of[(which, place)]
        for which, plan in enumerate(matrix.plans)
        for place in range(plan.tiles)
    ]


def _label(plan: Plan | Matrix) -> str:
    """What a progress line calls a run."""
    if isinstance(plan, Matrix):
        return f"{plan.tiles} cells"
    return plan.samplers[0].name if len(plan.samplers) == 1 else f"{plan.tiles} schedulers"


def _previewer(family: Family, plan: Plan | Matrix, hooks: Hooks) -> Previewer | None:
    """Previews made on their own thread, small, at most one per `preview_interval`."""
    if hooks.preview is None:
        return None
    size = preview_size(plan.width, plan.height)
    return Previewer(
        hooks.preview,
        family.preview_factors,
        family.preview_bias,
        size,
        hooks.preview_interval,
    )


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
