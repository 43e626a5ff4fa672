"""What a user asks for (requests), what the app enforces (limits), and the checks between.

The same checks run twice: in the UI handler, for a clear message before anything queues,
and in the engine, because API clients never see the sliders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.recipe import Recipe
from pipeline.schedulers import SchedulerEntry, SchedulerError, SchedulerRegistry
from pipeline.seeds import MAX_SEED, SeedError, check_seed

DEFAULT_SUFFIXES = (", highly realistic", ", artsy", ", trending", ", colorful")
DEFAULT_GUIDANCE = 7.5


class RequestError(ValueError):
    """A request the engine refuses; `field` names the input to fix."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class Limits:
    """Caps on one request, safe defaults for a shared GPU; shown in the UI."""

    max_tiles: int = 16
    max_steps: int = 150
    max_side: int = 1536
    max_guidance: float = 30.0
    max_prompt_chars: int = 2000
    # Pixels one run renders (tiles x width x height): 8 tiles at 768x768, so 16 tiles at
    # Stable Diffusion 1.5's 512x512 fit and 16 at 1024x1024 do not.
    max_pixels: int = 8 * 768 * 768


@dataclass(frozen=True)
class ModelFacts:
    """What some checks need from the loaded model."""

    native_size: int  # the side an unset width or height renders at
    registry: SchedulerRegistry  # the scheduler names it accepts


@dataclass(frozen=True)
class RenderSettings:
    """What every render shares. None means the model's own default."""

    negative_prompt: str = ""
    scheduler: str | None = None
    steps: int | None = None
    guidance_scale: float = DEFAULT_GUIDANCE
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class GridRequest:
    """One prompt, one tile per seed."""

    prompt: str
    seeds: tuple[int, ...]
    settings: RenderSettings = field(default_factory=RenderSettings)


@dataclass(frozen=True)
class RefineRequest:
    """The pinned seed again, one tile per prompt suffix."""

    prompt: str
    seed: int
    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES
    settings: RenderSettings = field(default_factory=RenderSettings)


@dataclass(frozen=True)
class CompareRequest:
    """The pinned seed across schedulers; steps per scheduler, else each one's default.

    `settings.steps`, when set, overrides every scheduler's step count.
    """

    prompt: str
    seed: int
    schedulers: tuple[str, ...]
    scheduler_steps: tuple[tuple[str, int], ...] = ()
    settings: RenderSettings = field(default_factory=RenderSettings)


def check_grid(request: GridRequest, limits: Limits, model: ModelFacts | None = None) -> None:
    """Refuse a grid the app should not render; `model`: see `check_settings`."""
    check_prompt(request.prompt, limits)
    _check_list("Seeds", request.seeds, limits, "whole numbers")
    for seed in request.seeds:
        check_seed_value("Seeds", seed)
    check_settings(request.settings, len(request.seeds), limits, model)


def check_refine(request: RefineRequest, limits: Limits, model: ModelFacts | None = None) -> None:
    check_prompt(request.prompt, limits)
    check_seed_value("Pinned seed", request.seed)
    _check_list("Suffixes", request.suffixes, limits, "texts")
    for suffix in request.suffixes:
        if not isinstance(suffix, str):
            raise RequestError("Suffixes", f"each suffix must be text, got {suffix!r}")
        check_prompt(request.prompt + suffix, limits)
    check_settings(request.settings, len(request.suffixes), limits, model)


def check_compare(request: CompareRequest, limits: Limits, model: ModelFacts | None = None) -> None:
    """Also refuses a scheduler chosen twice: it would render the same image twice."""
    check_prompt(request.prompt, limits)
    check_seed_value("Pinned seed", request.seed)
    _check_list("Schedulers", request.schedulers, limits, "scheduler names")
    chosen: set[str] = set()
    for name in request.schedulers:
        key = _scheduler_key("Schedulers", name, model)
        if key in chosen:
            raise RequestError("Schedulers", f"{name} is chosen twice: choose each one once")
        chosen.add(key)
    for name, steps in request.scheduler_steps:
        _scheduler_key("Steps per scheduler", name, model)
        check_steps(f"Steps for {name}", steps, limits)
    check_settings(request.settings, len(request.schedulers), limits, model)


def check_settings(
    settings: RenderSettings, tiles: int, limits: Limits, model: ModelFacts | None = None
) -> None:
    """The settings of a run of `tiles` images.

    Scheduler names and the size of an unset side need the model. A caller without it (None)
    leaves names to the engine, and unset sides do not count towards the pixel limit.
    """
    _check_text("Negative prompt", settings.negative_prompt or "", limits)
    if settings.scheduler is not None:
        _scheduler_key("Scheduler", settings.scheduler, model)
    if settings.steps is not None:
        check_steps("Steps", settings.steps, limits)
    _check_guidance(settings.guidance_scale, limits)
    for name, side in (("Width", settings.width), ("Height", settings.height)):
        if side is not None:
            _check_side(name, side, limits)
    native_size = model.native_size if model else None
    width = settings.width or native_size
    height = settings.height or native_size
    if width and height:
        check_pixels(tiles, width, height, limits)


def check_recipe(recipe: Recipe, limits: Limits) -> None:
    """A recipe to render again, which may come from a dropped PNG: a request's limits, on
    the whole call it replays (its other places repeat the tile)."""
    check_prompt(recipe.prompt, limits)
    _check_text("Negative prompt", recipe.negative_prompt, limits)
    check_seed_value("Seed", recipe.seed)
    check_steps("Steps", recipe.steps, limits)
    _check_guidance(recipe.guidance_scale, limits)
    _check_side("Width", recipe.width, limits)
    _check_side("Height", recipe.height, limits)
    if not _is_whole(recipe.batch_size) or not 1 <= recipe.batch_size <= limits.max_tiles:
        raise RequestError(
            "Batch size", f"must be a whole number 1..{limits.max_tiles}, got {recipe.batch_size!r}"
        )
    if not _is_whole(recipe.batch_index) or not 0 <= recipe.batch_index < recipe.batch_size:
        raise RequestError(
            "Batch index",
            f"must be a whole number 0..{recipe.batch_size - 1}, got {recipe.batch_index!r}",
        )
    check_pixels(recipe.batch_size, recipe.width, recipe.height, limits)
    if recipe.lockstep is not None:
        _check_lockstep(recipe, limits)


def _check_lockstep(recipe: Recipe, limits: Limits) -> None:
    """A group rendered in lockstep: one scheduler per tile of the group, this tile's own at
    its index, and the lanes per UNet call it was rendered with."""
    record = recipe.lockstep
    lanes = record.get("schedulers") if isinstance(record, dict) else None
    if not isinstance(lanes, list) or len(lanes) != recipe.batch_size:
        raise RequestError(
            "Lockstep", f"must list {recipe.batch_size} schedulers, one per tile of the group"
        )
    for lane in lanes:
        if not (
            isinstance(lane, dict)
            and isinstance(lane.get("sampler"), str)
            and isinstance(lane.get("scheduler_config"), dict)
        ):
            raise RequestError(
                "Lockstep", f"each scheduler needs a sampler, a config and steps, got {lane!r}"
            )
        check_steps(f"Steps for {lane['sampler']}", lane.get("steps"), limits)
    own = lanes[recipe.batch_index]
    if (own["scheduler_config"], own["steps"]) != (recipe.scheduler_config, recipe.steps):
        raise RequestError("Lockstep", "the scheduler at the tile's index is not the tile's own")
    per_call = record.get("per_call")
    if not _is_whole(per_call) or not 1 <= per_call <= recipe.batch_size:
        raise RequestError(
            "Lockstep",
            f"schedulers per call must be a whole number 1..{recipe.batch_size}, got {per_call!r}",
        )


def check_pixels(tiles: int, width: int, height: int, limits: Limits) -> None:
    """One run's pixels, a cap on its memory and time whatever mix of tiles and size."""
    pixels = tiles * width * height
    if pixels > limits.max_pixels:
        raise RequestError(
            "Size",
            f"{tiles} tiles at {width}x{height} is {pixels:,} pixels, over the "
            f"{limits.max_pixels:,} one run may render: use fewer tiles or a smaller size",
        )


def check_prompt(prompt: str, limits: Limits) -> None:
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise RequestError("Prompt", "type what to render")
    _check_text("Prompt", prompt, limits)


def check_steps(field_name: str, steps: int, limits: Limits) -> None:
    if not _is_whole(steps) or not 1 <= steps <= limits.max_steps:
        raise RequestError(
            field_name, f"must be a whole number 1..{limits.max_steps}, got {steps!r}"
        )


def check_seed_value(field_name: str, seed: int) -> None:
    if not _is_whole(seed):
        raise RequestError(field_name, f"{seed!r} is not a whole number 0..{MAX_SEED}")
    try:
        check_seed(seed)
    except SeedError as error:
        raise RequestError(field_name, str(error)) from None


def resolve_scheduler(field_name: str, name: str, registry: SchedulerRegistry) -> SchedulerEntry:
    """The registry's entry for a name, or a refusal that names the field and the choices."""
    if not isinstance(name, str):
        raise RequestError(field_name, f"must be a scheduler name, got {name!r}")
    try:
        return registry.resolve(name)
    except SchedulerError as error:
        raise RequestError(field_name, str(error)) from None


def _scheduler_key(field_name: str, name: str, model: ModelFacts | None) -> str:
    """What makes two scheduler names the same: the entry they resolve to, else their text."""
    if model is not None:
        return resolve_scheduler(field_name, name, model.registry).name
    if not isinstance(name, str):
        raise RequestError(field_name, f"must be a scheduler name, got {name!r}")
    return name.strip().lower()


def _check_guidance(guidance: float, limits: Limits) -> None:
    if not isinstance(guidance, int | float) or isinstance(guidance, bool):
        raise RequestError(
            "Guidance scale", f"must be a number 0..{limits.max_guidance}, got {guidance!r}"
        )
    if not 0 <= guidance <= limits.max_guidance:  # NaN fails every comparison
        raise RequestError("Guidance scale", f"must be 0..{limits.max_guidance}, got {guidance}")


def _check_side(field_name: str, side: int, limits: Limits) -> None:
    if not _is_whole(side) or not 8 <= side <= limits.max_side or side % 8:
        raise RequestError(
            field_name, f"must be a multiple of 8 from 8 to {limits.max_side}, got {side!r}"
        )


def _check_text(field_name: str, text: str, limits: Limits) -> None:
    if not isinstance(text, str):
        raise RequestError(field_name, f"must be text, got {text!r}")
    if len(text) > limits.max_prompt_chars:
        raise RequestError(
            field_name, f"{len(text)} characters is over the {limits.max_prompt_chars} limit"
        )


def _check_list(field_name: str, values: Sequence[object], limits: Limits, what: str) -> None:
    """A list (not a string, whose letters would each become a tile) of 1..max_tiles items."""
    if not isinstance(values, tuple | list):
        raise RequestError(field_name, f"must be a list of {what}, got {values!r}")
    if not values:
        raise RequestError(field_name, f"is empty: give 1 to {limits.max_tiles}")
    if len(values) > limits.max_tiles:
        raise RequestError(
            field_name,
            f"{len(values)} tiles is more than the {limits.max_tiles} one run may render",
        )


def _is_whole(value: object) -> bool:
    """An int, not a bool (True would pass as 1) and not a float."""
    return isinstance(value, int) and not isinstance(value, bool)
