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
from ui import validation

GRID = ("a kite", "", "0-3", "DDIM", 20, 7.5, 768, 768)
REFINE = ("a kite", "", "8", ", artsy\n, trending", "DDIM", 20, 7.5, 64, 64)
COMPARE = ("a kite", "", "8", ["Euler", "DDIM"], 0, 7.5, 64, 64, "Euler: 30\nDDIM: 50")
LONG = "x" * 2001


def with_value(values: tuple, inputs: tuple[str, ...], name: str, value: Any) -> tuple:
    return tuple(value if key == name else old for key, old in zip(inputs, values, strict=True))


def test_validators_pass_good_input(engine: Engine) -> None:
    for make, values, inputs in [
        (validation.grid_validator, GRID, validation.GRID_INPUTS),
        (validation.refine_validator, REFINE, validation.REFINE_INPUTS),
        (validation.compare_validator, COMPARE, validation.COMPARE_INPUTS),
    ]:
        verdicts = make(engine)(*values)
        assert [v["__type__"] for v in verdicts] == ["validate"] * len(inputs)
        assert all(v["is_valid"] for v in verdicts)


TABS = {
    "grid": (validation.grid_validator, GRID, validation.GRID_INPUTS),
    "refine": (validation.refine_validator, REFINE, validation.REFINE_INPUTS),
    "compare": (validation.compare_validator, COMPARE, validation.COMPARE_INPUTS),
}


@pytest.mark.parametrize(
    ("tab", "name", "value", "marked", "words"),
    [
        ("grid", "prompt", "  ", "prompt", "Prompt: type what to render"),
        ("grid", "prompt", None, "prompt", "Prompt: type what to render"),
        ("grid", "prompt", LONG, "prompt", "Prompt: 2001 characters is over the 2000 limit"),
        ("grid", "negative_prompt", LONG, "negative_prompt", "Negative prompt: 2001"),
        ("grid", "seeds", "0-x", "seeds", "Seeds: cannot read '0-x'"),
        ("grid", "seeds", "0-16", "seeds", "Seeds: 17 seeds is more than the 16"),
        ("grid", "seeds", "9" * 5000, "seeds", "Seeds: seed 999999999999... (5000 digits)"),
        ("grid", "scheduler", "Eulr", "scheduler", "Scheduler: unknown scheduler 'Eulr'"),
        ("grid", "steps", 151, "steps", "Steps: must be a whole number 1..150, got 151"),
        ("grid", "steps", 2.5, "steps", "Steps: must be a whole number, got 2.5"),
        (
            "grid",
            "guidance_scale",
            float("nan"),
            "guidance_scale",
            "Guidance scale: must be 0..30.0, got nan",
        ),
        ("grid", "guidance_scale", 31, "guidance_scale", "must be 0..30.0, got 31"),
        ("grid", "width", 100, "width", "Width: must be a multiple of 8 from 8 to 1536"),
        ("grid", "height", 1600, "height", "Height: must be a multiple of 8 from 8 to 1536"),
        ("grid", "seeds", "0-8", "width", "Size: 9 tiles at 768x768 is 5,308,416 pixels"),
        ("refine", "seed", "", "seed", "Pinned seed: no seed pinned yet"),
        ("refine", "seed", "1, 2", "seed", f"Pinned seed: must be one whole number 0..{MAX_SEED}"),
        ("refine", "suffixes", "\n \n", "suffixes", "Suffixes: write at least one suffix"),
        ("refine", "suffixes", "x\n" * 17, "suffixes", "Suffixes: 17 tiles is more than the 16"),
        ("refine", "prompt", "x" * 1995, "prompt", "Prompt: 2002 characters is over the 2000"),
        ("compare", "schedulers", [], "schedulers", "Schedulers: is empty: give 1 to 16"),
        ("compare", "schedulers", ["Euler", "Euler"], "schedulers", "Euler is chosen twice"),
        ("compare", "schedulers", ["Eulr"], "schedulers", "Schedulers: unknown scheduler"),
        ("compare", "steps", 151, "steps", "Steps: must be a whole number 1..150"),
        ("compare", "scheduler_steps", "Euler 40", "scheduler_steps", "write 'Name: steps'"),
        ("compare", "scheduler_steps", "Euler: 0", "scheduler_steps", "Steps for Euler: must"),
        ("compare", "scheduler_steps", "Euler: 151", "scheduler_steps", "1..150, got 151"),
        ("compare", "scheduler_steps", "Eulr: 9", "scheduler_steps", "Steps per scheduler: "),
    ],
)
def test_validators_mark_the_refused_input_with_the_engines_message(
    engine: Engine, tab: str, name: str, value: Any, marked: str, words: str
) -> None:
    make, values, inputs = TABS[tab]
    verdicts = make(engine)(*with_value(values, inputs, name, value))
    refused = [(inputs[i], v["message"]) for i, v in enumerate(verdicts) if not v["is_valid"]]
    assert len(refused) == 1
    assert refused[0][0] == marked
    assert words in refused[0][1]


def test_the_states_a_button_also_passes_are_left_alone(engine: Engine) -> None:
    manifest, pinned = object(), None
    verdicts = validation.refine_validator(engine)(*REFINE, manifest, pinned)
    assert [v["is_valid"] for v in verdicts] == [True] * (len(REFINE) + 2)
    bad = with_value(REFINE, validation.REFINE_INPUTS, "seed", "")
    verdicts = validation.refine_validator(engine)(*bad, manifest, pinned)
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


BAD_CALLS = [
    ("/grid", {"prompt": None}, "Prompt: type what to render"),
    ("/grid", {"prompt": "  "}, "Prompt: type what to render"),
    ("/grid", {"prompt": LONG}, "Prompt: 2001 characters is over the 2000 limit"),
    ("/grid", {"negative_prompt": LONG}, "Negative prompt: 2001 characters is over the 2000"),
    ("/grid", {"seeds": ""}, "Seeds: the seed list is empty"),
    ("/grid", {"seeds": "0-x"}, "Seeds: cannot read '0-x'"),
    ("/grid", {"seeds": "1,,2"}, "Seeds: empty entry"),
    ("/grid", {"seeds": "-5"}, f"Seeds: seed -5 is negative: seeds are 0..{MAX_SEED}"),
    ("/grid", {"seeds": "0-99"}, "Seeds: 100 seeds is more than the 16 tiles"),
    ("/grid", {"seeds": str(MAX_SEED + 1)}, f"Seeds: seed {MAX_SEED + 1} is outside"),
    ("/grid", {"seeds": "9" * 5000}, "Seeds: seed 999999999999... (5000 digits) is outside"),
    (
        "/grid",
        {"steps": 9999},
        "Steps: must be a whole number 1..150, got 9999",
    ),
    (
        "/grid",
        {"steps": -1},
        "Steps: must be a whole number 1..150, got -1",
    ),
    (
        "/grid",
        {"guidance_scale": -1},
        "Guidance scale: must be 0..30.0, got -1",
    ),
    (
        "/grid",
        {"guidance_scale": 99},
        "Guidance scale: must be 0..30.0, got 99",
    ),
    ("/grid", {"width": 100}, "Width: must be a multiple of 8 from 8 to 1536, got 100"),
    ("/grid", {"height": 65}, "Height: must be a multiple of 8 from 8 to 1536, got 65"),
    (
        "/grid",
        {"width": 4096},
        "Width: must be a multiple of 8 from 8 to 1536, got 4096",
    ),
    (
        "/grid",
        {"height": -64},
        "Height: must be a multiple of 8 from 8 to 1536, got -64",
    ),
    (
        "/grid",
        {"seeds": "0-15", "width": 1024, "height": 1024},
        "Size: 16 tiles at 1024x1024 is 16,777,216 pixels, over the 4,718,592 one run may render",
    ),
    (
        "/grid",
        {"scheduler": "Eulr"},
        "Scheduler: unknown scheduler 'Eulr'",
    ),
    ("/refine", {"seed": ""}, "Pinned seed: no seed pinned yet"),
    ("/refine", {"seed": "abc"}, f"Pinned seed: must be one whole number 0..{MAX_SEED}"),
    ("/refine", {"seed": str(MAX_SEED + 1)}, f"Pinned seed: seed {MAX_SEED + 1} is outside"),
    ("/refine", {"suffixes": "\n \n"}, "Suffixes: write at least one suffix, one per line"),
    ("/refine", {"suffixes": "x\n" * 17}, "Suffixes: 17 tiles is more than the 16"),
    ("/refine", {"prompt": "x" * 1990}, "Prompt: 2008 characters is over the 2000 limit"),
    (
        "/refine",
        {"suffixes": "x\n" * 9, "width": 768, "height": 768},
        "Size: 9 tiles at 768x768 is 5,308,416 pixels, over the 4,718,592",
    ),
    ("/compare", {"seed": ""}, "Pinned seed: no seed pinned yet"),
    ("/compare", {"schedulers": []}, "Schedulers: is empty: give 1 to 16"),
    ("/compare", {"schedulers": ["Euler", "Euler"]}, "Schedulers: Euler is chosen twice"),
    (
        "/compare",
        {"schedulers": ["Eulr"]},
        "Schedulers: unknown scheduler 'Eulr'",
    ),
    (
        "/compare",
        {"steps": 999},
        "Steps: must be a whole number 1..150, got 999",
    ),
    ("/compare", {"scheduler_steps": "Euler 40"}, "Steps per scheduler: write 'Name: steps'"),
    ("/compare", {"scheduler_steps": "Euler: 0"}, "Steps for Euler: must be at least 1"),
    ("/compare", {"scheduler_steps": "Euler: 151"}, "Steps for Euler: must be a whole number"),
    ("/compare", {"scheduler_steps": "Eulr: 9"}, "Steps per scheduler: unknown scheduler"),
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
    body = f'{{"data": ["a kite", "", "1", "DDIM", 2, {guidance}, 64, 64]}}'
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
    refusal(client, "/grid", {"seeds": "0-x"})
    refusal(client, "/refine", {"seed": ""})
    refusal(client, "/compare", {"schedulers": ["Euler", "Euler"]})
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
    validate = validation.grid_validator(engine)
    toast = validation.as_toast(validate)
    toast(*GRID)  # good input passes
    with pytest.raises(gr.Error, match="Seeds: cannot read '0-x'"):
        toast(*with_value(GRID, validation.GRID_INPUTS, "seeds", "0-x"))
