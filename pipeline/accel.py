"""Speed and memory switches for the cached pipeline, and when each one is on.

- Attention: diffusers' default processor on torch 2 is already PyTorch's fused
  `scaled_dot_product_attention` (AttnProcessor2_0); nothing to switch on. `attention_kind`
  says which processor runs, so a report can show it.
- channels_last UNet: on CUDA, always (convolutions in NHWC layout suit tensor cores);
  elsewhere off, since CPU convolutions gain nothing measurable from it.
- VAE slicing: on CUDA, a call that renders more than `VAE_SLICE_OVER` images decodes them one
  at a time, so the decode's peak memory stops growing with the batch.
- Attention slicing: a launch setting (--attention-slicing); less memory, slower.
- torch.compile of the UNet: a launch setting (--compile). Every change of an input's shape or
  dtype recompiles (tens of seconds on a GPU, then a silent fall-back after eight), so the
  compiled UNet sees one form only: the timestep always a float32 vector of the batch size
  (diffusers passes a 0-d tensor, int64 or float32 by scheduler; lockstep a vector), which the
  UNet's own embedding computes identically; and the engine pads every batched call to the
  micro-batch (pipeline/rendering.py), recording the padded shape in each tile's recipe so that
  replay stays bit-exact. Lockstep compare calls shrink as lanes finish; torch.compile's
  automatic dynamic shapes make that batch dimension dynamic after its first change.

None of them changes an image beyond fp16 rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from diffusers import DiffusionPipeline

# On CUDA a call of more images, the default micro-batch (8) among them, decodes one at a time.
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
    if speedups.channels_last and hasattr(pipe, "unet"):  # a transformer has no channels
        pipe.unet.to(memory_format=torch.channels_last)
    if speedups.attention_slicing:
        pipe.enable_attention_slicing()
    if speedups.compile:
        compile_unet(pipe.unet)


def compile_unet(unet: torch.nn.Module, backend: str = "inductor") -> None:
    """torch.compile the UNet's forward in place (same module, same state_dict keys), behind
    a hook that gives it one timestep form."""
    unet.register_forward_pre_hook(_one_timestep_form, with_kwargs=True)
    unet.forward = torch.compile(unet.forward, backend=backend)


def _one_timestep_form(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """(sample, timestep, ...) with the timestep as a float32 vector, one entry per sample:
    what UNet2DConditionModel makes of any timestep before embedding it, so nothing changes."""
    sample = args[0] if args else kwargs.pop("sample")
    timestep = args[1] if len(args) > 1 else kwargs.pop("timestep")
    rest = args[2:]
    vector = torch.as_tensor(timestep, device=sample.device).to(torch.float32).reshape(-1)
    return (sample, vector.expand(sample.shape[0]), *rest), kwargs


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
    denoiser = pipe.unet if hasattr(pipe, "unet") else pipe.transformer
    return ", ".join(sorted({type(p).__name__ for p in denoiser.attn_processors.values()}))
