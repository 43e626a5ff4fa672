"""Seed variance: a distilled model's tiles spread by noise on the prompt embedding, drawn
from each tile's seed, recorded, and replayed bit-exact."""

from __future__ import annotations

from pipeline import axes
from pipeline.engine import Engine
from pipeline.metadata import fields_from_infotext, infotext
from pipeline.recipe import pixels_sha256
from pipeline.requests import GridRequest, MatrixRequest

PROMPT = "a lighthouse at dusk"
SMALL = {"steps": 2, "width": 32, "height": 32}


def tile_hash(engine: Engine, **settings: object) -> str:
    return pixels_sha256(engine.run(GridRequest(PROMPT, "3", **SMALL, **settings))[0].image)


def test_strength_zero_is_the_plain_tile_and_more_moves_it(flux: Engine) -> None:
    plain = tile_hash(flux)
    assert tile_hash(flux, seed_variance=0) == plain
    assert tile_hash(flux, seed_variance=0.5) != plain


def test_a_varied_tile_is_recorded_and_replays_bit_exact(flux: Engine) -> None:
    tile = flux.run(GridRequest(PROMPT, "3", **SMALL, seed_variance=0.5))[0]
    assert tile.recipe.seed_variance == 0.5
    assert pixels_sha256(flux.replay(tile.recipe).image) == pixels_sha256(tile.image)
    text = infotext(tile.recipe)
    assert "Seed variance: 0.5" in text
    assert fields_from_infotext(text, flux.schedulers, "flux").seed_variance == 0.5


def test_seed_variance_is_a_matrix_axis(flux: Engine) -> None:
    request = MatrixRequest(PROMPT, 3, axes.SEED_VARIANCE, "0, 0.5", axes.SEED, "3", **SMALL)
    matrix = flux.plan(request)
    assert [matrix.plans[which].seed_variance for which, _ in matrix.cells] == [0.0, 0.5]
