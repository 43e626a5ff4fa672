"""Speed and memory switches for the cached pipeline, and when each one is on.

- Attention: diffusers' default processor on torch 2 is already PyTorch's fused
  `scaled_dot_product_attention` (AttnProcessor2_0); nothing to switch on. `attention_kind`
  says which processor runs, so a report can show it.
- channels_last UNet: on CUDA, always (convolutions in NHWC layout suit tensor cores);
  elsewhere off, since CPU convolutions gain nothing measurable from it.
- VAE slicing: on CUDA, a call that renders more than `VAE_SLICE_OVER` images decodes them one
  at a time, so the decode's peak memory stops growing with the batch.
- Attention slicing: a launch setting (--attention-slicing); less memory, slower.
- torch.compile of the UNet: a launch setting (--compile); the first call at each new shape
  compiles (tens of seconds), later calls are faster on CUDA.

None of them changes an image beyond fp16 rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from diffusers import DiffusionPipeline

# The engine's default micro-batch: the app's default runs never slice the VAE.
VAE_SLICE_OVER = 4


@dataclass(frozen=True)
class Speedups:
    """Which switches a pipeline gets; `for_device` gives the app's choice."""

    channels_last: bool = False
    attention_slicing: bool = False
    compile: bool = False

    @classmethod
    def for_device(
        cls, device: str, attention_slicing: bool = False, compile: bool = False
    ) -> Speedups:
        return cls(
            channels_last=device.startswith("cuda"),
            attention_slicing=attention_slicing,
            compile=compile,
        )

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


def apply(pipe: DiffusionPipeline, speedups: Speedups) -> None:
    """Switch the cached pipeline's modules in place, once, before it serves a request."""
    if speedups.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
    if speedups.attention_slicing:
        pipe.enable_attention_slicing()
    if speedups.compile:
        pipe.unet.compile()  # in place: same module, same state_dict keys


def slice_vae(pipe: DiffusionPipeline, images: int) -> None:
    """On CUDA, decode one image at a time in calls of more than `VAE_SLICE_OVER` images.

    The VAE is shared by every request view; callers hold the engine's model lock.
    """
    if pipe.device.type != "cuda":
        return
    if images > VAE_SLICE_OVER:
        pipe.vae.enable_slicing()
    else:
        pipe.vae.disable_slicing()


def attention_kind(pipe: DiffusionPipeline) -> str:
    """The UNet's attention processor(s) by class name, e.g. "AttnProcessor2_0" (SDPA)."""
    return ", ".join(sorted({type(p).__name__ for p in pipe.unet.attn_processors.values()}))
