"""Compare in lockstep: every scheduler's tile is its plain pipeline run, and replays bit-exact."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image

from pipeline.engine import Engine, Tile
from pipeline.loading import LoadedModel
from pipeline.metadata import read_png, write_png
from pipeline.noise import draw_noise
from pipeline.recipe import Recipe
from pipeline.rendering import Hooks, Stopped
from pipeline.requests import CompareRequest, RequestError
from tests.pipeline.helpers import record_calls, stopping_after

PROMPT = "a lighthouse at dusk"
SEED = 8
NEGATIVE = "blurry"
# SDXL: at least the schedulers people compare most; SD 1.x: every registered one.
SDXL_SCHEDULERS = ("Euler", "Euler a", "DDIM", "DPM++ 2M", "UniPC")
SMALL = {"width": 32, "height": 32}  # every scheduler three times: the smallest latents


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def plain(
    engine: Engine, name: str, steps: int, negative: str = NEGATIVE, **size: int
) -> np.ndarray:
    """The diffusers guide's recipe on the family's own pipeline: the scheduler swapped in,
    the prompt given as text, the seed's noise as latents."""
    plan = engine.plan(CompareRequest(PROMPT, SEED, [name], steps=steps, **size))
    generator, _, latents = draw_noise(engine.model, list(plan.items), plan)
    image = engine.renderer.view(plan.samplers[0].config)(
        prompt=PROMPT,
        negative_prompt=negative,
        generator=generator,
        latents=latents,
        num_inference_steps=steps,
        guidance_scale=plan.guidance_scale,
        width=plan.width,
        height=plan.height,
    ).images[0]
    return pixels(image)


def compare(engine: Engine, names: tuple[str, ...], steps: str = "", **size: int) -> list[Tile]:
    request = CompareRequest(
        PROMPT, SEED, names, steps=None if steps else 4, scheduler_steps=steps,
        negative_prompt=NEGATIVE, **size,
    )  # fmt: skip
    return engine.run(request, Hooks())


def test_every_scheduler_in_lockstep_is_its_plain_pipeline_run(family_engine: Engine) -> None:
    """The schedulers in one group, one UNet call per step: within 1 of 255 of each one's own
    pipeline run (batched products round differently); alone, bit-exact."""
    engine = family_engine
    pipe = engine.model.pipe
    cached, config = pipe.scheduler, dict(pipe.scheduler.config)
    names = SDXL_SCHEDULERS if engine.model.family.name == "sdxl" else engine.model.registry.names
    group = compare(engine, tuple(names), **SMALL)
    assert [t.recipe.sampler for t in group] == list(names)
    for tile in group:
        name = tile.recipe.sampler
        own = plain(engine, name, 4, **SMALL)
        assert np.abs(pixels(tile.image) - own).max() <= 1, name
        alone = compare(engine, (name,), **SMALL)[0]
        assert np.array_equal(pixels(alone.image), own), name
    assert pipe.scheduler is cached and dict(cached.config) == config


def test_a_mixed_group_with_second_order_schedulers(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps of their own, Heun and DPM2 (two evaluations a step), all lanes in one call (by
    default, whatever the grid's micro-batch): a lane that is done leaves the batch."""
    engine = Engine(tiny, micro_batch=2)
    steps = (("Heun", 3), ("Euler a", 6), ("DDIM", 2), ("DPM2", 2), ("UniPC", 5))
    names = tuple(name for name, _ in steps)
    sizes = record_calls(monkeypatch, tiny.pipe.unet, lambda sample: sample.shape[0])
    tiles = compare(engine, names, "\n".join(f"{name}: {count}" for name, count in steps))
    # Evaluations: Heun 5, Euler a 6, DDIM 2, DPM2 3, UniPC 5; two samples each (guidance).
    assert sizes == [10, 10, 8, 6, 6, 2]
    assert [t.recipe.steps for t in tiles] == [3, 6, 2, 2, 5]
    assert [t.recipe.lockstep["per_call"] for t in tiles] == [5] * 5
    for tile, (name, count) in zip(tiles, steps, strict=True):
        assert np.abs(pixels(tile.image) - plain(engine, name, count)).max() <= 1, name
    seconds = [t.seconds for t in tiles]
    assert seconds[0] == pytest.approx(seconds[4]) and seconds[1] == pytest.approx(3 * seconds[2])


def test_stop_mid_run_decodes_nothing_then_an_identical_rerun(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ("Euler", "DDIM", "DPM++ 2M", "PNDM", "Euler a")
    hooks, seen = stopping_after(3)
    with monkeypatch.context() as patch:
        vae = engine.model.pipe.vae
        decoded = record_calls(patch, vae, lambda latents: latents.shape[0], "decode")
        with pytest.raises(Stopped, match="Stopped at step 3 of 4"):
            engine.run(CompareRequest(PROMPT, SEED, names, steps=4), hooks)
        assert decoded == []  # no VAE decode after Stop
        after = compare(engine, names)
        assert sum(decoded) == len(names)  # a finished group's decode is seen
    # One call a step (PNDM makes one evaluation more than its steps).
    assert seen == [f"5 schedulers: step {step}/4" for step in (1, 2, 3)]
    fresh = compare(Engine(engine.model), names)
    assert all(
        np.array_equal(pixels(a.image), pixels(b.image)) for a, b in zip(after, fresh, strict=True)
    )


def test_progress_and_previews_cover_the_group(engine: Engine) -> None:
    seen: list[tuple[float, str]] = []
    previews: list[tuple[int, int]] = []
    hooks = Hooks(
        progress=lambda fraction, text: seen.append((fraction, text)),
        preview=lambda first, images: previews.append((first, len(images))),
        preview_interval=0,
    )
    engine.run(CompareRequest(PROMPT, SEED, ("Euler", "Heun"), steps=4), hooks)
    # Euler 4 evaluations, Heun 7 (two a step, the last one): both lanes in each call until
    # Euler is done; steps are counted as steps, not evaluations.
    assert [text for _, text in seen] == [
        f"2 schedulers: step {step}/4" for step in (1, 1, 2, 2, 3, 3, 4)
    ]
    assert [fraction for fraction, _ in seen] == pytest.approx(
        [2, 4, 6, 8, 9, 10, 11] / np.array(11)
    )
    assert previews and set(previews) == {(0, 2)}  # every lane each time


def test_a_lockstep_tile_replays_bit_exact_through_its_png(engine: Engine, tmp_path: Path) -> None:
    tiles = compare(engine, ("DDIM", "Euler a", "Heun", "DPM++ 2M", "UniPC"))
    euler_a = tiles[1]
    assert euler_a.recipe.lockstep["schedulers"][1]["sampler"] == "Euler a"
    assert (euler_a.recipe.batch_size, euler_a.recipe.batch_index) == (5, 1)
    path = write_png(tmp_path / "euler-a.png", euler_a.image, euler_a.recipe)
    image, recipe, _ = read_png(path)
    assert recipe == euler_a.recipe
    again = engine.replay(recipe)
    assert np.array_equal(pixels(again.image), pixels(image))
    assert again.recipe == euler_a.recipe
    heun = engine.replay(tiles[2].recipe)
    assert np.array_equal(pixels(heun.image), pixels(tiles[2].image))


def test_a_recipe_from_before_lockstep_replays_alone(engine: Engine) -> None:
    """Old compare recipes carry no group: they render in a call of their own, as before."""
    tile = compare(engine, ("Euler a",))[0]
    data = tile.recipe.to_dict()
    del data["lockstep"]
    old = Recipe.from_dict(data)
    assert old.lockstep is None
    assert np.array_equal(pixels(engine.replay(old).image), pixels(tile.image))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: {**r.lockstep, "schedulers": r.lockstep["schedulers"][:1]}, "must list 2"),
        (lambda r: {**r.lockstep, "per_call": 3}, "whole number 1..2"),
        (lambda r: {**r.lockstep, "schedulers": ["Euler", "DDIM"]}, "needs a sampler"),
        (
            lambda r: {**r.lockstep, "schedulers": r.lockstep["schedulers"][::-1]},
            "not the tile's own",
        ),
    ],
)
def test_a_broken_group_is_refused(engine: Engine, change: object, message: str) -> None:
    tile = compare(engine, ("Euler", "DDIM"))[0]
    with pytest.raises(RequestError, match=message) as caught:
        engine.replay(replace(tile.recipe, lockstep=change(tile.recipe)))
    assert caught.value.field == "Lockstep"


def test_a_unet_with_a_guidance_embedding_gets_its_timestep_cond(tiny: LoadedModel) -> None:
    """LCM-style UNets (time_cond_proj_dim) take the guidance scale as an embedding, no CFG."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config({**tiny.pipe.unet.config, "time_cond_proj_dim": 8})
    pipe = type(tiny.pipe)(**{**tiny.pipe.components, "unet": unet.eval()})
    engine = Engine(replace(tiny, pipe=pipe, model_id="tiny-lcm"))
    alone = compare(engine, ("Euler",))[0]
    assert np.array_equal(pixels(alone.image), plain(engine, "Euler", 4))
    pair = compare(engine, ("DDIM", "Euler"))
    assert np.abs(pixels(pair[1].image) - pixels(alone.image)).max() <= 1
