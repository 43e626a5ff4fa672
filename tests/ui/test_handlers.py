"""The handlers without a server: UI values in, gallery items and clear errors out."""

import ast
from pathlib import Path

import gradio as gr
import pytest

from pipeline.engine import Engine
from pipeline.requests import RequestError
from pipeline.seeds import MAX_SEED
from ui import handlers

ROOT = Path(__file__).resolve().parents[2]
ARGS = ("", "Euler", 4, 7.5, 64, 64)  # negative prompt, scheduler, steps, guidance, width, height


def test_a_grid_request_reads_the_seed_list(engine: Engine) -> None:
    request = handlers.grid_request(engine, "a boat", "", "5, 17, 3", *ARGS[1:])
    assert request.seeds == (5, 17, 3)
    assert request.settings.steps == 4 and request.settings.width == 64


def test_random_draws_the_seeds_once(engine: Engine) -> None:
    request = handlers.grid_request(engine, "a boat", "", "random 2", *ARGS[1:])
    assert len(request.seeds) == 2 and all(0 <= seed < 2**32 for seed in request.seeds)


def test_captions_say_seed_suffix_and_scheduler(engine: Engine) -> None:
    grid = engine.grid(handlers.grid_request(engine, "a boat", "", "5", *ARGS[1:]))
    assert handlers.grid_caption(grid[0]) == "seed 5"
    refine = handlers.refine_request("a boat", "", "8", ", artsy\n\n, colorful\n", *ARGS[1:])
    assert refine.suffixes == (", artsy", ", colorful")
    tiles = engine.refine(refine)
    assert [handlers.refine_caption(t) for t in tiles] == ["artsy · seed 8", "colorful · seed 8"]
    compare = handlers.compare_request(
        "a boat", "", "8", ["Euler", "DDIM"], 0, 7.5, 64, 64, "Euler: 3\nDDIM: 2"
    )
    compared = engine.compare(compare)
    captions = [handlers.compare_caption(t) for t in compared]
    assert captions[0].startswith("Euler · 3 steps · ") and captions[0].endswith(" s")
    assert captions[1].startswith("DDIM · 2 steps · ")
    # One lockstep call: each tile has its share, and the summary adds the shares up.
    assert compared[0].seconds == pytest.approx(compared[1].seconds * 3 / 2)
    total = compared[0].seconds + compared[1].seconds
    assert handlers.summary(compared).endswith(f"· {total:.1f} s")


def grid(engine: Engine, *values: object) -> list:
    return engine.grid(handlers.grid_request(engine, *values))


def refine(engine: Engine, *values: object) -> list:
    return engine.refine(handlers.refine_request(*values))


def compare(engine: Engine, *values: object) -> list:
    return engine.compare(handlers.compare_request(*values))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda e: grid(e, "a boat", "", "0-x", *ARGS[1:]), "Seeds"),
        (lambda e: grid(e, "a boat", "", "0-99", *ARGS[1:]), "Seeds"),
        (lambda e: grid(e, "", "", "0-3", *ARGS[1:]), "Prompt"),
        (lambda e: grid(e, "a", "", "1", "Euler", 2.5, 7.5, 64, 64), "Steps"),
        (lambda e: grid(e, "a", "", "1", "Euler", "abc", 7.5, 64, 64), "Steps"),
        (lambda e: grid(e, "a", "", "1", "Euler", 4, 7.5, 60, 64), "Width"),
        (lambda e: grid(e, "a", "", "1", "Nope", 4, 7.5, 64, 64), "Scheduler"),
        (lambda e: refine(e, "a", "", "", ", x", *ARGS[1:]), "Pinned seed"),
        (lambda e: refine(e, "a", "", "1, 2", ", x", *ARGS[1:]), "Pinned seed"),
        (lambda e: refine(e, "a", "", "8", "\n \n", *ARGS[1:]), "Suffixes"),
        (lambda e: compare(e, "a", "", "8", [], 0, 7.5, 64, 64), "Schedulers"),
        (
            lambda e: compare(e, "a", "", "8", ["Euler"], 0, 7.5, 64, 64, "Euler"),
            "Steps per scheduler",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(engine: Engine, call, field: str) -> None:
    """Refused while the UI values are read (a toast) or by the engine (made a toast by the
    runner, see test_runner.py)."""
    with pytest.raises((gr.Error, RequestError)) as caught:
        call(engine)
    message = getattr(caught.value, "message", None) or str(caught.value)
    assert message.startswith(f"{field}:")


@pytest.mark.parametrize(
    ("value", "seed"), [("42", 42), (" 42 ", 42), (42, 42), (42.0, 42), (str(MAX_SEED), MAX_SEED)]
)
def test_pinned_seed_reads_one_whole_number(value: object, seed: int) -> None:
    assert handlers.pinned_seed(value) == seed


@pytest.mark.parametrize("value", ["", None, "abc", "1, 2", "-1", "4.5", str(MAX_SEED + 1)])
def test_pinned_seed_refuses_anything_else(value: object) -> None:
    with pytest.raises(ValueError, match="Pinned seed"):
        handlers.pinned_seed(value)


def test_suffixes_are_kept_as_typed_one_per_line() -> None:
    assert handlers.parse_suffixes(", a\n\n  , b c  \n") == (", a", "  , b c  ")


def test_steps_table_keeps_what_the_user_typed(engine: Engine) -> None:
    text = handlers.scheduler_steps_text(engine, ["Euler", "DDIM"], "Euler: 12\nPNDM: 9")
    assert text == "Euler: 12\nDDIM: 50"
    assert handlers.parse_scheduler_steps(text) == (("Euler", 12), ("DDIM", 50))


@pytest.mark.parametrize(("value", "number"), [(20.0, 20), ("20", 20), ("", None), (0, None)])
def test_whole_numbers_from_sliders_and_api_clients(value: object, number: int | None) -> None:
    assert handlers.whole_number("Steps", value) == number


def imported_modules(folder: str) -> set[str]:
    names = set()
    for path in (ROOT / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_the_ui_imports_no_torch_and_the_pipeline_no_gradio() -> None:
    assert not imported_modules("ui") & {"torch", "diffusers", "transformers"}
    assert "gradio" not in imported_modules("pipeline")
