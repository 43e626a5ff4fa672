"""The plan: every input rule and default, once. Each refusal names its field and what it
allows; every default comes from the loaded model."""

from __future__ import annotations

import math
import pickle
import re
from dataclasses import dataclass, field, replace

import pytest
from diffusers import DDIMScheduler

from pipeline.families import SD1, SDXL, Family
from pipeline.plan import Defaults
from pipeline.planner import Planner
from pipeline.recipe import replay_plan
from pipeline.requests import (
    CompareRequest,
    GridRequest,
    Limits,
    RefineRequest,
    RequestError,
    parse_steps_table,
)
from pipeline.schedulers import SchedulerRegistry
from pipeline.seeds import MAX_SEED
from tests.pipeline.test_metadata import sample_recipe

REGISTRY = SchedulerRegistry(DDIMScheduler())


@dataclass(frozen=True)
class Model:
    """What a plan reads of a loaded model, without one."""

    native_size: int = 64
    family: Family = SD1
    registry: SchedulerRegistry = REGISTRY
    defaults: Defaults = field(default_factory=Defaults)


LIMITS = Limits()
SIXTEEN = tuple(range(16))
LONG = "x" * (LIMITS.max_prompt_chars + 1)


def euler(**settings: object) -> CompareRequest:
    return CompareRequest("a", 8, ("Euler",), **settings)


def plan(request: object, native_size: int = 64, **planner: object):
    return Planner(Model(native_size), LIMITS, **planner).plan(request)


@pytest.mark.parametrize(
    ("request_", "native_size"),
    [
        (GridRequest("a", SIXTEEN), 64),  # the tiny model's default grid
        (GridRequest("a", SIXTEEN), 512),  # Stable Diffusion 1.5's
        (GridRequest("a", SIXTEEN, width=512, height=512), 1024),
        (GridRequest("a", tuple(range(8)), width=768, height=768), 512),
        (GridRequest("a", (0, MAX_SEED), width=1536, height=1536), 512),
        (GridRequest("a", (7, 7)), 64),
        (GridRequest("a", "0-15"), 512),
        (GridRequest("a", (1,), guidance_scale=0, steps=150), 64),
        (RefineRequest("a", 8, ("", ", artsy")), 512),
        (CompareRequest("a", 8, ("Euler", "Euler a", "DDIM"), scheduler_steps="Euler: 12"), 512),
    ],
)
def test_requests_within_the_limits_pass(request_: object, native_size: int) -> None:
    assert plan(request_, native_size).tiles >= 1


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        (GridRequest("", (1,)), "Prompt", "type what to render"),
        (GridRequest(" \n", (1,)), "Prompt", "type what to render"),
        (GridRequest(None, (1,)), "Prompt", "type what to render"),
        (GridRequest(5, (1,)), "Prompt", "must be text, got 5"),
        (GridRequest(LONG, (1,)), "Prompt", "2001 characters is over the 2000 limit"),
        (GridRequest("a", (1,), negative_prompt=LONG), "Negative prompt", "over the 2000"),
        (GridRequest("a", (1,), negative_prompt=["x"]), "Negative prompt", "must be text"),
        (GridRequest("a", ()), "Seeds", "is empty: give 1 to 16"),
        (GridRequest("a", tuple(range(17))), "Seeds", "17 tiles is more than the 16"),
        (GridRequest("a", "0-16"), "Seeds", "17 seeds is more than the 16"),
        (GridRequest("a", "9" * 5000), "Seeds", r"999999999999\.\.\. \(5000 digits\)"),
        (GridRequest("a", 3), "Seeds", "must be a seed list like 0-3"),
        (GridRequest("a", (MAX_SEED + 1,)), "Seeds", f"outside 0..{MAX_SEED}"),
        (GridRequest("a", (-1,)), "Seeds", f"outside 0..{MAX_SEED}"),
        (GridRequest("a", ("1",)), "Seeds", f"not a whole number 0..{MAX_SEED}"),
        (GridRequest("a", (1.0,)), "Seeds", "not a whole number"),
        (GridRequest("a", (True,)), "Seeds", "not a whole number"),
        (GridRequest("a", (1,), steps=-3), "Steps", r"1\.\.150, got -3"),
        (GridRequest("a", (1,), steps=151), "Steps", r"1\.\.150, got 151"),
        (GridRequest("a", (1,), steps=2.5), "Steps", "must be a whole number, got 2.5"),
        (GridRequest("a", (1,), steps="abc"), "Steps", "must be a number, got 'abc'"),
        (GridRequest("a", (1,), steps=True), "Steps", "must be a number, got True"),
        (GridRequest("a", (1,), width=-64), "Width", "multiple of 8 from 8 to 1536, got -64"),
        (GridRequest("a", (1,), width=65), "Width", "got 65"),
        (GridRequest("a", (1,), width=1544), "Width", "got 1544"),
        (GridRequest("a", (1,), height=100), "Height", "multiple of 8 from 8 to 1536"),
        (GridRequest("a", (1,), guidance_scale=math.nan), "Guidance scale", r"0\.\.30"),
        (GridRequest("a", (1,), guidance_scale=math.inf), "Guidance scale", "got inf"),
        (GridRequest("a", (1,), guidance_scale=-0.5), "Guidance scale", "got -0.5"),
        (GridRequest("a", (1,), guidance_scale=30.5), "Guidance scale", "got 30.5"),
        (GridRequest("a", (1,), guidance_scale="x"), "Guidance scale", "a number"),
        (GridRequest("a", (1,), true_cfg_scale=2), "True CFG scale", "only Flux.1 takes one"),
        (GridRequest("a", (1,), scheduler="Eulr"), "Scheduler", "choose one of: DDIM"),
        (GridRequest("a", (1,), scheduler=3), "Scheduler", "a scheduler name"),
        (RefineRequest("a", -1), "Pinned seed", f"outside 0..{MAX_SEED}"),
        (RefineRequest("a", ""), "Pinned seed", "no seed pinned yet"),
        (RefineRequest("a", "1, 2"), "Pinned seed", f"one whole number 0..{MAX_SEED}"),
        (RefineRequest("a", 8, ()), "Suffixes", "is empty: give 1 to 16"),
        (RefineRequest("a", 8, "\n \n"), "Suffixes", "write at least one suffix"),
        (RefineRequest("a", 8, (", a",) * 17), "Suffixes", "17 tiles is more than the 16"),
        (RefineRequest("a", 8, (None,)), "Suffixes", "must be text"),
        (RefineRequest("a", 8, 5), "Suffixes", "must be text"),
        (RefineRequest("a" * 1995, 8, (", artsy",)), "Prompt", "2002 characters"),
        (CompareRequest("a", 8, ()), "Schedulers", "is empty: give 1 to 16"),
        (CompareRequest("a", 8, ("Eulr",)), "Schedulers", "unknown scheduler 'Eulr'"),
        (CompareRequest("a", 8, ("Euler", "DDIM", "Euler")), "Schedulers", "Euler is chosen"),
        (CompareRequest("a", 8, ("Euler", "EulerDiscreteScheduler")), "Schedulers", "twice"),
        (euler(steps=999), "Steps", "got 999"),
        (euler(scheduler_steps="Eulr: 9"), "Steps per scheduler", "Eulr"),
        (euler(scheduler_steps="Euler 9"), "Steps per scheduler", "Name: steps"),
        (euler(scheduler_steps=5), "Steps per scheduler", "must be text"),
        (euler(scheduler_steps="Euler: 0"), "Steps for Euler", "at least 1"),
        (euler(scheduler_steps="Euler: 200"), "Steps for Euler", "got 200"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_naming_the_field_and_what_it_allows(
    request_: object, field: str, words: str
) -> None:
    with pytest.raises(RequestError, match=words) as caught:
        plan(request_)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("request_", "native_size", "tiles_at"),
    [
        (GridRequest("a", SIXTEEN, width=1024, height=1024), 512, "16 tiles at 1024x1024"),
        (GridRequest("a", tuple(range(9)), width=768, height=768), 512, "9 tiles at 768x768"),
        (GridRequest("a", SIXTEEN), 1024, "16 tiles at 1024x1024"),  # a model's own size
        (GridRequest("a", SIXTEEN, width=1024), 512, "16 tiles at 1024x512"),
        (RefineRequest("a", 8, (", a",) * 9, width=768, height=768), 512, "9 tiles at 768x768"),
        (
            CompareRequest("a", 8, ("Euler", "DDIM", "PNDM"), width=1536, height=1536),
            512,
            "3 tiles at 1536x1536",
        ),
    ],
)
def test_one_run_renders_at_most_max_pixels(
    request_: object, native_size: int, tiles_at: str
) -> None:
    with pytest.raises(RequestError, match="4,718,592 one run may render") as caught:
        plan(request_, native_size)
    assert caught.value.field == "Size"
    assert tiles_at in str(caught.value)


def test_the_pixel_limit_is_a_setting() -> None:
    request = GridRequest("a", (1, 2))
    Planner(Model(), Limits(max_pixels=2 * 64 * 64)).plan(request)
    with pytest.raises(RequestError, match="8,191 one run may render"):
        Planner(Model(), Limits(max_pixels=2 * 64 * 64 - 1)).plan(request)


def test_every_unset_setting_is_the_models_own() -> None:
    """None, "" and 0 are the defaults; a slider's 20.0 is 20; the family's guidance."""
    grid = plan(GridRequest("a", "0-5", steps=0, width="", height=None, guidance_scale=None))
    sampler = grid.samplers[0]
    assert (sampler.name, sampler.steps, sampler.config["_class_name"]) == (
        "DDIM",
        50,
        "DDIMScheduler",
    )
    assert (grid.width, grid.height, grid.guidance_scale, grid.negative_prompt) == (64, 64, 7.5, "")
    assert plan(GridRequest("a", "1", steps=20.0, width=128.0)).samplers[0].steps == 20
    xl = Planner(Model(1024, SDXL)).plan(GridRequest("a", "1"))
    assert (xl.width, xl.guidance_scale) == (1024, 5.0)
    assert xl.extras == {
        "original_size": [1024, 1024], "crops_coords_top_left": [0, 0], "target_size": [1024, 1024]
    }  # fmt: skip
    assert Planner(Model()).defaults() == {
        "scheduler": "DDIM", "steps": 50, "guidance_scale": 7.5, "width": 64, "height": 64,
        "compare": ["DPM++ 2M", "Euler", "Euler a", "DDIM", "PNDM", "UniPC"],
    }  # fmt: skip


def test_a_models_own_defaults_are_every_unset_settings_and_compares() -> None:
    """A few-step model's (or --default-*'s): its scheduler, its steps for every scheduler,
    its guidance, and the schedulers Compare starts with (those offered)."""
    fitting = ("LCM", "TCD")
    own = Model(
        registry=SchedulerRegistry(DDIMScheduler(), fitting),
        defaults=Defaults("LCM", 4, 1.0, (*fitting, "Not offered")),
    )
    planner = Planner(own)
    grid = planner.plan(GridRequest("a", "1"))
    assert (grid.samplers[0].name, grid.samplers[0].steps, grid.guidance_scale) == ("LCM", 4, 1.0)
    assert grid.samplers[0].config["_class_name"] == "LCMScheduler"
    assert planner.plan(GridRequest("a", "1", scheduler="Euler")).samplers[0].steps == 4
    compare = planner.plan(CompareRequest("a", 8, ("DDIM", "TCD"), scheduler_steps="TCD: 2"))
    assert [(s.name, s.steps) for s in compare.samplers] == [("DDIM", 4), ("TCD", 2)]
    assert planner.scheduler_steps(["Euler"]) == {"Euler": 4}
    assert planner.defaults()["compare"] == ["LCM", "TCD"]
    zero = Planner(Model(defaults=Defaults(guidance_scale=0.0))).plan(GridRequest("a", "1"))
    assert zero.guidance_scale == 0.0  # not the family's 7.5: 0 is a value, not "unset"


@pytest.mark.parametrize(
    ("defaults", "field"),
    [
        (Defaults(scheduler="Nonsense"), "Default scheduler"),
        (Defaults(steps=LIMITS.max_steps + 1), "Default steps"),
        (Defaults(guidance_scale=-1.0), "Guidance scale"),
    ],
)
def test_a_default_that_cannot_run_is_refused_naming_it(defaults: Defaults, field: str) -> None:
    with pytest.raises(RequestError) as caught:
        Planner(Model(defaults=defaults), LIMITS).defaults()
    assert caught.value.field == field


def test_a_grid_is_planned_in_micro_batches_and_seeds_as_typed() -> None:
    grid = plan(GridRequest("a boat", "5, 17, 3, 0-2"), micro_batch=4)
    assert [item.seed for item in grid.items] == [5, 17, 3, 0, 1, 2]
    assert grid.per_call == 4 and not grid.lockstep
    assert plan(GridRequest("a", "1, 2"), micro_batch=4).per_call == 2
    assert plan(GridRequest("a", "0-5"), micro_batch=None).per_call == 6
    drawn = plan(GridRequest("a", "random 2"))
    assert len(drawn.items) == 2 and all(0 <= item.seed < 2**32 for item in drawn.items)


def test_a_refinement_is_the_pinned_seed_once_per_suffix_as_typed() -> None:
    refine = plan(RefineRequest("a boat", " 8 ", ", artsy\n\n  , b c  \n"))
    assert [(i.prompt, i.seed, i.suffix) for i in refine.items] == [
        ("a boat, artsy", 8, ", artsy"),
        ("a boat  , b c  ", 8, "  , b c  "),
    ]
    assert plan(RefineRequest("a", 8.0)).items[0].seed == 8  # an API client's number


def test_a_comparison_takes_steps_for_all_then_per_scheduler_then_each_ones_own() -> None:
    names = ("Euler", "DDIM", "DPM++ 2M")
    own = plan(CompareRequest("a", 8, names, steps=0, scheduler_steps="DDIM: 3\n\nEuler: 2"))
    assert [(s.name, s.steps) for s in own.samplers] == [
        ("Euler", 2),
        ("DDIM", 3),
        ("DPM++ 2M", 20),
    ]
    assert own.lockstep and own.per_call == 3 and own.tiles == 3
    every = plan(CompareRequest("a", 8, names, steps=4, scheduler_steps="DDIM: 3"))
    assert {s.steps for s in every.samplers} == {4}
    assert plan(CompareRequest("a", 8, "Euler")).samplers[0].name == "Euler"  # one name as text


def test_compares_steps_table_keeps_what_a_user_typed() -> None:
    assert parse_steps_table("Euler: 12\nPNDM: 9\nnonsense") == {"Euler": "12", "PNDM": "9"}
    assert Planner(Model()).scheduler_steps(["Euler", "EulerAncestralDiscreteScheduler"]) == {
        "Euler": 30, "Euler a": 30
    }  # fmt: skip


# The largest call the limits allow: 16 tiles at 512x512, the last one replayed.
RECIPE = sample_recipe(
    sampler="DDIM",
    scheduler_class="DDIMScheduler",
    scheduler_config=REGISTRY.config("DDIM"),
    width=512,
    height=512,
    batch_size=16,
    batch_index=15,
)


def test_a_recipe_is_planned_as_the_call_that_rendered_it() -> None:
    again = replay_plan(RECIPE, Planner(Model(512)))
    assert len(again.items) == 16 and again.per_call == 16
    assert again.samplers[0].config == RECIPE.scheduler_config
    assert (again.width, again.generator_device) == (512, RECIPE.generator_device)


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
        ({"conditioning": {"original_size": [64, 64]}}, "Size conditioning", "pairs of sides"),
    ],
)
def test_a_recipe_from_a_dropped_png_gets_a_requests_limits(
    changes: dict, field: str, words: str
) -> None:
    with pytest.raises(RequestError, match=re.escape(words)) as caught:
        replay_plan(replace(RECIPE, **changes), Planner(Model(512)))
    assert caught.value.field == field


def test_a_refusal_crosses_to_another_process_naming_its_field() -> None:
    """A Ray Serve replica's refusal reaches the front door by pickle."""
    again = pickle.loads(pickle.dumps(RequestError("Steps", "must be 1..150, got 0")))
    assert isinstance(again, RequestError) and again.field == "Steps"
    assert str(again) == "Steps: must be 1..150, got 0"
