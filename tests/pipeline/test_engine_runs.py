"""A run's life: recipes that replay bit-exact, micro-batches, Stop, previews and faults."""

import threading

import numpy as np
import pytest
import torch

from pipeline.engine import Engine, Tile
from pipeline.loading import LoadedModel
from pipeline.recipe import tensor_sha256
from pipeline.rendering import Hooks, OutOfMemory, Stopped
from pipeline.requests import CompareRequest, GridRequest, RefineRequest
from tests.pipeline.helpers import record_calls, stopping_after

FAST = {"steps": 4}


def identical(a: Tile, b: Tile) -> bool:
    return np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_a_recipe_says_how_its_tile_was_made(tiny: LoadedModel) -> None:
    engine = Engine(tiny, micro_batch=4)
    tiles = engine.run(GridRequest("a lighthouse", (5, 6, 7, 8, 9), **FAST))
    recipe = tiles[4].recipe
    assert (recipe.kind, recipe.seed, recipe.prompt, recipe.steps) == ("grid", 9, "a lighthouse", 4)
    assert recipe.sampler == "PNDM" and recipe.scheduler_config["_class_name"] == "PNDMScheduler"
    assert (recipe.model_id, recipe.model_name) == ("tiny", "tiny")
    assert recipe.model_hash is None  # A1111's: a single file's only
    assert (recipe.loras, recipe.model_sha256, recipe.model_config) == ([], None, None)
    assert (recipe.dtype, recipe.device, recipe.generator_device) == ("float32", "cpu", "cpu")
    assert recipe.versions["diffusers"] and recipe.versions["torch"]
    # Micro-batches of 4: the fifth tile was rendered first in a call of one.
    assert [(t.recipe.batch_size, t.recipe.batch_index) for t in tiles] == [
        (4, 0),
        (4, 1),
        (4, 2),
        (4, 3),
        (1, 0),
    ]
    noise = torch.randn((1, 4, 32, 32), generator=torch.Generator().manual_seed(9))
    assert recipe.noise_sha256 == tensor_sha256(noise[0])


def test_a_tile_from_a_grid_of_four_replays_bit_exact_in_its_place_in_a_call_of_four(
    engine: Engine,
) -> None:
    tiles = engine.run(GridRequest("a lighthouse", (0, 1, 2, 3), **FAST))
    again = engine.replay(tiles[2].recipe)
    assert (again.recipe.batch_size, again.recipe.batch_index) == (4, 2)
    assert again.recipe == tiles[2].recipe  # its seed, noise, shape and place
    assert identical(again, tiles[2])


def test_refine_and_stochastic_compare_tiles_replay_bit_exact(engine: Engine) -> None:
    refined = engine.run(RefineRequest("a lighthouse", 8, (", artsy", ", colorful"), **FAST))
    assert identical(engine.replay(refined[1].recipe), refined[1])
    compared = engine.run(CompareRequest("a lighthouse", 8, ("DDIM", "Euler a"), **FAST))
    assert compared[1].recipe.sampler == "Euler a"
    assert identical(engine.replay(compared[1].recipe), compared[1])


def test_without_micro_batches_one_call_renders_the_grid(tiny: LoadedModel) -> None:
    whole = Engine(tiny, micro_batch=None).run(GridRequest("a", tuple(range(6)), **FAST))
    assert {t.recipe.batch_size for t in whole} == {6}


def test_stop_ends_a_run_within_a_step_decoding_nothing_and_the_next_run_is_unchanged(
    engine: Engine, tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = GridRequest("a lighthouse", (0, 1), steps=5)
    hooks, steps_seen = stopping_after(3)
    with monkeypatch.context() as patch:
        decoded = record_calls(patch, tiny.pipe.vae, lambda latents: latents.shape[0], "decode")
        with pytest.raises(Stopped, match="Stopped at step 3 of 5"):
            engine.run(request, hooks)
        assert len(steps_seen) == 3
        assert decoded == []  # no VAE decode (and no safety checker) after Stop
        after = engine.run(request)
        assert sum(decoded) == 2  # a finished run's decode is seen
    fresh = Engine(engine.model).run(request)
    assert all(identical(a, b) for a, b in zip(after, fresh, strict=True))


def test_previews_are_made_off_the_denoising_thread(tiny: LoadedModel) -> None:
    """The first preview is held until the run's last step: denoising never waits for one."""
    engine = Engine(tiny, micro_batch=4)
    last_step = threading.Event()
    seen: list[tuple[int, int, tuple[int, int]]] = []

    def progress(fraction: float, text: str) -> None:
        if fraction == 1:
            last_step.set()

    def preview(first: int, images: list) -> None:
        assert last_step.wait(60)
        seen.append((first, len(images), images[0].size))

    hooks = Hooks(progress=progress, preview=preview, preview_interval=0)
    tiles = engine.run(GridRequest("a lighthouse", tuple(range(6)), steps=5), hooks)
    assert len(tiles) == 6 and seen  # every preview came before the tiles
    # Each micro-batch's tiles, from its first tile, at most 256 px on the longest side.
    assert {(first, count) for first, count, _ in seen} <= {(0, 4), (4, 2)}
    assert {size for *_, size in seen} == {(64, 64)}


def fail_in_the_unet(monkeypatch: pytest.MonkeyPatch, tiny: LoadedModel, error: Exception) -> None:
    calls = []
    forward = type(tiny.pipe.unet).forward

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(tiny.pipe.unet), "forward", failing)


def test_out_of_memory_is_a_clear_message_and_the_next_run_works(
    engine: Engine, tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = GridRequest("a lighthouse", (0, 1), **FAST)
    before = engine.run(request)
    with monkeypatch.context() as patch:
        fail_in_the_unet(patch, tiny, torch.OutOfMemoryError("CUDA out of memory"))
        with pytest.raises(OutOfMemory, match="try fewer tiles, a smaller size, or fewer images"):
            engine.run(request)
    after = engine.run(request)
    assert all(identical(a, b) for a, b in zip(before, after, strict=True))


def test_a_fault_mid_run_leaves_the_pipeline_usable(
    engine: Engine, tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = GridRequest("a lighthouse", (3,), **FAST)
    before = engine.run(request)
    with monkeypatch.context() as patch:
        fail_in_the_unet(patch, tiny, RuntimeError("injected"))
        with pytest.raises(RuntimeError, match="injected"):
            engine.run(request)
    assert identical(engine.run(request)[0], before[0])


def test_a_stopped_run_releases_the_model_for_others(engine: Engine) -> None:
    hooks = Hooks()
    hooks.stop.set()
    with pytest.raises(Stopped):
        engine.run(GridRequest("a", (1,), **FAST), hooks)
    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (engine.run(GridRequest("a", (1,), **FAST)), done.set())
    )
    worker.start()
    worker.join(timeout=60)
    assert done.is_set()


def test_a_prompt_past_the_token_window_is_noticed(engine: Engine) -> None:
    assert not engine.truncated("a lighthouse at dusk")
    assert engine.truncated("a lighthouse at dusk, " * 40)
