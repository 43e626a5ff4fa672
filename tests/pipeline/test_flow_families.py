"""The flow families after Flux.1 and SD3 (Chroma, ...) through the one engine, each against its
plain diffusers pipeline. One module for them all: each check is parametrized by family, on
its tiny model, with 32 px tiles in 2 steps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipeline.engine import Engine
from pipeline.families import FAMILIES
from pipeline.loading import load_model
from pipeline.metadata import A1111_PARAM, infotext
from pipeline.plan import Plan
from pipeline.recipe import pixels_sha256
from pipeline.requests import CompareRequest, GridRequest, VaryRequest
from pipeline.tiny import build_tiny_pipeline
from tests.pipeline.helpers import assert_coloured_previews

PROMPT = "a lighthouse at dusk"
SIDE = 32
STEPS = 2


def _guidance(plan: Plan, images: int) -> dict[str, Any]:
    return {
        "guidance_scale": plan.guidance_scale,
        "negative_prompt": [plan.negative_prompt] * images,
    }


def _true_cfg(plan: Plan, images: int) -> dict[str, Any]:
    """Qwen-Image's scale is its `true_cfg_scale`, with the negative prompt's pass."""
    return {
        "true_cfg_scale": plan.guidance_scale,
        "negative_prompt": [plan.negative_prompt] * images,
    }


# The flow solvers: a pipeline that hands every scheduler its own sigmas (Chroma's) cannot run
# them, where FluxPipeline leaves a solver with flow sigmas to make its own.
SOLVERS = {"DPM++ 2M", "UniPC", "DEIS"}
# Each tiny model: its family's name, its model card's defaults (steps, guidance, sampler), the
# plain pipeline's guidance keywords for a plan of so many images, the samplers its pipeline
# cannot render as offered (it passes `mu`, which FlowMatchHeun rejects; sigmas, which the
# solvers do not take or would misread; LCM's step noise would come from the global RNG),
# held to our own solo render instead.
MODELS: dict[str, tuple[str, tuple[int, float, str], Callable[[Plan, int], dict], set[str]]] = {
    "tiny-chroma": ("chroma", (40, 3.0, "Euler Beta"), _guidance, {"Heun", *SOLVERS}),
    "tiny-z-image-turbo": ("z-image", (8, 0.0, "Euler"), _guidance, {"Heun", "LCM", *SOLVERS}),
    "tiny-qwen-image": ("qwen-image", (50, 4.0, "Euler"), _true_cfg, {"Heun", *SOLVERS}),
}


def pixels(image: object) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module", params=list(MODELS))
def model(request: pytest.FixtureRequest) -> Engine:
    return Engine(load_model(request.param, device="cpu"))


def plain(engine: Engine, plan: Plan, config: dict, seeds: list[int]) -> list:
    """The plain pipeline's render of `plan`'s prompt with the engine's modules and this
    scheduler config."""
    pipe = engine.model.pipe
    view = type(pipe)(**{**pipe.components, "scheduler": engine.model.registry.make_exact(config)})
    view.set_progress_bar_config(disable=True)
    call = MODELS[engine.model.model_id][2](plan, len(seeds))
    return view(
        [PROMPT] * len(seeds),
        num_inference_steps=STEPS,
        width=SIDE,
        height=SIDE,
        generator=[torch.Generator().manual_seed(seed) for seed in seeds],
        **call,
    ).images


def request(seeds: str = "0", **settings: object) -> GridRequest:
    return GridRequest(PROMPT, seeds, steps=STEPS, width=SIDE, height=SIDE, **settings)


@pytest.mark.parametrize("model_id", list(MODELS))
def test_a_tiny_family_saves_and_loads_back_offline_in_eval_mode(
    tmp_path: Path, model_id: str
) -> None:
    build_tiny_pipeline(model_id).save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu")
    assert loaded.family is FAMILIES[MODELS[model_id][0]]
    modules = [c for c in loaded.pipe.components.values() if isinstance(c, torch.nn.Module)]
    assert modules and not any(module.training for module in modules)


def test_a_guided_grid_is_the_plain_pipelines_render(model: Engine) -> None:
    """One generator per image, noise drawn as the pipeline draws it, guided by the negative
    prompt as the pipeline guides: each tile as the family's own pipeline renders it."""
    plan = model.plan(request("3, 4", guidance_scale=2.0, negative_prompt="blurry"))
    tiles = model.render(plan)
    expected = plain(model, plan, plan.samplers[0].config, [3, 4])
    for ours, theirs in zip(tiles, expected, strict=True):
        assert np.abs(pixels(ours.image) - pixels(theirs)).max() <= 2
    assert tiles[1].recipe.family == MODELS[model.model.model_id][0]


def test_every_offered_sampler_in_lockstep_is_its_plain_or_solo_render(model: Engine) -> None:
    names = model.model.registry.names
    lanes = model.run(CompareRequest(PROMPT, 7, names, steps=STEPS, width=SIDE, height=SIDE))
    _, _, _, ours_only = MODELS[model.model.model_id]
    for lane in lanes:
        recipe = lane.recipe
        plan = model.plan(request("7", scheduler=recipe.sampler))
        if recipe.sampler in ours_only:
            expected = model.render(plan)[0].image
        else:
            [expected] = plain(model, plan, recipe.scheduler_config, [7])
        assert np.abs(pixels(lane.image) - pixels(expected)).max() <= 2, recipe.sampler


def test_tiles_lanes_and_variations_replay_bit_exact(model: Engine) -> None:
    tile = model.run(request("0-1"))[1]
    lane = model.run(
        CompareRequest(PROMPT, 3, ["Euler", "Heun"], steps=STEPS, width=SIDE, height=SIDE)
    )[1]
    varied = model.run(
        VaryRequest(PROMPT, 3, "11", strength=0.3, steps=STEPS, width=SIDE, height=SIDE)
    )[0]
    assert pixels_sha256(varied.image) != pixels_sha256(model.run(request("3"))[0].image)
    for rendered in (tile, lane, varied):
        again = model.replay(rendered.recipe)
        assert pixels_sha256(again.image) == pixels_sha256(rendered.image)


def test_defaults_come_from_the_model_card(model: Engine) -> None:
    defaults = model.planner.defaults()
    expected = MODELS[model.model.model_id][1]
    assert (defaults["steps"], defaults["guidance_scale"], defaults["scheduler"]) == expected


def test_infotext_is_read_back_by_a1111s_pattern(model: Engine) -> None:
    recipe = model.run(request("4", scheduler="Euler Beta"))[0].recipe
    params = dict(A1111_PARAM.findall(infotext(recipe).splitlines()[-1]))
    assert (params["Sampler"], params["Schedule type"], params["Seed"]) == ("Euler", "Beta", "4")
    assert float(params["CFG scale"]) == recipe.guidance_scale
    assert float(params["Shift"]) == pytest.approx(recipe.shift, abs=1e-4)
    assert params["Family"] == MODELS[model.model.model_id][0]


def test_previews_show_the_latents_in_colour(model: Engine) -> None:
    assert_coloured_previews(model, SIDE)


def test_the_truncation_warning_counts_the_text_encoders_own_tokens(model: Engine) -> None:
    """What each family's encoder reads (T5's 512 tokens, Qwen3's 512 in its chat template)."""
    assert not model.truncated("a lighthouse " * 20)
    assert model.truncated("a lighthouse " * 100)
