"""Single-file checkpoints: family detection, offline configs, refusals, A1111's model hash."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)
from safetensors.torch import save_file

from pipeline.checkpoints import (
    CheckpointError,
    check_single_file,
    folder_identity,
    is_single_file,
    load_single_file,
    single_file_identity,
)
from pipeline.tiny import build_tiny_pipeline
from tests.pipeline.original_format import pipeline_to_original


def render(pipe: StableDiffusionPipeline) -> np.ndarray:
    generator = torch.Generator().manual_seed(7)
    return pipe("a lighthouse", num_inference_steps=2, generator=generator, output_type="np").images


@pytest.fixture
def empty_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A hub cache with nothing in it, whatever this machine has cached."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    return tmp_path


def test_the_original_layout_helper_converts_back_with_diffusers_own_functions() -> None:
    pipe = build_tiny_pipeline()
    original = pipeline_to_original(pipe)
    for converted, module in [
        (convert_ldm_unet_checkpoint(original, dict(pipe.unet.config)), pipe.unet),
        (convert_ldm_vae_checkpoint(original, dict(pipe.vae.config)), pipe.vae),
        (convert_ldm_clip_checkpoint(original), pipe.text_encoder),
    ]:
        expected = {k.removeprefix("text_model."): v for k, v in module.state_dict().items()}
        converted = {k.removeprefix("text_model."): v for k, v in converted.items()}
        assert converted.keys() == expected.keys()
        assert all(torch.equal(converted[key], expected[key]) for key in expected)


def test_a_single_file_with_config_loads_offline_and_renders_the_folders_pixels(
    tiny_folder: Path, tiny_single_file: Path
) -> None:
    checked = check_single_file(tiny_single_file, config=str(tiny_folder), offline=True)
    assert (checked.family, checked.config) == ("sd1", str(tiny_folder))
    from_file = load_single_file(checked, torch.float32)
    from_folder = StableDiffusionPipeline.from_pretrained(tiny_folder)
    assert type(from_file) is StableDiffusionPipeline
    assert from_file.safety_checker is None
    assert np.array_equal(render(from_file), render(from_folder))


def test_a_cached_hub_id_serves_as_config_offline(
    tiny_folder: Path, tiny_single_file: Path, empty_hub_cache: Path
) -> None:
    commit = "0" * 40
    repo = empty_hub_cache / "models--someone--tiny-sd"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(
        tiny_folder, repo / "snapshots" / commit, ignore=shutil.ignore_patterns("*.st*")
    )
    checked = check_single_file(tiny_single_file, config="someone/tiny-sd", offline=True)
    assert Path(checked.config) == repo / "snapshots" / commit


def test_offline_without_config_is_one_line_naming_the_flag(
    tiny_single_file: Path, empty_hub_cache: Path
) -> None:
    with pytest.raises(CheckpointError) as caught:
        check_single_file(tiny_single_file, offline=True)
    message = str(caught.value)
    assert "--config" in message and "stable-diffusion-v1-5" in message
    assert "\n" not in message


def test_online_without_a_cached_config_leaves_the_download_to_diffusers(
    tiny_single_file: Path, empty_hub_cache: Path
) -> None:
    checked = check_single_file(tiny_single_file, offline=False)
    assert checked.config == "stable-diffusion-v1-5/stable-diffusion-v1-5"


@pytest.mark.parametrize("suffix", [".ckpt", ".pt"])
def test_pickle_checkpoints_are_refused_with_the_reason(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x80\x04")
    assert is_single_file(str(path))
    with pytest.raises(CheckpointError, match=r"pickle.*run code.*safetensors only"):
        check_single_file(path)


UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
V2_KEY = "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
XL_KEY = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"
REFINER_KEY = "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias"


@pytest.mark.parametrize(
    ("shapes", "family"),
    [
        ({UNET_IN: (8, 4, 3, 3)}, "sd1"),
        ({UNET_IN: (8, 4, 3, 3), V2_KEY: (8, 1024)}, "sd2"),
        ({UNET_IN: (8, 4, 3, 3), XL_KEY: (8,)}, "sdxl"),
    ],
)
def test_the_family_comes_from_key_names_and_shapes(
    tmp_path: Path, tiny_folder: Path, shapes: dict, family: str
) -> None:
    path = tmp_path / "model.safetensors"
    save_file({key: torch.zeros(shape) for key, shape in shapes.items()}, str(path))
    assert check_single_file(path, config=str(tiny_folder)).family == family


@pytest.mark.parametrize(
    ("shapes", "reason"),
    [
        ({UNET_IN: (8, 9, 3, 3)}, "inpainting"),
        ({UNET_IN: (8, 4, 3, 3), REFINER_KEY: (8,)}, "refiner"),
        ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 8)}, "--lora"),
        ({"encoder.conv_in.weight": (8, 3, 3, 3)}, "no Stable Diffusion UNet"),
    ],
)
def test_files_that_are_not_text_to_image_checkpoints_are_refused(
    tmp_path: Path, tiny_folder: Path, shapes: dict, reason: str
) -> None:
    path = tmp_path / "model.safetensors"
    save_file({key: torch.zeros(shape) for key, shape in shapes.items()}, str(path))
    with pytest.raises(CheckpointError, match=reason):
        check_single_file(path, config=str(tiny_folder))


def test_a_file_that_is_not_safetensors_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"not a readable \.safetensors file"):
        check_single_file(path)


def test_the_model_hash_is_a1111s_sha256_prefix_and_the_model_its_stem(
    tiny_single_file: Path,
) -> None:
    identity = single_file_identity(tiny_single_file)
    assert identity.name == "tiny-original"
    assert identity.sha256 == hashlib.sha256(tiny_single_file.read_bytes()).hexdigest()
    assert identity.a1111_hash == identity.sha256[:10]


def test_a_folders_hash_follows_its_weight_files_only(tiny_folder: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny_folder, tmp_path / "copy")
    first = folder_identity(copy)
    assert first.a1111_hash is None and first.name == "copy"
    (copy / "unet" / "config.json").write_text((copy / "unet" / "config.json").read_text() + " ")
    assert folder_identity(copy).sha256 == first.sha256
    (copy / "unet" / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"another variant")
    assert folder_identity(copy).sha256 != first.sha256


def test_a_hub_cache_file_is_hashed_by_its_blob_name(tiny_folder: Path, tmp_path: Path) -> None:
    """The hub names each LFS blob by its sha256: the same hash without reading the file."""
    copy = shutil.copytree(tiny_folder, tmp_path / "snapshot")
    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    blob = blobs / hashlib.sha256(weights.read_bytes()).hexdigest()
    shutil.move(weights, blob)
    expected = folder_identity(tiny_folder, name="snapshot").sha256
    weights.symlink_to(blob)
    assert folder_identity(copy).sha256 == expected
    blob.write_bytes(b"changed, so reading it would give another hash")
    assert folder_identity(copy).sha256 == expected
