import threading
import warnings
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
from diffusers import StableDiffusionPipeline

from pipeline import loading
from pipeline.engine import Engine
from pipeline.loading import LoadedModel, ModelLoadError, load_model, load_model_or_tiny
from pipeline.requests import GridRequest


def test_the_pipeline_is_built_once_however_many_threads_ask(monkeypatch) -> None:
    builds = []
    real_build = loading.build_tiny_pipeline

    def counting_build(model_id: str) -> StableDiffusionPipeline:
        builds.append(model_id)
        return real_build(model_id)

    monkeypatch.setattr(loading, "_cache", {})
    monkeypatch.setattr(loading, "build_tiny_pipeline", counting_build)
    results: list[LoadedModel] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_model("tiny", "cpu"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len({id(model.pipe) for model in results}) == 1


def test_tiny_model_defaults_come_from_the_model(tiny: LoadedModel) -> None:
    assert tiny.is_tiny and tiny.device == "cpu"
    assert tiny.native_size == 32 * 2  # UNet sample size x VAE scale factor


def test_a_saved_local_folder_loads_offline_without_progress_bars_and_renders_the_same(
    tiny: LoadedModel, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    tiny.pipe.save_pretrained(tmp_path, safe_serialization=True)
    assert list(tmp_path.glob("unet/*.safetensors"))
    capfd.readouterr()
    local = load_model(str(tmp_path), "cpu")
    assert "Loading pipeline components" not in capfd.readouterr().err
    assert isinstance(local.pipe, StableDiffusionPipeline)
    assert local.pipe is not tiny.pipe and not local.is_tiny
    request = GridRequest("a red fox", (11,), steps=3)
    ours = Engine(local).run(request)[0].image
    theirs = Engine(tiny).run(request)[0].image
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_a_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no model_index\.json"):
        load_model(str(tmp_path), "cpu")


def test_an_uncached_hub_model_offline_is_a_one_line_error_without_library_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ModelLoadError) as error:
        warnings.simplefilter("always")
        load_model("seed-explorer-tests/no-such-model", "cpu")
    assert "\n" not in str(error.value)
    assert not [w for w in caught if "local_dir_use_symlinks" in str(w.message)]


def test_the_default_model_offline_falls_back_to_tiny_saying_so_in_our_words(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    model = load_model_or_tiny("seed-explorer-tests/no-such-model", explicit=False, device="cpu")
    assert model.is_tiny
    assert "is not in the Hugging Face cache and this machine is offline" in model.notice
    assert "--model tiny" in model.notice and "local diffusers folder" in model.notice
    printed = capfd.readouterr()
    assert "model_index.json" not in model.notice + printed.err + printed.out


def test_the_default_model_with_the_hub_out_of_reach_asks_once_and_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = []

    class Unreachable:
        def head(self, url: str, timeout: float) -> None:
            asked.append(url)
            raise OSError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(loading, "get_session", Unreachable)
    model = load_model_or_tiny("seed-explorer-tests/no-such-model", explicit=False, device="cpu")
    assert model.is_tiny and len(asked) == 1
    assert "this machine is offline (https://huggingface.co does not answer)" in model.notice


def test_a_model_named_explicitly_does_not_fall_back() -> None:
    with pytest.raises(ModelLoadError):
        load_model_or_tiny("seed-explorer-tests/no-such-model", explicit=True, device="cpu")
