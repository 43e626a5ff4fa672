"""AUTOMATIC1111's infotext for variations, noise sources and schedule types, both ways.

Written as A1111 1.10 writes them (`modules/processing.py`, `create_infotext`):
`Variation seed: 17, Variation seed strength: 0.3` only when the strength is not 0,
`Seed resize from: 512x768` (width x height) only when both sides are over 0, and
`RNG: CPU` or `RNG: NV`, nothing for its default GPU noise: a missing RNG reads as GPU
(`modules/infotext_utils.py`, `parse_generation_parameters`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.seeds import MAX_SEED

VARIATION_SEED = "Variation seed"
VARIATION_STRENGTH = "Variation seed strength"
SEED_RESIZE_FROM = "Seed resize from"
RNG = "RNG"
SCHEDULE_TYPE = "Schedule type"

NOISE_SOURCES = ("CPU", "NV", "GPU")  # A1111's "Random number generator source" choices
DEFAULT_NOISE = "GPU"

# What A1111 1.10 renders each k-diffusion sampler with when `Schedule type` is Automatic or
# absent: the `scheduler` option of its entry in `samplers_k_diffusion`
# (modules/sd_samplers_kdiffusion.py); an entry without one takes the model's own sigmas,
# which is the "Uniform" schedule (modules/sd_schedulers.py, `uniform`).
AUTOMATIC_SCHEDULE: dict[str, str] = {
    "DPM++ 2M": "Karras",
    "DPM++ SDE": "Karras",
    "DPM++ 2M SDE": "Exponential",
    "DPM++ 2M SDE Heun": "Exponential",
    "DPM++ 2S a": "Karras",
    "DPM++ 3M SDE": "Exponential",
    "Euler a": "Uniform",
    "Euler": "Uniform",
    "LMS": "Uniform",
    "Heun": "Uniform",
    "DPM2": "Karras",
    "DPM2 a": "Karras",
    "DPM fast": "Uniform",
    "DPM adaptive": "Uniform",
    "Restart": "Karras",
}
# A1111's timestep samplers (modules/sd_samplers_timesteps.py) have no schedule type and
# ignore one: UniPC or DDIM with `Schedule type: Karras` renders as plain UniPC or DDIM.
TIMESTEP_SAMPLERS = frozenset({"DDIM", "DDIM CFG++", "PLMS", "UniPC"})
_PLAIN = "Uniform"
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")  # a side of 5 digits or fewer: int() stays cheap


@dataclass(frozen=True)
class Variation:
    """A variation as infotext carries it; strength 0 is none."""

    variation_seed: int | None = None
    strength: float = 0.0
    resize_from: tuple[int, int] | None = None  # (width, height) in pixels


def variation_params(variation: Variation) -> dict[str, str]:
    """The pairs A1111 writes for a variation, in its order; empty for none."""
    params: dict[str, str] = {}
    if variation.strength != 0 and variation.variation_seed is not None:
        params[VARIATION_SEED] = str(variation.variation_seed)
        params[VARIATION_STRENGTH] = str(float(variation.strength))
    if variation.resize_from is not None and min(variation.resize_from) > 0:
        width, height = variation.resize_from
        params[SEED_RESIZE_FROM] = f"{width}x{height}"
    return params


def read_variation(params: Mapping[str, str], warnings: list[str]) -> Variation:
    """The variation in parsed infotext; an unreadable value is left out, with a warning."""
    seed = _int(params, VARIATION_SEED, warnings)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        warnings.append(f"{VARIATION_SEED} {seed} is outside 0..{MAX_SEED}")
        seed = None
    strength = _float(params, VARIATION_STRENGTH, warnings)
    if strength is not None and not 0 <= strength <= 1:
        warnings.append(f"{VARIATION_STRENGTH} {strength} is outside 0..1")
        strength = None
    if strength and seed is None:
        warnings.append(f"{VARIATION_STRENGTH} without a {VARIATION_SEED}: no variation")
        strength = None
    resize_from = None
    text = params.get(SEED_RESIZE_FROM)
    if text is not None:
        match = _SIZE.match(text.strip())
        if match:
            width, height = int(match[1]), int(match[2])
            resize_from = (width, height) if width > 0 and height > 0 else None
        else:
            warnings.append(f"cannot read {SEED_RESIZE_FROM} {text!r}")
    return Variation(seed if strength else None, strength or 0.0, resize_from)


def noise_of(generator_device: str) -> str:
    """The A1111 RNG that makes the noise a generator device makes here."""
    return {"cpu": "CPU", "nv": "NV"}.get(generator_device, "GPU")


def rng_value(source: str) -> str | None:
    """`RNG` as A1111 writes it: nothing for its default, GPU."""
    if source not in NOISE_SOURCES:
        raise ValueError(f"noise source {source!r} is not one of {', '.join(NOISE_SOURCES)}")
    return None if source == DEFAULT_NOISE else source


def noise_source(params: Mapping[str, str]) -> str:
    """The noise an A1111 image started from; a missing `RNG` is A1111's default, GPU."""
    return params.get(RNG, DEFAULT_NOISE)


def noise_warning(params: Mapping[str, str], ours: str) -> str | None:
    """Why a loaded image's start noise may differ from the noise rendered here, or None."""
    theirs = noise_source(params)
    if theirs == ours:
        return None
    if theirs == "GPU" and ours == "NV":
        return "made with A1111's GPU noise: NV noise equals it when that GPU was an NVIDIA one"
    hint = " (NV noise reproduces NVIDIA GPU noise)" if theirs == "GPU" else ""
    return f"made with {theirs} noise, rendered here with {ours} noise: it will differ{hint}"


def automatic_schedule(sampler: str) -> str | None:
    """The schedule A1111's "Automatic" gives `sampler`; None where it takes no schedule type."""
    return AUTOMATIC_SCHEDULE.get(sampler)


def schedule_type_to_write(sampler: str, rendered: str) -> str | None:
    """`Schedule type` for a tile rendered with `rendered` sigmas, as A1111 would write it.

    A1111 writes the schedule's label whenever it is not the model's own sigmas (also an
    automatic Karras); None where A1111 reading no key renders the same: a plain schedule on a
    sampler whose Automatic is plain, or a timestep sampler, which ignores the key.
    """
    if sampler in TIMESTEP_SAMPLERS:
        return None
    if rendered == _PLAIN and automatic_schedule(sampler) in (_PLAIN, None):
        return None
    return rendered


def resolve_schedule(sampler: str, schedule_type: str | None) -> str | None:
    """The schedule A1111 renders an infotext's sampler with; None for a timestep sampler.

    A missing `Schedule type` reads as Automatic, as in A1111.
    """
    if sampler in TIMESTEP_SAMPLERS:
        return None
    if schedule_type in (None, "Automatic"):
        return automatic_schedule(sampler)
    return schedule_type


def _int(params: Mapping[str, str], key: str, warnings: list[str]) -> int | None:
    if key not in params:
        return None
    try:
        return int(params[key])
    except ValueError:
        warnings.append(f"cannot read {key} {params[key]!r}")
        return None


def _float(params: Mapping[str, str], key: str, warnings: list[str]) -> float | None:
    if key not in params:
        return None
    try:
        return float(params[key])
    except ValueError:
        warnings.append(f"cannot read {key} {params[key]!r}")
        return None
