"""What a user asks for, as they gave it, the caps a run must stay within, and the checkers
that read each field.

A request holds values as they come from a widget or an API client: text, numbers, None. The
planner (pipeline/planner.py) reads them with the checkers below, fills every default from the
loaded model and refuses what the app should not render, naming the field to fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from pipeline.seeds import MAX_SEED, SeedError, check_seed, parse_seed

DEFAULT_SUFFIXES = (", highly realistic", ", artsy", ", trending", ", colorful")
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_STEPS_LINE = re.compile(r"^(?P<name>.+?)\s*:\s*(?P<steps>\S+)$")
DEFAULT_STRENGTH = 0.3  # A1111's usual small step away from the pinned composition
MAX_SEED_VARIANCE = 1.0  # noise as large as the prompt embedding's own spread
MAX_BASE_VARIATIONS = 8  # a variation of a variation of ...: blends one start noise may chain


class RequestError(ValueError):
    """A request the app refuses; `field` names the input to fix."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message

    def __reduce__(self) -> tuple[type[RequestError], tuple[str, str]]:
        """Made again from its two parts: a refusal crosses to the front door from a Ray Serve
        replica (serving/) as it is."""
        return type(self), (self.field, self.message)


@dataclass(frozen=True)
class Limits:
    """Caps on one request, safe defaults for a shared GPU; shown in the UI."""

    max_tiles: int = 16
    max_steps: int = 150
    min_side: int = 8  # the Width and Height sliders start here too
    max_side: int = 1536
    max_guidance: float = 30.0
    max_prompt_chars: int = 2000
    # Pixels one run renders (tiles x width x height): 8 tiles at 768x768, so 16 tiles at
    # Stable Diffusion 1.5's 512x512 fit and 16 at 1024x1024 do not.
    max_pixels: int = 8 * 768 * 768


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What every run shares. None, "" or 0 mean the loaded model's own default."""

    negative_prompt: Any = ""
    scheduler: Any = None
    steps: Any = None
    guidance_scale: Any = None
    width: Any = None
    height: Any = None
    # Flux: true CFG with the negative prompt, beside the embedded guidance (1: off).
    true_cfg_scale: Any = None
    shift: Any = None  # a flow-matching schedule's shift; unset: the model's own
    seed_variance: Any = None  # noise on the prompt embedding from the seed; unset: none


@dataclass(frozen=True)
class GridRequest(Settings):
    """One prompt, one tile per seed: a seed list ("0-3", "5, 17, 3", "random 8") or seeds."""

    prompt: Any
    seeds: Any


@dataclass(frozen=True, kw_only=True)
class Pin(Settings):
    """A run that grows from the pinned tile takes the whole pin: its seed (a field of the
    request) and, when the pin is a variation, its variation seed, strength and the size its
    seed's noise was made at ("Resize seed from"); when the pin is itself a variation of a
    variation, the blends its noise went through first ([seed, strength] pairs, in order)."""

    variation_seed: Any = None
    variation_strength: Any = 0
    resize_from: Any = None
    base_variations: Any = ()


@dataclass(frozen=True)
class RefineRequest(Pin):
    """The pinned seed again, one tile per suffix (lines of text, or a list of texts)."""

    prompt: Any
    seed: Any
    suffixes: Any = DEFAULT_SUFFIXES


@dataclass(frozen=True)
class CompareRequest(Pin):
    """The pinned seed across schedulers, in lockstep. `steps` set (not 0) is every
    scheduler's step count; else `scheduler_steps` ("Euler: 40" lines, or pairs), else each
    scheduler's own."""

    prompt: Any
    seed: Any
    schedulers: Any
    scheduler_steps: Any = ()


@dataclass(frozen=True)
class VaryRequest(Pin):
    """The pin's neighbours: one tile per variation seed (a seed list) at `strength` (0..1),
    moving from the pin's own noise (its variation too), the seed's noise optionally made at
    `resize_from` ("512x768", or (w, h)), as A1111's "Resize seed from"."""

    prompt: Any
    seed: Any
    variation_seeds: Any
    strength: Any = DEFAULT_STRENGTH


@dataclass(frozen=True)
class TravelRequest(Pin):
    """From the pin's own noise (its variation too) to `to_seed`'s in `frames` frames,
    strengths 0..1 evenly."""

    prompt: Any
    seed: Any
    to_seed: Any
    frames: Any = 8


@dataclass(frozen=True)
class MatrixRequest(Pin):
    """Any two settings as rows and columns (pipeline/axes.py names them), around the pin."""

    prompt: Any
    seed: Any
    x_axis: Any
    x_values: Any
    y_axis: Any
    y_values: Any


# The field checkers: each reads one field as a request gives it, or refuses it naming the
# field.


def pinned_seed(value: Any) -> int:
    """The pinned-seed field as a seed: exactly one whole number."""
    return one_seed("Pinned seed", value, "no seed pinned yet: click a tile or type a seed")


def one_seed(field_name: str, value: Any, missing: str = "type a seed") -> int:
    """One seed as a widget (text) or a client (a number) gives it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # API clients may send a number
    if isinstance(value, int) and not isinstance(value, bool):
        return seed_value(field_name, value)
    text = str(value if value is not None else "").strip()
    if not text:
        raise RequestError(field_name, missing)
    if not (text.isascii() and text.isdigit()):
        raise RequestError(field_name, f"must be one whole number 0..{MAX_SEED}, got {text!r}")
    try:
        return parse_seed(text)
    except SeedError as error:
        raise RequestError(field_name, str(error)) from None


def check_variation(seed: Any, strength: Any, field_name: str) -> tuple[int | None, float]:
    """A variation seed and its strength 0..1; none at strength 0, a seed for any other."""
    number = optional_number(f"{field_name} strength", strength)
    number = check_strength(f"{field_name} strength", number or 0.0)
    if seed is None or seed == "":
        if number:
            raise RequestError(f"{field_name} seed", f"a strength of {number:g} needs a seed")
        return None, 0.0
    return one_seed(f"{field_name} seed", seed), number


def check_base_variations(value: Any, field_name: str) -> tuple[tuple[int, float], ...]:
    """The blends a pinned variation of a variation went through first: at most
    MAX_BASE_VARIATIONS [seed, strength] pairs, each seed a seed and each strength 0..1."""
    if value is None or value == "":
        return ()
    if not isinstance(value, list | tuple) or len(value) > MAX_BASE_VARIATIONS:
        raise RequestError(
            field_name,
            f"must be at most {MAX_BASE_VARIATIONS} [seed, strength] pairs, got {value!r:.80}",
        )
    blends = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise RequestError(
                field_name, f"each must be a [seed, strength] pair, got {pair!r:.80}"
            )
        seed, strength = check_variation(pair[0], pair[1], field_name)
        if seed is not None:
            blends.append((seed, strength))
    return tuple(blends)


def check_strength(field_name: str, strength: float) -> float:
    """A variation strength: 0..1."""
    if not 0 <= strength <= 1:  # NaN fails every comparison
        raise RequestError(field_name, f"must be 0..1, got {strength}")
    return float(strength)


def check_resize_from(value: Any, limits: Limits) -> tuple[int, int] | None:
    """ "Resize seed from" as A1111 takes it: W x H in pixels; none when a side is 0."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise RequestError(
                "Resize seed from", f"write width x height, like 512x768, got {value!r}"
            )
        value = (int(match[1]), int(match[2]))
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise RequestError("Resize seed from", f"must be width x height, got {value!r}")
    width, height = value
    if not (is_whole(width) and is_whole(height)):
        raise RequestError("Resize seed from", f"sides must be whole numbers, got {value!r}")
    if min(width, height) <= 0:
        return None
    return check_side("Resize seed from", width, limits), check_side(
        "Resize seed from", height, limits
    )


def parse_steps_table(text: Any) -> dict[str, str]:
    """Compare's "Name: steps" lines as typed, by name, for keeping what a user wrote."""
    table = {}
    for line in (text if isinstance(text, str) else "").splitlines():
        match = _STEPS_LINE.match(line.strip())
        if match:
            table[match["name"]] = match["steps"]
    return table


def check_scheduler_steps(value: Any, limits: Limits) -> list[tuple[str, int]]:
    """ "Scheduler: steps" lines (blank lines skipped), or (name, steps) pairs."""
    if isinstance(value, str) or value is None:
        pairs = []
        for line in (value or "").splitlines():
            if not line.strip():
                continue
            match = _STEPS_LINE.match(line.strip())
            if not match:
                raise RequestError("Steps per scheduler", f"write 'Name: steps', got {line!r}")
            pairs.append((match["name"], match["steps"]))
    elif isinstance(value, tuple | list):
        pairs = list(value)
    else:
        raise RequestError(
            "Steps per scheduler", f"must be text, one entry per line, got {value!r}"
        )
    checked = []
    for name, steps in pairs:
        count = optional_steps(f"Steps for {name}", steps, limits)
        if count is None:
            raise RequestError(f"Steps for {name}", "must be at least 1")
        checked.append((name, count))
    return checked


def check_pixels(tiles: int, width: int, height: int, limits: Limits) -> None:
    """One run's pixels, a cap on its memory and time whatever mix of tiles and size."""
    pixels = tiles * width * height
    if pixels > limits.max_pixels:
        raise RequestError(
            "Size",
            f"{tiles} tiles at {width}x{height} is {pixels:,} pixels, over the "
            f"{limits.max_pixels:,} one run may render: use fewer tiles or a smaller size",
        )


def check_prompt(field_name: str, prompt: Any, limits: Limits) -> str:
    """Text to render: not empty, within the prompt limit."""
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise RequestError(field_name, "type what to render")
    return check_text(field_name, prompt, limits)


def check_text(field_name: str, text: Any, limits: Limits) -> str:
    """Text (a negative prompt may be empty) within the prompt limit."""
    if not isinstance(text, str):
        raise RequestError(field_name, f"must be text, got {text!r}")
    if len(text) > limits.max_prompt_chars:
        raise RequestError(
            field_name, f"{len(text)} characters is over the {limits.max_prompt_chars} limit"
        )
    return text


def optional_steps(field_name: str, value: Any, limits: Limits) -> int | None:
    """Steps as a widget or a client gives them: None, "" and 0 mean the default."""
    steps = optional_whole(field_name, value)
    return None if steps is None else check_steps(field_name, steps, limits)


def check_steps(field_name: str, steps: Any, limits: Limits) -> int:
    """A step count: a whole number 1..max_steps."""
    if not is_whole(steps) or not 1 <= steps <= limits.max_steps:
        raise RequestError(
            field_name, f"must be a whole number 1..{limits.max_steps}, got {steps!r}"
        )
    return steps


def seed_value(field_name: str, seed: Any) -> int:
    """A seed given as a number: whole, 0..MAX_SEED."""
    if not is_whole(seed):
        raise RequestError(field_name, f"{seed!r} is not a whole number 0..{MAX_SEED}")
    try:
        return check_seed(seed)
    except SeedError as error:
        raise RequestError(field_name, str(error)) from None


def check_guidance(guidance: float, limits: Limits, field_name: str = "Guidance scale") -> float:
    """A guidance scale 0..max_guidance (NaN refused)."""
    if not 0 <= guidance <= limits.max_guidance:  # NaN fails every comparison
        raise RequestError(field_name, f"must be 0..{limits.max_guidance}, got {guidance}")
    return float(guidance)


def true_cfg_of(value: Any, limits: Limits) -> float:
    """A true CFG scale as asked for; unset or 0 is 1, which guides by nothing more."""
    true_cfg = optional_number("True CFG scale", value) or 1.0
    return check_guidance(true_cfg, limits, "True CFG scale")


def seed_variance_of(value: Any) -> float:
    """A seed variance strength as asked for (or recorded); unset is 0, none."""
    strength = optional_number("Seed variance", value) or 0.0
    if not 0 <= strength <= MAX_SEED_VARIANCE:
        raise RequestError(
            "Seed variance", f"must be 0 (off) to {MAX_SEED_VARIANCE:g}, got {strength}"
        )
    return float(strength)


def check_multiple(field_name: str, side: int, step: int) -> None:
    """A side the model's latent patches tile (Flux and SD3: 16 pixels)."""
    if side % step:
        raise RequestError(field_name, f"must be a multiple of {step} for this model, got {side}")


def check_side(field_name: str, side: Any, limits: Limits) -> int:
    """A side in pixels: a multiple of 8 from min_side (where the sliders start) to max_side."""
    if not is_whole(side) or not limits.min_side <= side <= limits.max_side or side % 8:
        raise RequestError(
            field_name,
            f"must be a multiple of 8 from {limits.min_side} to {limits.max_side}, got {side!r}",
        )
    return side


def optional_whole(field_name: str, value: Any) -> int | None:
    """None, "" and 0 mean "the default"; 20.0 is 20; 20.5 and "abc" are refused."""
    number = optional_number(field_name, value)
    if number is None:
        return None
    if not number.is_integer():
        raise RequestError(field_name, f"must be a whole number, got {value!r}")
    return int(number) or None


def optional_number(field_name: str, value: Any) -> float | None:
    """A number as a widget or a client gives it; None and "" are unset."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RequestError(field_name, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RequestError(field_name, f"must be a number, got {value!r}") from None
    return number


def recorded_number(field_name: str, value: Any) -> float:
    """A recorded number: finite, and an int or a float (not a bool, not text)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(field_name, f"must be a number, got {value!r}")
    return float(value)


def is_whole(value: object) -> bool:
    """An int, not a bool (True would pass as 1) and not a float."""
    return isinstance(value, int) and not isinstance(value, bool)
