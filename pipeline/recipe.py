"""A tile's recipe: everything needed to render it again, here or in another tool."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from PIL import Image


@dataclass(frozen=True)
class Recipe:
    """One image's full recipe, as the engine rendered it."""

    kind: str  # "grid", "refine" or "compare"
    prompt: str  # exactly as rendered (for a refinement: the prompt with its suffix)
    negative_prompt: str
    seed: int
    sampler: str  # display name, "DPM++ 2M Karras"
    scheduler_class: str
    scheduler_config: dict[str, Any]
    steps: int
    guidance_scale: float
    width: int
    height: int
    model_id: str
    model_hash: str | None  # sha256 of the UNet weights, first 10 hex digits
    model_revision: str | None  # the hub commit, when loaded from the hub
    dtype: str  # "float16", "float32"
    device: str  # "cuda", "cpu", "mps"
    device_name: str  # "NVIDIA H100 80GB HBM3", the CPU's name
    generator_device: str  # where the seed made its noise: "cpu" is portable
    batch_size: int  # images in the diffusers call that rendered it: replay uses the same
    batch_index: int  # its place in that call
    noise_sha256: str  # of the initial latents, as float bytes
    deterministic: bool  # torch.use_deterministic_algorithms was on
    versions: dict[str, str] = field(default_factory=dict)  # app, torch, diffusers, ...
    suffix: str | None = None  # the refinement suffix, already part of `prompt`
    # Rendered in lockstep with other schedulers (a comparison): the group, in order, as
    # {"schedulers": [{"sampler", "scheduler_config", "steps"}, ...], "per_call": lanes per
    # UNet call}; `batch_size` is the group's size and `batch_index` this tile's place in it.
    # None: rendered in a call of its own (recipes from before lockstep say nothing).
    lockstep: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


def pixels_sha256(image: Image.Image) -> str:
    """The hash of an image's RGB pixels: equal hashes mean a bit-exact image."""
    return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


def tensor_sha256(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
