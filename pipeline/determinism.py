"""Deterministic mode: the settings from diffusers' "Reproducible pipelines" guide.

Seeded generators fix the starting noise, but on a GPU cuBLAS and cuDNN may still pick
kernels whose results vary from run to run. These switches make the same request give the same
image on the same GPU, at some cost in speed.
"""

from __future__ import annotations

import os

import torch

# cuBLAS reads this when it creates its first handle, so it must be set before CUDA work starts.
_CUBLAS_WORKSPACE = ":16:8"


def enable_deterministic() -> None:
    """Switch torch to deterministic kernels; call before the model is loaded."""
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = _CUBLAS_WORKSPACE
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True)


def deterministic_enabled() -> bool:
    """Whether this process runs with deterministic kernels (for the About line and recipes)."""
    return (
        torch.are_deterministic_algorithms_enabled()
        and not torch.backends.cudnn.benchmark
        and os.environ.get("CUBLAS_WORKSPACE_CONFIG") == _CUBLAS_WORKSPACE
    )
