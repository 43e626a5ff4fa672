"""Prompt embeddings: encoded once per text, kept across requests, and the pixels unchanged."""

import numpy as np
import pytest
import torch

from pipeline.embeddings import PromptEmbeddings
from pipeline.engine import Engine
from pipeline.loading import LoadedModel
from pipeline.noise import draw_noise
from pipeline.requests import GridRequest, RefineRequest
from tests.pipeline.helpers import record_calls

FAST = {"steps": 4, "negative_prompt": "blurry"}


def pixels(image: object) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def test_hits_misses_and_the_bound(tiny: LoadedModel) -> None:
    cache = PromptEmbeddings(tiny.pipe, tiny.family, size=2)
    first = cache.get("a")
    assert cache.get("a") is first
    cache.get("b")
    assert (cache.hits, cache.misses, len(cache)) == (1, 2, 2)
    cache.get("a")  # "a" is now the most recently used: "b" goes next
    cache.get("c")
    assert len(cache) == 2
    assert cache.get("a") is first
    cache.get("b")
    assert (cache.hits, cache.misses) == (3, 4)
    with pytest.raises(ValueError, match="at least one"):
        PromptEmbeddings(tiny.pipe, tiny.family, size=0)


def test_a_cached_embedding_is_the_texts_own_encoding(tiny: LoadedModel) -> None:
    cache = PromptEmbeddings(tiny.pipe, tiny.family)
    stacked = cache.batch(["a lighthouse", "blurry", "a lighthouse"]).hidden
    with torch.no_grad():
        cond, uncond = tiny.pipe.encode_prompt("a lighthouse", "cpu", 1, True, "blurry")
    assert stacked.shape[0] == 3 and cache.misses == 2
    assert torch.equal(stacked[0], cond[0]) and torch.equal(stacked[2], cond[0])
    assert torch.equal(stacked[1], uncond[0])


def test_a_rerun_grid_encodes_nothing(
    engine: Engine, tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = GridRequest("a lighthouse on a cliff", (0, 1, 2, 3, 4), **FAST)
    calls = record_calls(monkeypatch, tiny.pipe.text_encoder, lambda ids: ids.shape[0])
    engine.run(request)
    assert calls == [1, 1]  # the prompt and the negative prompt, each once, at batch 1
    engine.run(request)
    engine.run(RefineRequest("a lighthouse on a cliff", 3, ("",), **FAST))
    assert calls == [1, 1]


def test_grid_tiles_equal_the_plain_pipeline_given_the_prompt_text(
    engine: Engine, tiny: LoadedModel
) -> None:
    """Embeddings passed in, not text: the pixels of the pipeline encoding the prompt itself.

    Given one prompt string the pipeline encodes it once (batch 1) and repeats it, as the
    cache does: bit-exact. Given a list of four, it encodes them at batch 4, whose rows may
    round differently in the last bit (measured: "blurry" in the fourth row): within 1 of 255.
    """
    seeds = (5, 6, 7, 8)
    tiles = engine.run(GridRequest("a red kite", seeds, **FAST))
    plan = engine.plan(GridRequest("a red kite", seeds, **FAST))
    view = engine.renderer.view(plan.samplers[0].config)

    def plain(**texts: object) -> list[np.ndarray]:
        gens, _, latents = draw_noise(engine.model, list(plan.items), plan)
        images = view(generator=gens, latents=latents, num_inference_steps=4, **texts).images
        return [pixels(image) for image in images]

    once = plain(prompt="a red kite", negative_prompt="blurry", num_images_per_prompt=4)
    batched = plain(prompt=["a red kite"] * 4, negative_prompt=["blurry"] * 4)
    for tile, exact, near in zip(tiles, once, batched, strict=True):
        assert np.array_equal(pixels(tile.image), exact)
        assert np.abs(pixels(tile.image) - near).max() <= 1


def test_replay_with_cached_embeddings_is_bit_exact(engine: Engine) -> None:
    tiles = engine.run(GridRequest("a red kite", (5, 6, 7, 8), **FAST))
    engine.embeddings.batch(["something else"])  # the cache has moved on
    assert np.array_equal(pixels(engine.replay(tiles[3].recipe).image), pixels(tiles[3].image))
