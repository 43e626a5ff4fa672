"""Checks that run before a job joins the queue: Gradio's `validator=` on each run button.

A refused input is raised as a ValidationError to API callers (gradio_client); a browser's click
runs the same checks first, unqueued, and shows a refusal as a toast naming the field
(`as_toast`), without covering the previous results with an error overlay. The rules are the
engine's own (pipeline.requests); the engine checks again when the job runs, because a
direct HTTP call to /run/<name> skips the queue and its validators.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import gradio as gr

from pipeline.engine import Engine
from pipeline.requests import RequestError, check_compare, check_grid, check_refine
from ui import handlers

# Each tab's inputs, in the order its run button passes them (the API's parameter order);
# states the button also passes (the session manifest, the pinned tile) follow, unchecked.
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

# The handlers' request builders as written: their RequestError names the field, where the
# decorated ones turn it into a toast.
_grid_request = inspect.unwrap(handlers.grid_request)
_refine_request = inspect.unwrap(handlers.refine_request)
_compare_request = inspect.unwrap(handlers.compare_request)


def grid_validator(engine: Engine) -> Validator:
    """For the Grid button: its handler's inputs, parsed and checked as the run will be."""

    def check(*values: Any) -> None:
        check_grid(_grid_request(engine, *values), engine.limits, engine.facts)

    return _validator(check, GRID_INPUTS)


def refine_validator(engine: Engine) -> Validator:
    """For the Refine button: its handler's inputs, parsed and checked as the run will be."""

    def check(*values: Any) -> None:
        check_refine(_refine_request(*values), engine.limits, engine.facts)

    return _validator(check, REFINE_INPUTS)


def compare_validator(engine: Engine) -> Validator:
    """For the Compare button: its handler's inputs, parsed and checked as the run will be."""

    def check(*values: Any) -> None:
        check_compare(_compare_request(*values), engine.limits, engine.facts)

    return _validator(check, COMPARE_INPUTS)


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


def as_toast(validate: Validator) -> Callable[..., None]:
    """A validator as a plain check: its first refusal is raised as a toast."""

    def check(*values: Any) -> None:
        for verdict in validate(*values):
            if not verdict["is_valid"]:
                raise gr.Error(verdict["message"], print_exception=False)

    return check


def _validator(check: Callable[..., None], inputs: tuple[str, ...]) -> Validator:
    def validate(*values: Any) -> list[dict[str, Any]]:
        try:
            check(*values[: len(inputs)])
        except RequestError as error:
            verdicts = verdict(inputs, error)
        else:
            verdicts = verdict(inputs, None)
        return verdicts + [gr.validate(True, "") for _ in values[len(inputs) :]]

    return validate
