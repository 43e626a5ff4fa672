"""LoRAs: specs, hub and local files, the fit check, weights, A1111's hashes, replay."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from pipeline.lora import (
    LoraError,
    LoraSpec,
    apply_loras,
    check_lora_fits,
    lora_hashes,
    parse_lora_list,
    parse_lora_spec,
    resolve_lora_file,
)
from pipeline.tiny import TINY, build_random_pipeline, build_tiny_pipeline
from tests.pipeline.conftest import make_lora


def render(pipe: StableDiffusionPipeline) -> np.ndarray:
    generator = torch.Generator().manual_seed(11)
    return pipe("a harbour", num_inference_steps=2, generator=generator, output_type="np").images


@pytest.fixture(scope="module")
def base_pixels() -> np.ndarray:
    return render(build_tiny_pipeline())


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("style.safetensors", LoraSpec("style.safetensors", 1.0)),
        ("style.safetensors:0.6", LoraSpec("style.safetensors", 0.6)),
        ("owner/name:-1", LoraSpec("owner/name", -1.0)),
        ("/loras/at:12:00/style.safetensors", LoraSpec("/loras/at:12:00/style.safetensors")),
        (" owner/name/file.safetensors:2 ", LoraSpec("owner/name/file.safetensors", 2.0)),
    ],
)
def test_a_spec_takes_a_weight_after_its_last_colon(text: str, spec: LoraSpec) -> None:
    assert parse_lora_spec(text) == spec


@pytest.mark.parametrize("text", [":0.5", "style.safetensors:nan", ""])
def test_a_spec_without_a_lora_or_with_a_nonsense_weight_is_refused(text: str) -> None:
    with pytest.raises(LoraError):
        parse_lora_spec(text)


def test_the_environment_variable_is_comma_separated() -> None:
    assert parse_lora_list(["a.safetensors:0.5, b", "c"]) == [
        LoraSpec("a.safetensors", 0.5),
        LoraSpec("b"),
        LoraSpec("c"),
    ]


def test_a_lora_changes_the_image_and_replays_bit_exact(
    tiny_lora: Path, base_pixels: np.ndarray
) -> None:
    pipe = build_tiny_pipeline()
    [loaded] = apply_loras(pipe, [LoraSpec(str(tiny_lora), 0.8)], offline=True)
    pixels = render(pipe)
    assert not np.array_equal(pixels, base_pixels)
    again = build_tiny_pipeline()
    apply_loras(again, [LoraSpec(str(tiny_lora), 0.8)], offline=True)
    assert np.array_equal(render(again), pixels)
    assert (loaded.name, loaded.weight, loaded.source) == ("tiny-lora", 0.8, str(tiny_lora))


def test_the_weight_reaches_the_model(tiny_lora: Path, base_pixels: np.ndarray) -> None:
    file = tiny_lora / "pytorch_lora_weights.safetensors"
    images = []
    for weight in (0.0, 0.5):
        pipe = build_tiny_pipeline()
        apply_loras(pipe, [LoraSpec(str(file), weight)], offline=True)
        images.append(render(pipe))
    assert np.array_equal(images[0], base_pixels)
    assert not np.array_equal(images[1], base_pixels)


def test_the_hashes_are_the_files_and_a1111s(tiny_lora: Path) -> None:
    file = tiny_lora / "pytorch_lora_weights.safetensors"
    data = file.read_bytes()
    body = data[8 + int.from_bytes(data[:8], "little") :]
    assert lora_hashes(file) == (
        hashlib.sha256(data).hexdigest(),
        hashlib.sha256(body).hexdigest()[:12],
    )


@pytest.mark.parametrize(
    "arch",
    [
        dataclasses.replace(TINY, text_width=48),  # same layers, other sizes
        dataclasses.replace(
            TINY,
            unet_channels=(32, 64, 64),
            unet_down=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            unet_up=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        ),  # layers the tiny model lacks
    ],
    ids=["other-sizes", "other-layers"],
)
def test_a_lora_for_another_architecture_is_refused_in_one_line(
    tmp_path: Path, arch, base_pixels: np.ndarray
) -> None:
    file = make_lora(build_random_pipeline(arch), tmp_path / "other")
    pipe = build_tiny_pipeline()
    with pytest.raises(LoraError, match="does not fit this model") as caught:
        apply_loras(pipe, [LoraSpec(str(file))], offline=True)
    assert "\n" not in str(caught.value)
    assert np.array_equal(render(pipe), base_pixels)


def test_an_sdxl_text_encoder_lora_is_refused_on_sd1() -> None:
    state = {"text_encoder_2.encoder.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(4, 32)}
    with pytest.raises(LoraError, match="no text_encoder_2"):
        check_lora_fits(build_tiny_pipeline(), state, "xl")


def test_a_hub_lora_comes_from_the_cache_offline(
    tiny_lora: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    commit = "1" * 40
    repo = tmp_path / "models--someone--tiny-lora"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_lora, repo / "snapshots" / commit)
    file, name = resolve_lora_file(LoraSpec("someone/tiny-lora"), offline=True)
    assert (file.name, name) == ("pytorch_lora_weights.safetensors", "tiny-lora")
    with pytest.raises(LoraError, match="not cached and the hub is offline"):
        resolve_lora_file(LoraSpec("someone/other/file.safetensors"), offline=True)


def test_pickle_and_missing_loras_are_refused(tmp_path: Path) -> None:
    (tmp_path / "old.ckpt").write_bytes(b"\x80\x04")
    with pytest.raises(LoraError, match="pickle"):
        resolve_lora_file(LoraSpec(str(tmp_path / "old.ckpt")))
    with pytest.raises(LoraError, match="holds no pytorch_lora_weights"):
        resolve_lora_file(LoraSpec(str(tmp_path)))
    with pytest.raises(LoraError, match="does not exist"):
        resolve_lora_file(LoraSpec("./nowhere.safetensors"))
