"""A transformer on its own, as ComfyUI users keep one (GGUF, fp8 .safetensors), loaded into
the pipeline `--config` names, recorded by its hash and replayed bit-exact."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from diffusers.quantizers.gguf.utils import GGUFLinear
from safetensors.torch import save_file

from pipeline.builder import EngineSettings
from pipeline.checkpoints import file_sha256
from pipeline.engine import Engine
from pipeline.loading import ModelLoadError, load_model, model_dtype
from pipeline.recipe import pixels_sha256
from pipeline.requests import GridRequest
from pipeline.tiny import build_tiny_pipeline

REQUEST = GridRequest("a lighthouse at dusk", "4", steps=2, width=32, height=32)


@pytest.fixture(scope="module")
def flux_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny-flux"
    build_tiny_pipeline("tiny-flux").save_pretrained(folder)
    return folder


def transformer_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_model(str(folder), device="cpu").pipe.transformer.state_dict()


def write_gguf(weights: dict[str, torch.Tensor], path: Path) -> Path:
    """Q8_0 where llama.cpp would use it (matrices whose rows split into 32-blocks), F32 else."""
    writer = gguf.GGUFWriter(str(path), arch="flux")
    q8 = gguf.GGMLQuantizationType.Q8_0
    for name, tensor in weights.items():
        array = tensor.float().numpy()
        if array.ndim == 2 and array.shape[1] % 32 == 0:
            writer.add_tensor(name, gguf.quants.quantize(array, q8), raw_dtype=q8)
        else:
            writer.add_tensor(name, array.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_gguf_transformer_loads_into_its_config_and_replays_bit_exact(
    flux_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = write_gguf(transformer_weights(flux_folder), tmp_path / "flux-Q8_0.gguf")
    model = load_model(str(path), device="cpu", config=str(flux_folder))
    assert isinstance(model.pipe.transformer.transformer_blocks[0].attn.to_q, GGUFLinear)
    engine = Engine(model)
    tile = engine.run(REQUEST)[0]
    recipe = tile.recipe
    assert (recipe.model_sha256, recipe.model_config) == (file_sha256(path), str(flux_folder))
    settings = EngineSettings.for_recipe(recipe)
    assert (settings.model, settings.config) == (str(path), str(flux_folder))
    assert pixels_sha256(engine.replay(recipe).image) == pixels_sha256(tile.image)


def test_an_fp8_transformer_stays_in_fp8_and_replays_bit_exact(
    flux_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fp8 = {name: t.to(torch.float8_e4m3fn) for name, t in transformer_weights(flux_folder).items()}
    path = tmp_path / "flux-fp8.safetensors"
    save_file(fp8, path)
    engine = Engine(load_model(str(path), device="cpu", config=str(flux_folder)))
    weight = engine.model.pipe.transformer.transformer_blocks[0].attn.to_q.weight
    assert weight.dtype == torch.float8_e4m3fn
    tile = engine.run(REQUEST)[0]
    assert pixels_sha256(engine.replay(tile.recipe).image) == pixels_sha256(tile.image)


def test_a_transformer_file_without_config_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "flux-Q8_0.gguf"
    path.write_bytes(b"GGUF")
    with pytest.raises(ModelLoadError, match="transformer on its own: pass --config") as caught:
        load_model(str(path), device="cpu")
    assert "\n" not in str(caught.value)


def test_a_gguf_file_without_the_gguf_package_is_refused_naming_it(
    flux_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.checkpoints.package_missing", lambda package: True)
    path = tmp_path / "flux-Q8_0.gguf"
    path.write_bytes(b"GGUF")
    with pytest.raises(ModelLoadError, match="needs the gguf package"):
        load_model(str(path), device="cpu", config=str(flux_folder))


def test_a_flow_folder_and_a_transformer_file_load_in_bfloat16_on_cuda(
    flux_folder: Path, tmp_path: Path
) -> None:
    """fp16 overflows in T5 and Flux: the family is read from the files before they load."""
    path = write_gguf(transformer_weights(flux_folder), tmp_path / "flux-Q8_0.gguf")
    folder = str(flux_folder)
    assert model_dtype(folder, None, "auto", "cuda") == torch.bfloat16
    assert model_dtype(str(path), folder, "auto", "cuda") == torch.bfloat16
    assert model_dtype(str(path), folder, "auto", "cpu") == torch.float32
