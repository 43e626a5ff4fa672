"""The engine's checks: every refusal names its field and what it allows."""

import math
import re
from dataclasses import replace

import pytest
from diffusers import DDIMScheduler

from pipeline.requests import (
    CompareRequest,
    GridRequest,
    Limits,
    ModelFacts,
    RefineRequest,
    RenderSettings,
    RequestError,
    check_compare,
    check_grid,
    check_recipe,
    check_refine,
)
from pipeline.schedulers import SchedulerRegistry
from pipeline.seeds import MAX_SEED
from tests.pipeline.test_metadata import sample_recipe

LIMITS = Limits()
REGISTRY = SchedulerRegistry(DDIMScheduler())
SIXTEEN = tuple(range(16))


def check(request: object, native_size: int | None = 64) -> None:
    """Checked as the engine checks it, or (native_size None) by a caller without the model."""
    model = None if native_size is None else ModelFacts(native_size, REGISTRY)
    run = {GridRequest: check_grid, RefineRequest: check_refine, CompareRequest: check_compare}
    run[type(request)](request, LIMITS, model)


def sized(width: object = None, height: object = None, **more: object) -> RenderSettings:
    return RenderSettings(width=width, height=height, **more)


@pytest.mark.parametrize(
    ("request_", "native_size"),
    [
        (GridRequest("a", SIXTEEN), 64),  # the tiny model's default grid
        (GridRequest("a", SIXTEEN), 512),  # Stable Diffusion 1.5's
        (GridRequest("a", SIXTEEN, sized(512, 512)), 1024),
        (GridRequest("a", tuple(range(8)), sized(768, 768)), 512),
        (GridRequest("a", (0, MAX_SEED), sized(1536, 1536)), 512),
        (GridRequest("a", (7, 7)), 64),
        (GridRequest("a", SIXTEEN), None),  # sides left to a model the caller does not know
        (GridRequest("a", (1,), RenderSettings(guidance_scale=0, steps=150)), 64),
        (RefineRequest("a", 8, ("", ", artsy")), 512),
        (CompareRequest("a", 8, ("Euler", "Euler a", "DDIM"), (("Euler", 12),)), 512),
    ],
)
def test_requests_within_the_limits_pass(request_: object, native_size: int | None) -> None:
    check(request_, native_size)


LONG = "x" * (LIMITS.max_prompt_chars + 1)


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        (GridRequest("", (1,)), "Prompt", "type what to render"),
        (GridRequest(" \n", (1,)), "Prompt", "type what to render"),
        (GridRequest(None, (1,)), "Prompt", "type what to render"),
        (GridRequest(5, (1,)), "Prompt", "must be text, got 5"),
        (GridRequest(LONG, (1,)), "Prompt", "2001 characters is over the 2000 limit"),
        (GridRequest("a", (1,), RenderSettings(LONG)), "Negative prompt", "over the 2000 limit"),
        (GridRequest("a", (1,), RenderSettings(["x"])), "Negative prompt", "must be text"),
        (GridRequest("a", ()), "Seeds", "is empty: give 1 to 16"),
        (GridRequest("a", tuple(range(17))), "Seeds", "17 tiles is more than the 16"),
        (GridRequest("a", "0-3"), "Seeds", "must be a list of whole numbers"),
        (GridRequest("a", (MAX_SEED + 1,)), "Seeds", f"outside 0..{MAX_SEED}"),
        (GridRequest("a", (-1,)), "Seeds", f"outside 0..{MAX_SEED}"),
        (GridRequest("a", ("1",)), "Seeds", f"not a whole number 0..{MAX_SEED}"),
        (GridRequest("a", (1.0,)), "Seeds", "not a whole number"),
        (GridRequest("a", (True,)), "Seeds", "not a whole number"),
        (GridRequest("a", (1,), RenderSettings(steps=0)), "Steps", r"whole number 1\.\.150"),
        (GridRequest("a", (1,), RenderSettings(steps=-3)), "Steps", r"1\.\.150, got -3"),
        (GridRequest("a", (1,), RenderSettings(steps=151)), "Steps", r"1\.\.150, got 151"),
        (GridRequest("a", (1,), RenderSettings(steps=2.5)), "Steps", "got 2.5"),
        (GridRequest("a", (1,), RenderSettings(steps=True)), "Steps", "got True"),
        (GridRequest("a", (1,), sized(0)), "Width", "multiple of 8 from 8 to 1536, got 0"),
        (GridRequest("a", (1,), sized(-64)), "Width", "got -64"),
        (GridRequest("a", (1,), sized(65)), "Width", "got 65"),
        (GridRequest("a", (1,), sized(1544)), "Width", "got 1544"),
        (GridRequest("a", (1,), sized(64.0)), "Width", "got 64.0"),
        (GridRequest("a", (1,), sized(64, 100)), "Height", "multiple of 8 from 8 to 1536"),
        (GridRequest("a", (1,), sized(64, 4096)), "Height", "got 4096"),
        (GridRequest("a", (1,), sized(guidance_scale=math.nan)), "Guidance scale", r"0\.\.30"),
        (GridRequest("a", (1,), sized(guidance_scale=math.inf)), "Guidance scale", "got inf"),
        (GridRequest("a", (1,), sized(guidance_scale=-math.inf)), "Guidance scale", "got -inf"),
        (GridRequest("a", (1,), sized(guidance_scale=-0.5)), "Guidance scale", "got -0.5"),
        (GridRequest("a", (1,), sized(guidance_scale=30.5)), "Guidance scale", "got 30.5"),
        (GridRequest("a", (1,), sized(guidance_scale="7")), "Guidance scale", "a number"),
        (GridRequest("a", (1,), sized(guidance_scale=True)), "Guidance scale", "a number"),
        (GridRequest("a", (1,), sized(scheduler="Eulr")), "Scheduler", "choose one of: DDIM"),
        (GridRequest("a", (1,), sized(scheduler=3)), "Scheduler", "a scheduler name"),
        (RefineRequest("a", -1), "Pinned seed", f"outside 0..{MAX_SEED}"),
        (RefineRequest("a", "8"), "Pinned seed", "not a whole number"),
        (RefineRequest("a", 8, ()), "Suffixes", "is empty: give 1 to 16"),
        (RefineRequest("a", 8, (", a",) * 17), "Suffixes", "17 tiles is more than the 16"),
        (RefineRequest("a", 8, ", artsy"), "Suffixes", "must be a list of texts"),
        (RefineRequest("a", 8, (None,)), "Suffixes", "must be text"),
        (RefineRequest("a", 8, (LONG,)), "Prompt", "over the 2000 limit"),
        (CompareRequest("a", 8, ()), "Schedulers", "is empty: give 1 to 16"),
        (CompareRequest("a", 8, "Euler"), "Schedulers", "must be a list of scheduler names"),
        (CompareRequest("a", 8, ("Eulr",)), "Schedulers", "unknown scheduler 'Eulr'"),
        (CompareRequest("a", 8, ("Euler", "DDIM", "Euler")), "Schedulers", "Euler is chosen twice"),
        (
            CompareRequest("a", 8, ("Euler", "EulerDiscreteScheduler")),
            "Schedulers",
            "chosen twice",
        ),
        (CompareRequest("a", 8, ("Euler",), (("Eulr", 9),)), "Steps per scheduler", "Eulr"),
        (CompareRequest("a", 8, ("Euler",), (("Euler", 0),)), "Steps for Euler", r"1\.\.150"),
        (CompareRequest("a", 8, ("Euler",), (("Euler", 200),)), "Steps for Euler", "got 200"),
        (
            CompareRequest("a", 8, ("Euler",), settings=RenderSettings(steps=999)),
            "Steps",
            "got 999",
        ),
    ],
)
def test_bad_requests_are_refused_naming_the_field_and_what_it_allows(
    request_: object, field: str, words: str
) -> None:
    with pytest.raises(RequestError, match=words) as caught:
        check(request_)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("request_", "native_size", "tiles_at"),
    [
        (GridRequest("a", SIXTEEN, sized(1024, 1024)), 512, "16 tiles at 1024x1024"),
        (GridRequest("a", tuple(range(9)), sized(768, 768)), 512, "9 tiles at 768x768"),
        (GridRequest("a", SIXTEEN), 1024, "16 tiles at 1024x1024"),  # a model's own size
        (GridRequest("a", SIXTEEN, sized(width=1024)), 512, "16 tiles at 1024x512"),
        (GridRequest("a", (1, 2, 3), sized(1536, 1536)), None, "3 tiles at 1536x1536"),
        (RefineRequest("a", 8, (", a",) * 9, sized(768, 768)), 512, "9 tiles at 768x768"),
        (
            CompareRequest("a", 8, ("Euler", "DDIM", "PNDM"), settings=sized(1536, 1536)),
            512,
            "3 tiles at 1536x1536",
        ),
    ],
)
def test_one_run_renders_at_most_max_pixels(
    request_: object, native_size: int | None, tiles_at: str
) -> None:
    with pytest.raises(RequestError, match="4,718,592 one run may render") as caught:
        check(request_, native_size)
    assert caught.value.field == "Size"
    assert tiles_at in str(caught.value)


def test_the_pixel_limit_is_a_setting() -> None:
    request = GridRequest("a", (1, 2), sized(64, 64))
    check_grid(request, Limits(max_pixels=2 * 64 * 64))
    with pytest.raises(RequestError, match="8,191 one run may render"):
        check_grid(request, Limits(max_pixels=2 * 64 * 64 - 1))


def test_without_the_registry_names_are_left_to_the_engine_but_repeats_are_refused() -> None:
    check_compare(CompareRequest("a", 8, ("Eulr",)), LIMITS)
    with pytest.raises(RequestError, match="chosen twice"):
        check_compare(CompareRequest("a", 8, ("Euler", " euler")), LIMITS)


# The largest call the limits allow: 16 tiles at 512x512, the last one replayed.
RECIPE = sample_recipe(width=512, height=512, batch_size=16, batch_index=15)


def test_a_recipe_this_app_could_render_passes() -> None:
    check_recipe(RECIPE, LIMITS)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"prompt": LONG}, "Prompt", "over the 2000 limit"),
        ({"prompt": None}, "Prompt", "type what to render"),
        ({"negative_prompt": 5}, "Negative prompt", "must be text"),
        ({"seed": -1}, "Seed", f"outside 0..{MAX_SEED}"),
        ({"steps": 100_000}, "Steps", "1..150, got 100000"),
        ({"guidance_scale": math.nan}, "Guidance scale", "got nan"),
        ({"width": 8192}, "Width", "multiple of 8 from 8 to 1536, got 8192"),
        ({"height": 100}, "Height", "got 100"),
        ({"batch_size": 64}, "Batch size", "1..16, got 64"),
        ({"batch_size": 0, "batch_index": 0}, "Batch size", "got 0"),
        ({"batch_index": 16}, "Batch index", "0..15, got 16"),
        ({"width": 1024, "height": 1024}, "Size", "16 tiles at 1024x1024"),
    ],
)
def test_a_recipe_from_a_dropped_png_gets_a_requests_limits(
    changes: dict, field: str, words: str
) -> None:
    with pytest.raises(RequestError, match=re.escape(words)) as caught:
        check_recipe(replace(RECIPE, **changes), LIMITS)
    assert caught.value.field == field
