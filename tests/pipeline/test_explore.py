"""Vary, travel and matrix: each tile is the render a user would expect it to equal, and
replays bit-exact (tiny model, 2 steps; Euler, which takes no step noise)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline import philox
from pipeline.engine import Engine
from pipeline.loading import LoadedModel
from pipeline.metadata import infotext
from pipeline.plan import Matrix
from pipeline.recipe import Recipe, Tile, tensor_sha256
from pipeline.requests import (
    CompareRequest,
    GridRequest,
    MatrixRequest,
    RefineRequest,
    RequestError,
    TravelRequest,
    VaryRequest,
)

FAST = {"steps": 2, "scheduler": "Euler"}


def same(a: Tile, b: Tile) -> bool:
    return np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_vary_at_0_is_the_pinned_tile_and_at_1_the_variation_seeds_own(engine: Engine) -> None:
    grid = engine.run(GridRequest("a fox", "5, 9", **FAST))
    still = engine.run(VaryRequest("a fox", 5, "9, 11", strength=0, **FAST))
    assert same(still[0], grid[0]) and same(still[1], grid[0])
    gone = engine.run(VaryRequest("a fox", 5, "5, 9", strength=1, **FAST))
    assert same(gone[1], grid[1])
    between = engine.run(VaryRequest("a fox", 5, "9", strength=0.3, **FAST))[0]
    assert not same(between, grid[0]) and not same(between, grid[1])
    assert (between.recipe.variation_seed, between.recipe.variation_strength) == (9, 0.3)


def test_travel_runs_from_the_pinned_tile_to_the_other_seeds(engine: Engine) -> None:
    frames = engine.run(TravelRequest("a fox", 5, 9, frames=4, **FAST))
    grid = engine.run(GridRequest("a fox", "5, 9, 1, 2", **FAST))
    assert [f.recipe.variation_strength for f in frames] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert same(frames[0], grid[0]) and same(frames[-1], grid[1])
    assert not same(frames[1], grid[0])


def test_a_matrix_cell_is_the_same_single_render(engine: Engine) -> None:
    request = MatrixRequest("a fox", "", "Seed", "5, 9", "Steps", "1, 2", scheduler="Euler")
    matrix = engine.plan(request)
    assert isinstance(matrix, Matrix) and len(matrix.plans) == 2  # one call per step count
    cells = engine.render(matrix)
    assert cells[1].recipe.cell == {
        **{"x_axis": "Seed", "x": "Seed: 9", "y_axis": "Steps", "y": "Steps: 1"},
        **{"row": 0, "column": 1},
    }
    grid = engine.run(GridRequest("a fox", "5, 9", **FAST))
    assert same(cells[2], grid[0]) and same(cells[3], grid[1])


def test_scheduler_cells_are_the_compare_tiles(engine: Engine) -> None:
    request = MatrixRequest("a fox", 5, "Scheduler", "Euler, DDIM", "CFG scale", "7", steps=2)
    cells = engine.run(request)
    request = CompareRequest("a fox", 5, ["Euler", "DDIM"], steps=2, guidance_scale=7)
    compared = engine.run(request)
    assert [c.recipe.sampler for c in cells] == ["Euler", "DDIM"]
    assert all(same(c, t) for c, t in zip(cells, compared, strict=True))


def test_the_pins_variation_reaches_refine_and_the_matrix(engine: Engine) -> None:
    varied = engine.run(VaryRequest("a fox", 5, "9", strength=0.5, **FAST))[0]
    pin = {"variation_seed": 9, "variation_strength": 0.5}
    refined = engine.run(RefineRequest("a fox", 5, [""], **pin, **FAST))[0]
    assert same(refined, varied)
    request = MatrixRequest("a fox", 5, "Steps", "2", "Suffix", "", **pin, scheduler="Euler")
    with pytest.raises(RequestError, match="Y values: no values"):
        engine.plan(request)
    cells = engine.run(
        MatrixRequest("a fox", 5, "Variation strength", "0.5", "Steps", "2", **pin, **FAST)
    )
    assert same(cells[0], varied)


def test_vary_and_travel_from_a_variation_pin_move_away_from_its_own_noise(
    engine: Engine,
) -> None:
    pinned = engine.run(VaryRequest("a fox", 5, "9", strength=0.5, **FAST))[0]
    pin = {"variation_seed": 9, "variation_strength": 0.5}
    still = engine.run(VaryRequest("a fox", 5, "11, 13", strength=0, **pin, **FAST))
    frames = engine.run(TravelRequest("a fox", 5, 11, frames=2, **pin, **FAST))
    assert frames[0].recipe.noise_sha256 == pinned.recipe.noise_sha256
    assert same(frames[0], still[0])  # two calls of two: the same pixels
    assert frames[1].recipe.base_variations == [[9, 0.5]]
    away = engine.run(VaryRequest("a fox", 5, "11", strength=0.3, **pin, **FAST))[0]
    recipe = Recipe.from_dict(away.recipe.to_dict())  # as a PNG or a manifest carries it
    assert same(engine.replay(recipe), away)
    assert recipe.base_variations == [[9, 0.5]] and recipe.variation_seed == 11


@pytest.mark.parametrize(
    "request_",
    [
        VaryRequest("a fox", 5, "9, 11", strength=0.4, resize_from="32x48", **FAST),
        TravelRequest("a fox", 5, 9, frames=3, **FAST),
        MatrixRequest("a fox", 5, "Scheduler", "Euler, DDIM", "Seed", "5, 9", steps=2),
    ],
    ids=["vary", "travel", "matrix"],
)
def test_vary_travel_and_matrix_tiles_replay_bit_exact(engine: Engine, request_) -> None:
    tiles = engine.run(request_)
    for tile in (tiles[1], tiles[-1]):
        recipe = Recipe.from_dict(tile.recipe.to_dict())  # as a PNG or a manifest carries it
        assert same(engine.replay(recipe), tile)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (VaryRequest("a", 5, "9", strength=1.5), "Strength: must be 0..1"),
        (VaryRequest("a", 5, "9", resize_from="big"), "Resize seed from: write width x height"),
        (VaryRequest("a", 5, "x"), "Variation seeds: cannot read"),
        (TravelRequest("a", 5, 9, frames=1), "Frames: must be a whole number 2..16"),
        (TravelRequest("a", 5, ""), "To seed: type a seed"),
        (MatrixRequest("a", 5, "Seed", "1-5", "Steps", "1-4"), "5 x 4 is 20 cells"),
        (MatrixRequest("a", 5, "Steps", "1", "Steps", "2"), "Y axis: is Steps as X is"),
        (MatrixRequest("a", 5, "Variation strength", "0-1 [3]", "Steps", "2"), "needs a variation"),
        (MatrixRequest("a", 5, "Variation seed", "1, 2", "Steps", "2"), "needs a strength"),
        (RefineRequest("a", 5, variation_strength=0.3), "Pinned variation seed: a strength"),
        (VaryRequest("a", 5, "9", base_variations=[[1, 2]]), "Pinned base variations strength"),
        (
            TravelRequest(
                "a", 5, 9, variation_seed=1, variation_strength=0.1, base_variations=[[2, 0.1]] * 8
            ),
            "Pinned variation: is a variation of a variation 9 deep",
        ),
    ],
)
def test_refusals_name_the_field(engine: Engine, request_, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        engine.plan(request_)


def test_nv_noise_starts_from_a1111s_nv_noise_and_replays(tiny: LoadedModel) -> None:
    nv = Engine(tiny, generator_device="nv")
    tile = nv.run(VaryRequest("a fox", 5, "9", strength=0, **FAST))[0]
    side = 64 // tiny.pipe.vae_scale_factor
    shape = (tiny.pipe.unet.config.in_channels, side, side)
    assert tile.recipe.noise_sha256 == tensor_sha256(torch.from_numpy(philox.randn(5, shape)))
    assert "RNG: NV" in infotext(tile.recipe)
    assert same(nv.replay(Recipe.from_dict(tile.recipe.to_dict())), tile)


def test_prompt_sr_and_suffix_cells_are_the_prompts_a1111_makes(engine: Engine) -> None:
    request = MatrixRequest(
        "a red fox", 5, "Prompt S/R", "red, blue", "Suffix", ", day\n, night", negative_prompt="red"
    )
    matrix = engine.plan(request)
    prompts = [matrix.plans[p].items[i].prompt for p, i in matrix.cells]
    assert prompts == ["a red fox, day", "a blue fox, day", "a red fox, night", "a blue fox, night"]
    negatives = [matrix.plans[p].negative_prompt for p, _ in matrix.cells]
    assert negatives == ["red", "blue", "red", "blue"]  # replaced there too: two calls
    assert len(matrix.plans) == 2 and matrix.labels(3) == ("blue", ", night")
