"""Checks that run before a job joins the queue: Gradio's `validator=` on each run button.

A refused input is marked on its own field at once (browser) or raised as a ValidationError
(gradio_client), and never covers the previous results with an error overlay. The rules are the
engine's own (pipeline.requests); the engine checks again when the job runs, because a
direct HTTP call to /run/<name> skips the queue and its validators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from pipeline.engine import Engine
from pipeline.requests import (
    CompareRequest,
    GridRequest,
    ModelFacts,
    RefineRequest,
    RequestError,
    check_compare,
    check_grid,
    check_refine,
)
from pipeline.seeds import SeedError, parse_seeds
from ui.handlers import parse_scheduler_steps, parse_suffixes, pinned_seed, settings

# Each tab's inputs, in the order its run button passes them (the API's parameter order).
GRID_INPUTS = (
    "prompt", "negative_prompt", "seeds", "scheduler", "steps", "guidance_scale", "width", "height"
)  # fmt: skip
REFINE_INPUTS = (
    "prompt", "negative_prompt", "seed", "suffixes", "scheduler", "steps", "guidance_scale",
    "width", "height",
)  # fmt: skip
COMPARE_INPUTS = (
    "prompt", "negative_prompt", "seed", "schedulers", "steps", "guidance_scale", "width",
    "height", "scheduler_steps",
)  # fmt: skip

# A refusal's field, where it is not the input's label: which input to mark.
_INPUT_OF_FIELD = {"Pinned seed": "seed", "Steps per scheduler": "scheduler_steps", "Size": "width"}

Validator = Callable[..., list[dict[str, Any]]]


def grid_validator(engine: Engine) -> Validator:
    """For the Grid button; takes the same inputs as its handler."""
    return _validator(engine, grid_request, GRID_INPUTS)


def refine_validator(engine: Engine) -> Validator:
    """For the Refine button; takes the same inputs as its handler."""
    return _validator(engine, refine_request, REFINE_INPUTS)


def compare_validator(engine: Engine) -> Validator:
    """For the Compare button; takes the same inputs as its handler."""
    return _validator(engine, compare_request, COMPARE_INPUTS)


def grid_request(
    engine: Engine,
    prompt: Any,
    negative_prompt: Any,
    seeds: Any,
    scheduler: Any,
    steps: Any,
    guidance_scale: Any,
    width: Any,
    height: Any,
) -> GridRequest:
    """The grid the Grid tab's values ask for, checked as the engine will check it."""
    try:
        seed_list = parse_seeds(seeds, engine.limits.max_tiles)
    except SeedError as error:
        raise RequestError("Seeds", str(error)) from None
    request = GridRequest(
        prompt=prompt,
        seeds=tuple(seed_list),
        settings=settings(negative_prompt, scheduler, steps, guidance_scale, width, height),
    )
    check_grid(request, engine.limits, model_facts(engine))
    return request


def refine_request(
    engine: Engine,
    prompt: Any,
    negative_prompt: Any,
    seed: Any,
    suffixes: Any,
    scheduler: Any,
    steps: Any,
    guidance_scale: Any,
    width: Any,
    height: Any,
) -> RefineRequest:
    """The refinement the Refine tab's values ask for, checked as the engine will check it."""
    request = RefineRequest(
        prompt=prompt,
        seed=pinned_seed(seed),
        suffixes=parse_suffixes(suffixes),
        settings=settings(negative_prompt, scheduler, steps, guidance_scale, width, height),
    )
    check_refine(request, engine.limits, model_facts(engine))
    return request


def compare_request(
    engine: Engine,
    prompt: Any,
    negative_prompt: Any,
    seed: Any,
    schedulers: Any,
    steps: Any,
    guidance_scale: Any,
    width: Any,
    height: Any,
    scheduler_steps: Any = "",
) -> CompareRequest:
    """The comparison the Compare tab's values ask for, checked as the engine will check it."""
    request = CompareRequest(
        prompt=prompt,
        seed=pinned_seed(seed),
        schedulers=tuple([schedulers] if isinstance(schedulers, str) else schedulers or ()),
        scheduler_steps=parse_scheduler_steps(scheduler_steps),
        settings=settings(negative_prompt, None, steps, guidance_scale, width, height),
    )
    check_compare(request, engine.limits, model_facts(engine))
    return request


def model_facts(engine: Engine) -> ModelFacts:
    """What the checks need from the engine's model, as the engine itself passes it."""
    return ModelFacts(engine.model.native_size, engine.registry)


def verdict(inputs: tuple[str, ...], error: RequestError | None) -> list[dict[str, Any]]:
    """One gr.validate per input: the refused one carries the message, the rest are cleared.

    A field no input is named after marks the first input, so a refusal is never lost.
    """
    refused = None if error is None else input_of(error.field)
    if error is not None and refused not in inputs:
        refused = inputs[0]
    return [gr.validate(name != refused, str(error) if name == refused else "") for name in inputs]


def input_of(field_name: str) -> str:
    """The input a refusal's field names ("Guidance scale" -> guidance_scale)."""
    if field_name.startswith("Steps for "):
        return "scheduler_steps"
    return _INPUT_OF_FIELD.get(field_name, field_name.lower().replace(" ", "_"))


def _validator(engine: Engine, build: Callable[..., object], inputs: tuple[str, ...]) -> Validator:
    def validate(*values: Any) -> list[dict[str, Any]]:
        try:
            build(engine, *values)
        except RequestError as error:
            return verdict(inputs, error)
        return verdict(inputs, None)

    return validate
