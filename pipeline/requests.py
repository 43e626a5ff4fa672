"""What a user asks for, as they gave it, and the caps a run must stay within.

A request holds values as they come from a widget or an API client: text, numbers, None. The
plan (pipeline/plan.py) reads them, fills every default from the loaded model and refuses what
the app should not render; nothing here checks anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_SUFFIXES = (", highly realistic", ", artsy", ", trending", ", colorful")
DEFAULT_STRENGTH = 0.3  # A1111's usual small step away from the pinned composition


class RequestError(ValueError):
    """A request the app refuses; `field` names the input to fix."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


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


@dataclass(frozen=True)
class GridRequest(Settings):
    """One prompt, one tile per seed: a seed list ("0-3", "5, 17, 3", "random 8") or seeds."""

    prompt: Any
    seeds: Any


@dataclass(frozen=True, kw_only=True)
class Pin(Settings):
    """A run that grows from the pinned tile takes the whole pin: its seed (a field of the
    request) and, when the pin is a variation, its variation seed, strength and the size its
    seed's noise was made at ("Resize seed from")."""

    variation_seed: Any = None
    variation_strength: Any = 0
    resize_from: Any = None


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
class VaryRequest(Settings):
    """The pinned seed's neighbours: one tile per variation seed (a seed list) at `strength`
    (0..1), the seed's noise optionally made at `resize_from` ("512x768", or (w, h)), as A1111's
    "Resize seed from"."""

    prompt: Any
    seed: Any
    variation_seeds: Any
    strength: Any = DEFAULT_STRENGTH
    resize_from: Any = None


@dataclass(frozen=True)
class TravelRequest(Settings):
    """From the pinned seed to `to_seed` in `frames` frames, strengths 0..1 evenly."""

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
