"""Bad input, from the validators that run before the queue to the API of a launched app.

Every refusal names its field and what it allows, arrives within seconds, and leaves the app
serving: the same request afterwards still gives the same pixels.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, ValidationError
from PIL import Image

from pipeline.engine import Engine
from pipeline.requests import RequestError
from pipeline.seeds import MAX_SEED
from ui import specs, validation

GRID = ("a kite", "", "0-3", "DDIM", 20, 7.5, 768, 768, 1, 0, 0)
REFINE = ("a kite", "", "8", ", artsy\n, trending", "DDIM", 20, 7.5, 64, 64, 1, 0, 0)
COMPARE = ("a kite", "", "8", ["Euler", "DDIM"], 0, 7.5, 64, 64, "Euler: 30\nDDIM: 50", 1, 0, 0)
LONG = "x" * 2001


def with_value(values: tuple, inputs: tuple[str, ...], name: str, value: Any) -> tuple:
    return tuple(value if key == name else old for key, old in zip(inputs, values, strict=True))


def named(spec: specs.TabSpec, values: tuple) -> dict[str, Any]:
    return dict(zip(spec.inputs, values, strict=True))


def validate(engine: Engine, spec: specs.TabSpec, values: tuple, **states: object) -> list[dict]:
    return validation.validator(engine, spec)(**named(spec, values), **states)


def test_validators_pass_good_input(engine: Engine) -> None:
    for spec, values in [(specs.GRID, GRID), (specs.REFINE, REFINE), (specs.COMPARE, COMPARE)]:
        verdicts = validate(engine, spec, values)
        assert [v["__type__"] for v in verdicts] == ["validate"] * len(spec.inputs)
        assert all(v["is_valid"] for v in verdicts)


# The plan's rules are tested once, in tests/pipeline/test_plan.py; here: which input each
# kind of refusal marks (its field's own input, or the input the field is about).
@pytest.mark.parametrize(
    ("spec", "values", "name", "value", "marked", "words"),
    [
        (specs.GRID, GRID, "seeds", "0-x", "seeds", "Seeds: cannot read '0-x'"),
        (specs.GRID, GRID, "guidance_scale", 31, "guidance_scale", "must be 0..30.0, got 31"),
        (specs.GRID, GRID, "seeds", "0-8", "width", "Size: 9 tiles at 768x768 is 5,308,416"),
        (specs.REFINE, REFINE, "seed", "", "seed", "Pinned seed: no seed pinned yet"),
        (specs.COMPARE, COMPARE, "scheduler_steps", "Euler: 0", "scheduler_steps", "Steps for"),
        (specs.COMPARE, COMPARE, "scheduler_steps", "Eulr: 9", "scheduler_steps", "Steps per"),
        (specs.GRID, GRID, "true_cfg_scale", 2, "true_cfg_scale", "only Flux.1 takes one"),
        (specs.GRID, GRID, "shift", 3, "shift", "only a flow-matching model"),
        (specs.GRID, GRID, "seed_variance", 2, "seed_variance", "Seed variance: must be 0"),
    ],
)
def test_validators_mark_the_refused_input_with_the_plans_message(
    engine: Engine,
    spec: specs.TabSpec,
    values: tuple,
    name: str,
    value: Any,
    marked: str,
    words: str,
) -> None:
    verdicts = validate(engine, spec, with_value(values, spec.inputs, name, value))
    refused = [(spec.inputs[i], v["message"]) for i, v in enumerate(verdicts) if not v["is_valid"]]
    assert len(refused) == 1
    assert refused[0][0] == marked
    assert words in refused[0][1]


def test_the_states_a_button_also_passes_are_left_alone(engine: Engine) -> None:
    manifest, pinned = object(), None
    verdicts = validate(engine, specs.REFINE, REFINE, manifest=manifest, pin=pinned)
    assert [v["is_valid"] for v in verdicts] == [True] * (len(REFINE) + 2)
    bad = with_value(REFINE, specs.REFINE.inputs, "seed", "")
    verdicts = validate(engine, specs.REFINE, bad, manifest=manifest, pin=pinned)
    assert [v["is_valid"] for v in verdicts] == [True, True, False] + [True] * (len(REFINE) - 1)


def test_a_refusal_no_input_is_named_after_marks_the_first_input() -> None:
    verdicts = validation.verdict(("prompt", "seeds"), RequestError("Model", "is busy"))
    assert [(v["is_valid"], v["message"]) for v in verdicts] == [
        (False, "Model: is busy"),
        (True, ""),
    ]


# Through the API. Sliders, number fields and dropdowns may refuse a value in Gradio itself
# before any check of ours runs; their message names the value and the bound, not the field.


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def refusal(client: Client, api_name: str, bad: dict) -> str:
    """The message of a refused call (raised by a handler, or by a validator before the queue)."""
    started = time.monotonic()
    with pytest.raises((AppError, ValidationError)) as caught:
        client.predict(**{**GOOD[api_name], **bad}, api_name=api_name)
    assert time.monotonic() - started < 20
    return str(caught.value)


# One refusal per tab and kind of input: that a user of the API gets the plan's message.
BAD_CALLS = [
    ("/grid", {"steps": 9999}, "Steps: must be a whole number 1..150, got 9999"),
    (
        "/grid",
        {"seeds": "0-15", "width": 1024, "height": 1024},
        "Size: 16 tiles at 1024x1024 is 16,777,216 pixels, over the 4,718,592 one run may render",
    ),
    ("/refine", {"seed": "abc"}, f"Pinned seed: must be one whole number 0..{MAX_SEED}"),
    ("/refine", {"suffixes": "\n \n"}, "Suffixes: write at least one suffix, one per line"),
    ("/compare", {"schedulers": ["Euler", "Euler"]}, "Schedulers: Euler is chosen twice"),
    ("/compare", {"scheduler_steps": "Euler: 0"}, "Steps for Euler: must be at least 1"),
]

# Good values for everything but the field under test; steps stay few in case one runs.
GOOD = {
    "/grid": {"prompt": "a kite", "seeds": "0-3", "steps": 2},
    "/refine": {"prompt": "a kite", "seed": "8", "steps": 2},
    "/compare": {"prompt": "a kite", "seed": "8", "schedulers": ["Euler", "DDIM"], "steps": 2},
}


@pytest.mark.parametrize(
    ("api_name", "bad", "message"),
    [pytest.param(*call, id=f"{call[0]}-{'-'.join(call[1])}") for call in BAD_CALLS],
)
def test_a_bad_call_is_refused_with_a_message_naming_the_field(
    client: Client, api_name: str, bad: dict, message: str
) -> None:
    text = refusal(client, api_name, bad)
    assert message in text, text


@pytest.mark.parametrize(
    ("guidance", "message"),
    [
        ("NaN", "Guidance scale: must be 0..30.0, got nan"),
        (
            "Infinity",
            "Guidance scale: must be 0..30.0, got inf",
        ),
    ],
)
def test_guidance_that_is_not_a_number_is_refused(
    app_url: str, guidance: str, message: str
) -> None:
    # JSON has no NaN, so gradio_client cannot send one; Python's JSON parser reads it.
    body = f'{{"data": ["a kite", "", "1", "DDIM", 2, {guidance}, 64, 64, 1, 0, 0]}}'
    started = time.monotonic()
    joined = httpx.post(
        f"{app_url}gradio_api/call/grid",
        content=body,
        headers={"content-type": "application/json"},
        timeout=20,
    )
    if joined.status_code == 200:  # the handler refuses it in the queue
        event = joined.json()["event_id"]
        text = httpx.get(f"{app_url}gradio_api/call/grid/{event}", timeout=20).text
        assert "event: error" in text
    else:  # a validator or the slider refuses it before the queue
        assert joined.status_code in (400, 422)
        text = joined.text
    assert time.monotonic() - started < 20
    assert message in text, text


def pixels(tile: dict) -> np.ndarray:
    with Image.open(Path(tile["image"])) as image:
        return np.asarray(image.convert("RGB"))


def test_after_bad_calls_the_app_serves_and_reproduces_a_seed(client: Client) -> None:
    first, _ = client.predict(prompt="a kite", seeds="3, 5", steps=2, api_name="/grid")
    refusal(client, "/refine", {"seed": ""})
    again, _ = client.predict(prompt="a kite", seeds="3, 5", steps=2, api_name="/grid")
    assert [t["caption"] for t in again] == ["seed 3", "seed 5"]
    for one, other in zip(first, again, strict=True):
        assert np.array_equal(pixels(one), pixels(other))


def test_a_prompt_longer_than_clips_77_tokens_still_renders(client: Client) -> None:
    prompt = " ".join(["a lighthouse on a cliff at dusk, waves, gulls, warm light"] * 20)
    gallery, summary = client.predict(prompt=prompt, seeds="1", steps=2, api_name="/grid")
    assert [t["caption"] for t in gallery] == ["seed 1"]
    assert summary.startswith("1 tiles")


def test_a_browsers_precheck_raises_the_validators_refusal_as_a_toast(engine: Engine) -> None:
    toast = validation.as_toast(validation.validator(engine, specs.GRID), engine.limits)
    toast(**named(specs.GRID, GRID))  # good input passes
    with pytest.raises(gr.Error, match=r"Guidance scale: must be 0\.\.30\.0, got 31"):
        toast(**named(specs.GRID, with_value(GRID, specs.GRID.inputs, "guidance_scale", 31)))
