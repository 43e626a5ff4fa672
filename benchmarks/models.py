"""The pipelines the benchmarks run on: the built-in tiny model, a mid-size random one, and
Stable Diffusion 1.5's architecture with random weights (CUDA only)."""

from __future__ import annotations

import time

import torch

from pipeline import accel
from pipeline.loading import LoadedModel, load_model
from pipeline.tiny import RandomArchitecture, build_random_pipeline

MID_MODEL_ID = "mid (random weights)"
MID = RandomArchitecture(
    unet_channels=(64, 128, 256),
    unet_down=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    unet_up=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    sample_size=16,
    vae_channels=(32, 64, 128, 128),
    text_width=128,
    text_layers=6,
    text_intermediate=512,
)
SD15_MODEL_ID = "sd15 (random weights)"
# Stable Diffusion 1.5's UNet (860 M parameters, 8 attention heads), VAE and CLIP ViT-L/14
# text encoder; only the tokenizer's vocabulary is smaller, which costs no compute.
SD15 = RandomArchitecture(
    unet_channels=(320, 640, 1280, 1280),
    unet_down=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    unet_up=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    sample_size=64,
    vae_channels=(128, 256, 512, 512),
    vae_layers=2,
    text_width=768,
    text_layers=12,
    text_intermediate=3072,
    text_heads=12,
)
STAND_IN_ID = "512 stand-in (random weights)"
# What a GPU user waits for, on this CPU: a small UNet on SD 1.5's 64x64 latent, attention only
# at its 8x8 level (CPU attention at 32x32 would cost seconds a step), so that it denoises
# within a few times SD 1.5's speed on a fast GPU, and a small VAE of four levels, decoding 8x
# up to 512x512 images: the overhead around the model at GPU speed, visible on the CPU.
STAND_IN_512 = RandomArchitecture(
    unet_channels=(16, 16, 16, 32),
    unet_down=("DownBlock2D",) * 3 + ("CrossAttnDownBlock2D",),
    unet_up=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * 3,
    sample_size=64,
    vae_channels=(8, 8, 16, 16),
    text_width=32,
    text_layers=5,
    text_intermediate=37,
    norm_groups=8,
)
NAMES = ("tiny", "mid", "sd15")
SD15_NEEDS_CUDA = (
    "sd15 runs only with --device cuda: on 2 CPU cores its 860 M-parameter UNet takes about "
    "3 minutes per 20-step image (float32, 512x512)"
)


class TooSlow(ValueError):
    """A model this device would take far too long to benchmark."""


def tiny(device: str) -> LoadedModel:
    """The app's own cached tiny model, switched as the app switches it."""
    model = load_model("tiny", device=device)
    accel.apply(model.pipe, accel.Speedups.for_device(device))
    return model


def mid(device: str) -> LoadedModel:
    """Stable Diffusion's layout, shrunk: 128x128 images, a UNet of 3 levels, 64-256 channels
    and 18 M parameters (SD 1.5: 4 levels, 320-1280 channels, 860 M).

    Random weights (seeded), so the images are noise; built in memory, no download.
    """
    return _random(MID, MID_MODEL_ID, device)


def sd15(device: str) -> LoadedModel:
    """Stable Diffusion 1.5's architecture, fp16, 512x512: the real model's compute, random
    weights, no download. Built on the GPU directly (seconds, not a minute on the CPU)."""
    if not device.startswith("cuda"):
        raise TooSlow(SD15_NEEDS_CUDA)
    return _random(SD15, SD15_MODEL_ID, device)


def stand_in(device: str) -> LoadedModel:
    """The 512x512 GPU-speed stand-in (`STAND_IN_512`)."""
    return _random(STAND_IN_512, STAND_IN_ID, device)


def build(name: str, device: str) -> LoadedModel:
    return {"tiny": tiny, "mid": mid, "sd15": sd15}[name](device)


def _random(arch: RandomArchitecture, model_id: str, device: str) -> LoadedModel:
    started = time.perf_counter()
    with torch.device(device):
        pipe = build_random_pipeline(arch)
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
    accel.apply(pipe, accel.Speedups.for_device(device))
    return LoadedModel(pipe, model_id, device, dtype, time.perf_counter() - started)
