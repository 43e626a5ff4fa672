"""Your own checkpoints through the app: a single file, a LoRA, a few-step model, as a user
starts them (`build_engine`), renders, reads the infotext and replays."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import LCMScheduler, StableDiffusionPipeline, UNet2DConditionModel

from pipeline import loading
from pipeline.builder import EngineSettings, build_engine
from pipeline.engine import Engine
from pipeline.loading import ModelLoadError
from pipeline.lora import LoraSpec
from pipeline.metadata import A1111_PARAM, infotext, parse_infotext
from pipeline.plan import Defaults
from pipeline.recipe import pixels_sha256
from pipeline.requests import CompareRequest, GridRequest
from pipeline.tiny import TINY, build_random_pipeline, build_tiny_pipeline
from tests.pipeline.conftest import make_lora
from ui.demo import about_line

FAST = {"steps": 2}


def grid(engine: Engine, **settings: object) -> list:
    return engine.run(GridRequest("a lighthouse", "3, 4", **{**FAST, **settings}))


def a1111(text: str) -> dict[str, str]:
    """What A1111's own pattern reads from the settings line (quoted values unquoted)."""
    return {key: value.strip('"') for key, value in A1111_PARAM.findall(text.split("\n")[-1])}


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model loaded from its files again, as in a new process."""
    monkeypatch.setattr(loading, "_cache", {})


def test_a_single_file_renders_the_folders_pixels_with_a1111s_model_hash(
    tiny_folder: Path, tiny_single_file: Path
) -> None:
    from_file = build_engine(EngineSettings(str(tiny_single_file), "cpu", config=str(tiny_folder)))
    from_folder = build_engine(EngineSettings(str(tiny_folder), "cpu"))
    tiles = grid(from_file)
    assert [pixels_sha256(t.image) for t in tiles] == [
        pixels_sha256(t.image) for t in grid(from_folder)
    ]
    recipe = tiles[0].recipe
    sha256 = hashlib.sha256(tiny_single_file.read_bytes()).hexdigest()
    assert (recipe.model_sha256, recipe.model_config) == (sha256, str(tiny_folder))
    params = a1111(infotext(recipe))
    assert (params["Model hash"], params["Model"]) == (sha256[:10], "tiny-original")
    # A folder's hash is ours, in the recipe only: no Model hash pretends to be A1111's.
    folder_recipe = grid(from_folder)[0].recipe
    assert folder_recipe.model_hash is None and len(folder_recipe.model_sha256) == 64
    assert "Model hash" not in a1111(infotext(folder_recipe))


def test_config_for_a_folder_is_refused_in_one_line(tiny_folder: Path) -> None:
    with pytest.raises(ModelLoadError, match="--config is for a single-file") as caught:
        build_engine(EngineSettings(str(tiny_folder), "cpu", config=str(tiny_folder)))
    assert caught.value.hint == "leave --config out"


def test_a_lora_changes_the_image_is_named_in_the_infotext_and_replays_bit_exact(
    tiny_folder: Path, tiny_lora: Path, fresh_cache: None
) -> None:
    plain = grid(build_engine(EngineSettings(str(tiny_folder), "cpu")))
    styled = build_engine(
        EngineSettings(str(tiny_folder), "cpu", loras=(LoraSpec(str(tiny_lora), 0.7),))
    )
    tiles = grid(styled)
    for before, after in zip(plain, tiles, strict=True):
        assert not np.array_equal(np.asarray(before.image), np.asarray(after.image))
    recipe = tiles[1].recipe
    [lora] = recipe.loras
    file = tiny_lora / "pytorch_lora_weights.safetensors"
    assert (lora["name"], lora["weight"], lora["source"]) == ("tiny-lora", 0.7, str(tiny_lora))
    assert lora["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    text = infotext(recipe)
    assert a1111(text)["Lora hashes"] == f"tiny-lora: {lora['a1111_hash']}"
    assert parse_infotext(text)["Prompt"] == "a lighthouse <lora:tiny-lora:0.7>"
    assert "**LoRAs** tiny-lora (0.7)" in about_line(styled)

    loading._cache.clear()  # replay loads the model and the LoRA from the files again
    again = build_engine(EngineSettings.for_recipe(recipe)).replay(recipe)
    assert again.recipe.loras == recipe.loras
    assert pixels_sha256(again.image) == pixels_sha256(tiles[1].image)


def test_a_lora_for_another_architecture_stops_start_up_in_one_line(
    tiny_folder: Path, tmp_path: Path
) -> None:
    wider = build_random_pipeline(dataclasses.replace(TINY, text_width=48))
    other = make_lora(wider, tmp_path / "other")
    with pytest.raises(ModelLoadError, match="does not fit this model") as caught:
        build_engine(EngineSettings(str(tiny_folder), "cpu", loras=(LoraSpec(str(other)),)))
    assert "\n" not in str(caught.value) and "--lora" in caught.value.hint


@pytest.fixture(scope="module")
def tiny_lcm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model made LCM-style, saved: an LCM scheduler and a UNet with the guidance
    embedding (`time_cond_proj_dim`)."""
    pipe = build_tiny_pipeline()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = {k: v for k, v in pipe.unet.config.items() if not k.startswith("_")}
        unet = UNet2DConditionModel.from_config({**config, "time_cond_proj_dim": 16})
    lcm = StableDiffusionPipeline(
        **{
            **pipe.components,
            "unet": unet.eval(),
            "scheduler": LCMScheduler.from_config(pipe.scheduler.config),
        },
        requires_safety_checker=False,
    )
    folder = tmp_path_factory.mktemp("models") / "my-lcm"
    lcm.save_pretrained(folder)
    return folder


def test_an_lcm_model_gets_few_step_defaults_and_its_guidance_embedding(
    tiny_lcm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = build_engine(EngineSettings(str(tiny_lcm), "cpu"))
    defaults = engine.planner.defaults()
    assert (defaults["scheduler"], defaults["steps"], defaults["guidance_scale"]) == ("LCM", 4, 8.0)
    assert defaults["compare"] == ["LCM", "TCD"]
    seen: list[tuple[int, torch.Tensor | None]] = []
    forward = UNet2DConditionModel.forward

    def watching(self, sample, timestep, *args, **kwargs):
        seen.append((sample.shape[0], kwargs.get("timestep_cond")))
        return forward(self, sample, timestep, *args, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", watching)
    settings = {"steps": 2, "guidance_scale": 6.0}
    plain = engine.run(GridRequest("a fox", "5", **settings))[0]
    lockstep = engine.run(CompareRequest("a fox", 5, ("LCM",), **settings))[0]
    assert pixels_sha256(plain.image) == pixels_sha256(lockstep.image)
    # Both paths: no unconditional half, the guidance (w = 6 - 1) as the UNet's embedding.
    expected = engine.model.pipe.get_guidance_scale_embedding(torch.tensor([5.0]), 16)
    assert [rows for rows, _ in seen] == [1] * 4
    assert all(cond is not None and torch.allclose(cond, expected) for _, cond in seen)


def test_a_turbo_model_gets_cfg_zero_one_trailing_step(tiny_folder: Path, tmp_path: Path) -> None:
    turbo = shutil.copytree(tiny_folder, tmp_path / "sd-turbo")
    engine = build_engine(EngineSettings(str(turbo), "cpu"))
    defaults = engine.planner.defaults()
    assert (defaults["scheduler"], defaults["steps"], defaults["guidance_scale"]) == (
        "Euler trailing",
        1,
        0.0,
    )
    tile = engine.run(GridRequest("a fox", "5"))[0]
    assert (tile.recipe.steps, tile.recipe.guidance_scale) == (1, 0.0)
    assert tile.recipe.scheduler_config["timestep_spacing"] == "trailing"
    assert a1111(infotext(tile.recipe))["Schedule type"] == "SGM Uniform"


def test_default_flags_override_and_one_that_cannot_run_stops_start_up(
    tiny_folder: Path, tmp_path: Path
) -> None:
    turbo = shutil.copytree(tiny_folder, tmp_path / "sd-turbo")
    told = Defaults(scheduler="Euler a trailing", steps=3, guidance_scale=1.5)
    engine = build_engine(EngineSettings(str(turbo), "cpu", defaults=told))
    defaults = engine.planner.defaults()
    assert (defaults["scheduler"], defaults["steps"], defaults["guidance_scale"]) == (
        "Euler a trailing",
        3,
        1.5,
    )
    with pytest.raises(ModelLoadError, match="Default scheduler: unknown scheduler") as caught:
        build_engine(EngineSettings("tiny", "cpu", defaults=Defaults(scheduler="LCM")))
    assert "\n" not in str(caught.value) and "--default-scheduler" in caught.value.hint
