"""Checks that run before a job joins the queue: Gradio's `validator=` on each run button.

A refused input is raised as a ValidationError to API callers (gradio_client); a browser's click
runs the same check first, unqueued, and shows a refusal as a toast naming the field
(`as_toast`), without covering the previous results with an error overlay. The check is the
plan itself (pipeline/plan.py): the job makes the same plan when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import gradio as gr

from pipeline.engine import Engine
from pipeline.requests import Limits, RequestError
from ui.specs import TabSpec

# A refusal's field, where it is not the input's label: which input to mark.
_INPUT_OF_FIELD = {
    "Pinned seed": "seed",
    "Steps per scheduler": "scheduler_steps",
    "Size": "width",
    "Resize seed from": "resize_from",
}

Validator = Callable[..., list[dict[str, Any]]]


def validator(engine: Engine, spec: TabSpec) -> Validator:
    """For a tab's run button: its values (by input name) made into the request and planned
    as the run will be (pipeline/plan.py); the session states the button also passes
    (manifest, pin) follow, unchecked."""
    inputs = spec.inputs

    def validate(**values: Any) -> list[dict[str, Any]]:
        pin = values.get("pin")
        try:
            engine.plan(spec.request_of(values, pin and pin.variation()))
        except RequestError as error:
            verdicts = verdict(inputs, error)
        else:
            verdicts = verdict(inputs, None)
        return verdicts + [gr.validate(True, "") for _ in range(len(values) - len(inputs))]

    return validate


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


def as_toast(validate: Validator, limits: Limits, own: Collection[str] = ()) -> Callable[..., None]:
    """A validator as a browser's plain check: its first refusal is raised as a toast. A
    Settings box that shows a range refuses 0 there, which the API reads as "the model's
    default"; a tab's `own` box of the same name says itself what its 0 means (Compare's
    "Steps for all": each scheduler's own)."""
    shown = {
        "steps": ("Steps", f"must be a whole number 1..{limits.max_steps}"),
        "width": ("Width", f"must be a multiple of 8 from {limits.min_side} to {limits.max_side}"),
        "height": (
            "Height",
            f"must be a multiple of 8 from {limits.min_side} to {limits.max_side}",
        ),
    }

    def check(**values: Any) -> None:
        for name, (field_name, rule) in shown.items():
            if name not in own and values.get(name) == 0:
                raise gr.Error(f"{field_name}: {rule}, got 0", print_exception=False)
        for verdict in validate(**values):
            if not verdict["is_valid"]:
                raise gr.Error(verdict["message"], print_exception=False)

    return check
