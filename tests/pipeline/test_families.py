"""Model families: SD 1.x, 2.x and XL through the same engine, in float32 and in float16."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from pipeline.engine import Engine
from pipeline.families import SD2, SDXL, Embedding
from pipeline.loading import ModelLoadError, load_model
from pipeline.preview import latents_to_previews
from pipeline.requests import CompareRequest, GridRequest
from tests.pipeline.helpers import record_calls

PROMPT = "a lighthouse at dusk"


def pixels(image: object) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def solo(engine: Engine, seed: int, steps: int) -> np.ndarray:
    """The diffusers guide's recipe on the family's own pipeline: one seed, the prompt as text."""
    pipe = engine.model.pipe
    view = type(pipe)(**pipe.components, **engine.renderer.view_options)
    view.set_progress_bar_config(disable=True)
    image = view(
        PROMPT,
        num_inference_steps=steps,
        guidance_scale=engine.planner.defaults()["guidance_scale"],
        generator=torch.Generator().manual_seed(seed),
    ).images[0]
    return pixels(image)


def test_n_seeds_give_n_tiles_each_its_seed_rendered_alone(family_engine: Engine) -> None:
    """Measured here: a tile of a batched call is within 1 in uint8 of its batch-1 render."""
    tiles = family_engine.run(GridRequest(PROMPT, "3, 9, 4", steps=3))
    assert [t.recipe.seed for t in tiles] == [3, 9, 4]
    for tile in tiles:
        assert np.abs(pixels(tile.image) - solo(family_engine, tile.recipe.seed, 3)).max() <= 1
    assert np.abs(pixels(tiles[0].image) - pixels(tiles[1].image)).max() > 10


def test_sdxl_renders_with_its_size_conditioning_and_records_it(
    sdxl: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_calls(monkeypatch, sdxl.model.pipe.unet, lambda sample: sample.shape)
    tile = sdxl.run(GridRequest(PROMPT, "1", steps=2, width=64, height=48))[0]
    assert seen == [(2, 4, 24, 32)] * 2  # guided: unconditional and conditional rows
    recipe = tile.recipe
    assert (recipe.family, recipe.native_size, recipe.guidance_scale) == ("sdxl", 64, 5.0)
    assert recipe.conditioning == {
        "original_size": [48, 64],
        "crops_coords_top_left": [0, 0],
        "target_size": [48, 64],
    }
    assert np.array_equal(pixels(sdxl.replay(recipe).image), pixels(tile.image))


def test_other_size_conditioning_changes_the_image_and_replays(sdxl: Engine) -> None:
    """SDXL's `time_ids` reach the UNet: a recipe's own conditioning is what replay uses."""
    from dataclasses import replace

    tile = sdxl.run(GridRequest(PROMPT, "1", steps=2))[0]
    cropped = {**tile.recipe.conditioning, "crops_coords_top_left": [16, 0]}
    other = sdxl.replay(replace(tile.recipe, conditioning=cropped))
    assert np.abs(pixels(other.image) - pixels(tile.image)).max() > 0
    assert other.recipe.conditioning == cropped


def test_sdxl_guides_an_empty_negative_prompt_by_zeros_as_its_pipeline_does(sdxl: Engine) -> None:
    negative = sdxl.embeddings.negative("", 2)
    assert negative.hidden.shape[0] == 2 and not negative.hidden.any()
    assert negative.pooled is not None and not negative.pooled.any()
    assert sdxl.embeddings.negative("blurry", 1).hidden.any()


def test_a_saved_sdxl_folder_loads_offline_renders_and_replays(
    sdxl: Engine, tmp_path: Path
) -> None:
    """The same weights from disk: within 1 in uint8 of the model built in memory (measured:
    the second encoder's pooled projection differs in its last bit, 2e-7), bit-exact again."""
    sdxl.model.pipe.save_pretrained(tmp_path, safe_serialization=True)
    local = Engine(load_model(str(tmp_path), "cpu"))
    assert isinstance(local.model.pipe, StableDiffusionXLPipeline) and local.model.family is SDXL
    request = GridRequest(PROMPT, "11", steps=2)
    ours, theirs = local.run(request)[0], sdxl.run(request)[0]
    assert np.abs(pixels(ours.image) - pixels(theirs.image)).max() <= 1
    assert np.array_equal(pixels(local.replay(ours.recipe).image), pixels(ours.image))


def test_sd2_is_told_apart_by_its_v_prediction() -> None:
    engine = Engine(load_model("tiny-sd2", device="cpu"))
    assert engine.model.family is SD2
    tile = engine.run(GridRequest(PROMPT, "2", steps=2))[0]
    assert tile.recipe.family == "sd2"
    assert tile.recipe.scheduler_config["prediction_type"] == "v_prediction"
    assert np.abs(pixels(tile.image) - solo(engine, 2, 2)).max() <= 1


@pytest.mark.parametrize(
    "class_name",
    [
        "Flux2KleinPipeline",
        "HiDreamImagePipeline",
        "HunyuanImagePipeline",
        "Lumina2Pipeline",
        "SanaPipeline",
    ],
)
def test_another_family_is_refused_before_its_weights_load(tmp_path: Path, class_name: str) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    with pytest.raises(ModelLoadError) as caught:
        load_model(str(tmp_path), "cpu")
    message = str(caught.value)
    assert "\n" not in message and class_name in message
    assert all(
        family in message for family in ("XL", "3/3.5", "Flux.1", "Chroma", "Z-Image", "Qwen-Image")
    )


SMALL = {"width": 32, "height": 32}  # float16 on a CPU is slow: the smallest latents


@pytest.mark.parametrize("model_id", ["tiny", "tiny-sdxl"])
def test_float16_on_the_cpu_renders_compares_and_replays_bit_exact(model_id: str) -> None:
    """The fp16 paths a GPU user takes: float32 noise cast to fp16 latents, fp16 embeddings,
    SDXL's VAE upcast to float32 for the decode and back."""
    model = load_model(model_id, device="cpu", dtype="float16")
    engine = Engine(model)
    assert model.pipe.unet.dtype == torch.float16
    grid = engine.run(GridRequest(PROMPT, "1, 2", steps=2, **SMALL))
    group = engine.run(CompareRequest(PROMPT, 2, ["Euler", "DDIM"], steps=2, **SMALL))
    for tile in (grid[1], group[1]):
        assert tile.recipe.dtype == "float16"
        image = pixels(tile.image)
        assert image.std() > 0 and np.isfinite(image).all()
        assert np.array_equal(pixels(engine.replay(tile.recipe).image), image)
    # The seed's noise is the same at any precision: its hash is of the float32 draw.
    float32 = Engine(load_model(model_id, device="cpu")).plan(
        GridRequest(PROMPT, "2", steps=2, **SMALL)
    )
    assert (
        grid[1].recipe.noise_sha256
        == Engine(load_model(model_id, device="cpu")).render(float32)[0].recipe.noise_sha256
    )
    assert model.pipe.vae.dtype == torch.float16  # upcast for the decode only


def test_each_family_previews_in_its_own_colours() -> None:
    zeros = torch.zeros(1, 4, 2, 2)
    sdxl = np.asarray(latents_to_previews(zeros, SDXL.preview_factors, SDXL.preview_bias)[0])
    assert tuple(sdxl[0, 0]) == tuple(round((b + 1) * 127.5) for b in SDXL.preview_bias)
    assert Embedding(torch.ones(1, 2, 3)).zeros().hidden.sum() == 0
