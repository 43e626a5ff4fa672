"""What a user relies on: a seed makes its tile again, and requests never disturb each other."""

import math

import numpy as np
from PIL import Image

from pipeline.engine import Engine, Tile
from pipeline.loading import LoadedModel
from pipeline.rendering import Hooks
from pipeline.requests import CompareRequest, GridRequest, RefineRequest
from pipeline.seeds import parse_seeds

FAST = {"steps": 4}


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def max_difference(a: Tile, b: Tile) -> int:
    return int(np.abs(pixels(a.image) - pixels(b.image)).max())


def identical(a: Tile, b: Tile) -> bool:
    return np.array_equal(pixels(a.image), pixels(b.image))


def test_grid_renders_one_tile_per_seed_in_order(engine: Engine) -> None:
    tiles = engine.run(GridRequest("a lighthouse", (5, 17, 3), **FAST))
    assert [t.recipe.seed for t in tiles] == [5, 17, 3]
    assert all(t.image.size == (64, 64) for t in tiles)
    assert all(t.recipe.prompt == "a lighthouse" and t.recipe.steps == 4 for t in tiles)
    assert not identical(tiles[0], tiles[1])


def test_the_same_request_twice_is_bit_identical(engine: Engine) -> None:
    request = GridRequest("a lighthouse", (0, 1, 2, 3), **FAST)
    first, second = engine.run(request), engine.run(request)
    assert all(identical(a, b) for a, b in zip(first, second, strict=True))


def test_each_tile_is_its_seed_rendered_alone(engine: Engine) -> None:
    """Measured here: a batch-1 render matches its tile to within 1 in uint8."""
    tiles = engine.run(GridRequest("a lighthouse", (0, 1, 2, 3), **FAST))
    for tile in tiles:
        alone = engine.run(GridRequest("a lighthouse", (tile.recipe.seed,), **FAST))[0]
        assert max_difference(tile, alone) <= 1
    other_seed = engine.run(GridRequest("a lighthouse", (99,), **FAST))[0]
    assert max_difference(tiles[0], other_seed) > 10


def test_a_tile_does_not_depend_on_its_neighbours(engine: Engine) -> None:
    one = engine.run(GridRequest("a lighthouse", (3, 9, 1, 0), **FAST))
    other = engine.run(GridRequest("a lighthouse", (0, 1, 2, 3), **FAST))
    assert max_difference(one[0], other[3]) <= 1
    assert max_difference(one[3], other[0]) <= 1


def test_random_seeds_reproduce(engine: Engine) -> None:
    drawn = parse_seeds("random 2", max_count=16)
    tiles = engine.run(GridRequest("a lighthouse", tuple(drawn), **FAST))
    again = engine.run(GridRequest("a lighthouse", tuple(drawn), **FAST))
    assert [t.recipe.seed for t in tiles] == drawn
    assert all(identical(a, b) for a, b in zip(tiles, again, strict=True))


def test_stochastic_schedulers_draw_noise_from_the_tiles_own_seed(engine: Engine) -> None:
    stochastic = [entry.name for entry in engine.model.registry.entries if entry.stochastic]
    assert set(stochastic) == {"Euler a", "DPM++ 2M SDE", "DDPM", "DPM2 a"}
    for scheduler in stochastic:
        pair = engine.run(GridRequest("a lighthouse", (0, 1), steps=4, scheduler=scheduler))
        alone = engine.run(GridRequest("a lighthouse", (1,), steps=4, scheduler=scheduler))[0]
        assert max_difference(pair[1], alone) <= 1, scheduler


def test_refine_keeps_the_pinned_seed_and_matches_a_grid_of_prompt_plus_suffix(
    engine: Engine,
) -> None:
    suffixes = (", highly realistic", ", artsy")
    tiles = engine.run(RefineRequest("a lighthouse", 8, suffixes, **FAST))
    assert [t.recipe.seed for t in tiles] == [8, 8]
    assert [t.recipe.suffix for t in tiles] == list(suffixes)
    assert [t.recipe.prompt for t in tiles] == [
        "a lighthouse, highly realistic",
        "a lighthouse, artsy",
    ]
    for tile, suffix in zip(tiles, suffixes, strict=True):
        grid = engine.run(GridRequest("a lighthouse" + suffix, (8, 8), **FAST))[0]
        assert max_difference(tile, grid) <= 1
    assert max_difference(tiles[0], tiles[1]) > 1  # beyond rounding: the suffix counts


def test_every_registered_scheduler_runs_and_gives_its_own_image(
    engine: Engine, tiny: LoadedModel
) -> None:
    cached = tiny.pipe.scheduler
    config_before = dict(cached.config)
    names = tuple(engine.model.registry.names)
    tiles = engine.run(CompareRequest("a lighthouse", 8, names, **FAST))
    assert [t.recipe.sampler for t in tiles] == list(names)
    assert all(t.recipe.seed == 8 and t.recipe.steps == 4 and t.seconds > 0 for t in tiles)
    for i, tile in enumerate(tiles):
        for other in tiles[i + 1 :]:
            assert not identical(tile, other), (tile.recipe.sampler, other.recipe.sampler)
    assert tiny.pipe.scheduler is cached
    assert dict(cached.config) == config_before


def test_compare_uses_each_schedulers_own_steps_unless_told(engine: Engine) -> None:
    names = ("Euler", "DDIM", "DPM++ 2M")
    own = engine.run(CompareRequest("a lighthouse", 8, names, scheduler_steps="DDIM: 3\nEuler: 2"))
    assert [t.recipe.steps for t in own] == [2, 3, 20]
    forced = engine.run(CompareRequest("a lighthouse", 8, ("Euler",), **FAST))
    assert forced[0].recipe.steps == 4


def test_a_compare_tile_equals_a_grid_with_that_scheduler(engine: Engine) -> None:
    tile = engine.run(CompareRequest("a lighthouse", 8, ("Euler a",), **FAST))[0]
    grid = engine.run(GridRequest("a lighthouse", (8,), steps=4, scheduler="Euler a"))
    assert identical(tile, grid[0])


def test_a_view_shares_the_cached_weights_but_not_the_scheduler(
    engine: Engine, tiny: LoadedModel
) -> None:
    view = engine.renderer.view(engine.model.registry.config("Euler"))
    assert view.unet is tiny.pipe.unet
    weight = next(iter(tiny.pipe.unet.parameters()))
    assert next(iter(view.unet.parameters())).data_ptr() == weight.data_ptr()
    assert view.scheduler is not tiny.pipe.scheduler


def test_progress_reports_every_step_up_to_done(engine: Engine) -> None:
    seen: list[tuple[float, str]] = []
    Engine(engine.model, micro_batch=4).run(
        GridRequest("a lighthouse", (1, 2, 3, 4, 5), steps=4, scheduler="Euler"),
        Hooks(progress=lambda fraction, text: seen.append((fraction, text))),
    )
    fractions = [f for f, _ in seen]
    assert len(seen) == 8  # two micro-batches of four steps
    assert fractions == sorted(fractions) and math.isclose(fractions[-1], 1.0)
    assert seen[0][1] == "Euler: step 1/4" and seen[-1][1] == "Euler: step 4/4"
    seen.clear()
    engine.run(
        CompareRequest("a lighthouse", 1, ("Euler", "DDIM"), **FAST),
        Hooks(progress=lambda fraction, text: seen.append((fraction, text))),
    )
    assert seen == [(i / 4, f"2 schedulers: step {i}/4") for i in range(1, 5)]
