"""Loading errors said once: only a missing fp16 variant retries; no CUDA is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DiffusionPipeline

from pipeline import loading
from pipeline.loading import ModelLoadError, pick_device


def test_a_folder_without_an_fp16_variant_loads_its_full_weights_in_fp16(
    tiny_folder: Path,
) -> None:
    pipe = loading._from_pretrained(str(tiny_folder), torch.float16, safety_checker=False)
    assert pipe.unet.dtype == torch.float16


def test_any_other_failure_is_reported_as_it_happened_without_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []

    def failing(model: str, **kwargs: object) -> DiffusionPipeline:
        calls.append(kwargs.get("variant"))
        raise OSError("Connection reset by peer")

    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", failing)
    with pytest.raises(OSError, match="Connection reset"):
        loading._from_pretrained("someone/model", torch.float16, safety_checker=True)
    assert calls == ["fp16"]  # not a second, full-weights download after a network error


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_one_line() -> None:
    with pytest.raises(ModelLoadError, match="--device cuda") as caught:
        pick_device("cuda")
    assert "\n" not in str(caught.value)
