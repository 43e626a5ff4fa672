"""Flux.1 and Stable Diffusion 3 through the one engine, against their plain diffusers pipelines.

The tiny flow models render 32 px tiles in 2 steps; each check renders as few tiles as prove it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from pipeline import axes
from pipeline.engine import Engine
from pipeline.families import FLUX, SD3
from pipeline.loading import load_model
from pipeline.metadata import A1111_PARAM, fields_from_infotext, infotext, read_png
from pipeline.recipe import pixels_sha256, replay_plan
from pipeline.rendering import Stopped
from pipeline.requests import (
    CompareRequest,
    GridRequest,
    MatrixRequest,
    RequestError,
    VaryRequest,
)
from pipeline.schedulers import FLOW_SAMPLERS
from pipeline.tiny import build_tiny_pipeline
from tests.pipeline.helpers import assert_coloured_previews, stopping_after

PROMPT = "a lighthouse at dusk"
SIDE = 32
STEPS = 2
# The flow samplers a plain pipeline cannot render as offered (Flux passes `mu`, which
# FlowMatchHeun rejects; LCM would draw its step noise from the global RNG): each lane is
# held to our own solo render instead.
OUR_LOOP_ONLY = {"flux": {"Heun", "LCM"}, "sd3": {"LCM"}}


def pixels(image: object) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module", params=["tiny-flux", "tiny-sd3"])
def flow(request: pytest.FixtureRequest) -> Engine:
    return Engine(load_model(request.param, device="cpu"))


@pytest.fixture(scope="module")
def schnell() -> Engine:
    return Engine(load_model("tiny-flux-schnell", device="cpu"))


def plain(engine: Engine, config: dict, seeds: list[int], **call: object) -> list:
    """The plain pipeline's render with the engine's modules and this scheduler config."""
    pipe = engine.model.pipe
    scheduler = engine.model.registry.make_exact(config)
    view = type(pipe)(**{**pipe.components, "scheduler": scheduler})
    view.set_progress_bar_config(disable=True)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    return view(
        [PROMPT] * len(seeds),
        num_inference_steps=STEPS,
        width=SIDE,
        height=SIDE,
        generator=generators,
        **call,
    ).images


def grid(engine: Engine, seeds: str = "0", **settings: object) -> list:
    request = GridRequest(PROMPT, seeds, steps=STEPS, width=SIDE, height=SIDE, **settings)
    return engine.run(request)


def test_tiny_flow_models_save_and_load_back_offline_in_eval_mode(tmp_path: Path) -> None:
    for model_id, family in (("tiny-flux", FLUX), ("tiny-sd3", SD3)):
        folder = tmp_path / model_id
        build_tiny_pipeline(model_id).save_pretrained(folder)
        loaded = load_model(str(folder), device="cpu")
        assert loaded.family is family
        modules = [c for c in loaded.pipe.components.values() if isinstance(c, torch.nn.Module)]
        assert modules and not any(module.training for module in modules)


def test_a_flow_grid_is_the_plain_pipelines_render_at_any_batch_size(flow: Engine) -> None:
    """One generator per image, noise drawn unpacked: each tile as FluxPipeline (or
    StableDiffusion3Pipeline) renders it, guided as the model card says."""
    tiles = grid(flow, "3, 4")
    plan = flow.plan(GridRequest(PROMPT, "3, 4", steps=STEPS, width=SIDE, height=SIDE))
    expected = plain(flow, plan.samplers[0].config, [3, 4], guidance_scale=plan.guidance_scale)
    for ours, theirs in zip(tiles, expected, strict=True):
        assert np.abs(pixels(ours.image) - pixels(theirs)).max() <= 2
    assert tiles[1].recipe.family == flow.model.family.name


def test_fluxs_true_cfg_with_a_negative_prompt_is_the_plain_pipelines() -> None:
    engine = Engine(load_model("tiny-flux", device="cpu"))
    tile = grid(engine, "5", negative_prompt="blurry", true_cfg_scale=3.0)[0]
    expected = plain(
        engine,
        tile.recipe.scheduler_config,
        [5],
        guidance_scale=tile.recipe.guidance_scale,
        true_cfg_scale=3.0,
        negative_prompt=["blurry"],
    )
    assert np.abs(pixels(tile.image) - pixels(expected[0])).max() <= 2
    assert (tile.recipe.guidance_kind, tile.recipe.true_cfg_scale) == ("embedding", 3.0)


def test_every_offered_flow_sampler_in_lockstep_is_its_plain_or_solo_render(
    flow: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One transformer call per step for every lane (Heun's 3 evaluations in 2 steps set the
    count); a lane is the plain pipeline with that sampler where diffusers can render it so,
    else our own solo render of it."""
    names = flow.model.registry.names
    assert {entry.name for entry in FLOW_SAMPLERS} <= set(names)
    request = CompareRequest(PROMPT, 7, names, steps=STEPS, width=SIDE, height=SIDE)
    transformer = type(flow.model.pipe.transformer)
    forward, calls = transformer.forward, []

    def counting(self: torch.nn.Module, **inputs: torch.Tensor) -> object:
        calls.append(inputs["hidden_states"].shape[0])
        return forward(self, **inputs)

    monkeypatch.setattr(transformer, "forward", counting)
    lanes = flow.run(request)
    monkeypatch.undo()
    rows = len(names) * (2 if flow.model.family is SD3 else 1)  # SD3 guides uncond-then-cond
    assert calls == [rows, rows, rows // len(names)]
    family = flow.model.family.name
    for lane in lanes:
        recipe = lane.recipe
        if recipe.sampler in OUR_LOOP_ONLY[family]:
            [expected] = grid(flow, "7", scheduler=recipe.sampler)
            expected = expected.image
        else:
            # As a Flux user sets a solver up: dynamic shifting, `mu` from the pipeline.
            config = recipe.scheduler_config
            if family == "flux" and recipe.mu is not None:
                config = {**config, "use_dynamic_shifting": True}
            [expected] = plain(flow, config, [7], guidance_scale=recipe.guidance_scale)
        assert np.abs(pixels(lane.image) - pixels(expected)).max() <= 2, recipe.sampler


def test_a_stochastic_flow_sampler_draws_from_the_tiles_generator(schnell: Engine) -> None:
    assert "LCM" in schnell.model.registry.names  # timestep-distilled: LCM fits
    torch.manual_seed(1)
    first = grid(schnell, "2", scheduler="LCM")[0]
    torch.manual_seed(2)
    second = grid(schnell, "2", scheduler="LCM")[0]
    assert pixels_sha256(first.image) == pixels_sha256(second.image)
    assert first.recipe.guidance_kind == "none" and first.recipe.steps == STEPS


def test_flow_tiles_and_lanes_replay_bit_exact(flux: Engine) -> None:
    tile = grid(flux, "0-1")[1]
    lane = flux.run(
        CompareRequest(PROMPT, 3, ["Euler", "Heun"], steps=STEPS, width=SIDE, height=SIDE)
    )[1]
    for rendered in (tile, lane):
        again = flux.replay(rendered.recipe)
        assert pixels_sha256(again.image) == pixels_sha256(rendered.image)
    assert tile.recipe.mu is not None and tile.recipe.shift == pytest.approx(np.exp(tile.recipe.mu))


@pytest.mark.parametrize(
    ("field", "value", "refused"),
    [
        ("shift", "3", "Shift"),
        ("shift", -1.0, "Shift"),
        ("shift", None, "Shift"),
        ("mu", float("nan"), "Mu"),
        ("scheduler_config", {"shift": 2.0}, "Scheduler config: shift"),
    ],
)
def test_a_dropped_recipes_shift_is_held_to_a_requests_rules(
    flux: Engine, field: str, value: object, refused: str
) -> None:
    """Its shift a number a request may ask for, and its scheduler's the one that shift makes."""
    recipe = grid(flux, "0")[0].recipe
    if field == "scheduler_config":
        value = {**recipe.scheduler_config, **value}  # type: ignore[dict-item]
    bad = replace(recipe, **{field: value})
    with pytest.raises(RequestError, match=refused):
        replay_plan(bad, flux.planner)


def test_flux_previews_show_the_unpacked_latents_in_colour(flux: Engine) -> None:
    assert_coloured_previews(flux, SIDE)


def test_stop_ends_a_flow_render_before_its_decode(
    flux: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks, seen = stopping_after(1)
    decoded: list[object] = []
    monkeypatch.setattr(flux.model.pipe.vae, "decode", decoded.append)
    with pytest.raises(Stopped, match="Stopped at step 1 of 3"):
        flux.render(flux.plan(GridRequest(PROMPT, "1", steps=3, width=SIDE, height=SIDE)), hooks)
    assert seen == ["Euler: step 1/3"] and decoded == []


def test_vary_at_strength_0_is_the_pinned_flux_tile(flux: Engine) -> None:
    pinned = grid(flux, "9")[0]
    varied = flux.run(
        VaryRequest(PROMPT, 9, "11", strength=0.0, steps=STEPS, width=SIDE, height=SIDE)
    )[0]
    assert pixels_sha256(varied.image) == pixels_sha256(pinned.image)


def test_flux_infotext_is_forges_and_a1111s_pattern_reads_it(flux: Engine) -> None:
    recipe = grid(flux, "4", scheduler="Euler Beta")[0].recipe
    text = infotext(recipe)
    params = dict(A1111_PARAM.findall(text.splitlines()[-1]))
    assert params["Sampler"] == "Euler" and params["Schedule type"] == "Beta"
    assert float(params["Distilled CFG Scale"]) == recipe.guidance_scale == 3.5
    assert float(params["CFG scale"]) == 1.0
    assert float(params["Shift"]) == pytest.approx(recipe.shift, abs=1e-4)
    fields = fields_from_infotext(text, flux.model.registry.names, "flux")
    assert (fields.scheduler, fields.guidance_scale, fields.true_cfg_scale) == (
        "Euler Beta",
        3.5,
        1.0,
    )


def test_a_forge_flux_png_loads(tmp_path: Path) -> None:
    """A Flux.1 [dev] PNG as Forge writes it: its `parameters` chunk."""
    text = (
        "a cat in a hat\n"
        "Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, "
        "Distilled CFG Scale: 3.5, Seed: 1234, Size: 896x1152, Model hash: bea01d51bd, "
        "Model: flux1-dev-bnb-nf4-v2, Version: f2.0.1v1.10.1-previous-304-g394da019, "
        "Module 1: ae, Module 2: clip_l, Module 3: t5xxl_fp16"
    )
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (8, 8)).save(tmp_path / "forge.png", pnginfo=info)
    _, recipe, parameters = read_png(tmp_path / "forge.png")
    assert recipe is None and parameters is not None
    names = [entry.name for entry in FLOW_SAMPLERS]
    fields = fields_from_infotext(parameters, names, "flux")
    assert (fields.prompt, fields.seed, fields.steps, fields.scheduler) == (
        "a cat in a hat",
        1234,
        20,
        "Euler",
    )
    assert (fields.guidance_scale, fields.true_cfg_scale) == (3.5, 1.0)
    assert (fields.width, fields.height) == (896, 1152)


def test_the_matrix_has_distilled_cfg_and_shift_axes_for_flux(flux: Engine) -> None:
    matrix = flux.plan(
        MatrixRequest(
            PROMPT,
            1,
            axes.DISTILLED_CFG,
            "2, 4",
            axes.SHIFT,
            "1, 3",
            steps=STEPS,
            width=SIDE,
            height=SIDE,
        )
    )
    cells = [matrix.plans[which] for which, _ in matrix.cells]
    assert [(plan.guidance_scale, plan.shift) for plan in cells] == [
        (2.0, 1.0),
        (4.0, 1.0),
        (2.0, 3.0),
        (4.0, 3.0),
    ]
    assert [plan.samplers[0].config["shift"] for plan in cells] == [1.0, 1.0, 3.0, 3.0]


def test_distilled_cfg_is_refused_for_a_model_without_it(engine: Engine) -> None:
    request = MatrixRequest(PROMPT, 1, axes.DISTILLED_CFG, "2, 4", axes.SEED, "1")
    with pytest.raises(RequestError, match="X axis: Distilled CFG"):
        engine.plan(request)


def test_a_flow_models_defaults_and_sizes_come_from_its_card(flux: Engine) -> None:
    defaults = flux.planner.defaults()
    assert (defaults["steps"], defaults["guidance_scale"], defaults["scheduler"]) == (
        28,
        3.5,
        "Euler",
    )
    assert flux.model.native_size == flux.model.pipe.default_sample_size * 2


def test_the_truncation_warning_counts_t5s_tokens(flux: Engine) -> None:
    """CLIP stops at 77 tokens, T5 at Flux's 512: only T5's limit loses the prompt's text."""
    assert not flux.truncated("a lighthouse " * 20)  # over CLIP's 77, within T5's 512
    assert flux.truncated("a lighthouse " * 60)


def test_flux_in_bfloat16_on_the_cpu_renders_and_replays_bit_exact() -> None:
    """The path a GPU user takes: float32 noise cast to bf16 latents, a bf16 timestep and
    embeddings, the VAE's own dtype."""
    engine = Engine(load_model("tiny-flux", device="cpu", dtype="bfloat16"))
    tile = grid(engine, "6")[0]
    assert tile.recipe.dtype == "bfloat16"
    assert pixels(tile.image).std() > 0
    assert pixels_sha256(engine.replay(tile.recipe).image) == pixels_sha256(tile.image)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_a_tile_is_the_same_with_and_without_offload(mode: str) -> None:
    on_gpu = Engine(load_model("tiny-flux", device="cuda"))
    offloaded = Engine(load_model("tiny-flux", device="cuda", offload=mode))
    tiles = [grid(engine, "3")[0] for engine in (on_gpu, offloaded)]
    assert pixels_sha256(tiles[0].image) == pixels_sha256(tiles[1].image)
    assert (tiles[0].recipe.offload_mode, tiles[1].recipe.offload_mode) == (None, mode)
