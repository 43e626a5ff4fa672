"""What a user asks for (requests), what the app enforces (limits), and the checks between.

The same checks run twice: in the UI handler, for a clear message before anything queues,
and in the engine, because API clients never see the sliders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.seeds import SeedError, check_seed

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


def check_prompt(prompt: str, limits: Limits) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestError("Prompt", "type what to render")
    if len(prompt) > limits.max_prompt_chars:
        raise RequestError(
            "Prompt", f"{len(prompt)} characters is over the {limits.max_prompt_chars} limit"
        )


def check_settings(settings: RenderSettings, limits: Limits) -> None:
    if len(settings.negative_prompt or "") > limits.max_prompt_chars:
        raise RequestError(
            "Negative prompt", f"longer than the {limits.max_prompt_chars} character limit"
        )
    if settings.steps is not None:
        check_steps("Steps", settings.steps, limits)
    guidance = settings.guidance_scale
    if not isinstance(guidance, int | float) or not math.isfinite(guidance):
        raise RequestError("Guidance scale", f"must be a number, got {guidance!r}")
    if not 0 <= guidance <= limits.max_guidance:
        raise RequestError("Guidance scale", f"must be 0..{limits.max_guidance}, got {guidance}")
    for name, side in (("Width", settings.width), ("Height", settings.height)):
        if side is None:
            continue
        if not isinstance(side, int) or not 8 <= side <= limits.max_side or side % 8:
            raise RequestError(
                name, f"must be a multiple of 8 from 8 to {limits.max_side}, got {side!r}"
            )


def check_steps(field_name: str, steps: int, limits: Limits) -> None:
    if not isinstance(steps, int) or not 1 <= steps <= limits.max_steps:
        raise RequestError(
            field_name, f"must be a whole number 1..{limits.max_steps}, got {steps!r}"
        )


def check_tile_count(field_name: str, count: int, limits: Limits) -> None:
    if count < 1:
        raise RequestError(field_name, "is empty")
    if count > limits.max_tiles:
        raise RequestError(
            field_name, f"{count} tiles is more than the {limits.max_tiles} one run may render"
        )


def check_seed_value(field_name: str, seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RequestError(field_name, f"{seed!r} is not a whole number")
    try:
        check_seed(seed)
    except SeedError as error:
        raise RequestError(field_name, str(error)) from None


def check_grid(request: GridRequest, limits: Limits) -> None:
    check_prompt(request.prompt, limits)
    check_tile_count("Seeds", len(request.seeds), limits)
    for seed in request.seeds:
        check_seed_value("Seeds", seed)
    check_settings(request.settings, limits)


def check_refine(request: RefineRequest, limits: Limits) -> None:
    check_prompt(request.prompt, limits)
    check_seed_value("Pinned seed", request.seed)
    check_tile_count("Suffixes", len(request.suffixes), limits)
    for suffix in request.suffixes:
        check_prompt(request.prompt + suffix, limits)
    check_settings(request.settings, limits)


def check_compare(request: CompareRequest, limits: Limits) -> None:
    check_prompt(request.prompt, limits)
    check_seed_value("Pinned seed", request.seed)
    check_tile_count("Schedulers", len(request.schedulers), limits)
    for name, steps in request.scheduler_steps:
        check_steps(f"Steps for {name}", steps, limits)
    check_settings(request.settings, limits)
