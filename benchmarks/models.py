"""The pipelines the benchmarks run on: the built-in tiny model and a mid-size random one."""

from __future__ import annotations

import time

import torch

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


def tiny(device: str) -> LoadedModel:
    """The app's own cached tiny model (fp16 on CUDA, float32 elsewhere)."""
    return load_model("tiny", device=device)


def mid(device: str) -> LoadedModel:
    """Stable Diffusion's layout, shrunk: 128x128 images, a UNet of 3 levels, 64-256 channels
    and 18 M parameters (SD 1.5: 4 levels, 320-1280 channels, 860 M).

    Random weights (seeded), so the images are noise; built in memory, no download.
    """
    started = time.perf_counter()
    pipe = build_random_pipeline(MID).to(device)
    dtype = torch.float16 if device == "cuda" else torch.float32
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
    return LoadedModel(pipe, MID_MODEL_ID, device, dtype, time.perf_counter() - started)
