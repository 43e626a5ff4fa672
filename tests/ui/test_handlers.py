"""The handlers without a server: UI values in, gallery items and clear errors out."""

import ast
from pathlib import Path

import gradio as gr
import pytest

from pipeline.engine import Engine
from pipeline.seeds import MAX_SEED
from ui import handlers
from ui.state import TileRef

ROOT = Path(__file__).resolve().parents[2]
ARGS = ("", "Euler", 4, 7.5, 64, 64)  # negative prompt, scheduler, steps, guidance, width, height


def test_grid_gives_tiles_captioned_with_their_seeds(engine: Engine) -> None:
    items, refs, summary = handlers.run_grid(engine, "a boat", "", "5, 17, 3", *ARGS[1:])
    assert [caption for _, caption in items] == ["seed 5", "seed 17", "seed 3"]
    assert refs == [TileRef(5, "a boat"), TileRef(17, "a boat"), TileRef(3, "a boat")]
    assert summary.startswith("3 tiles · seeds 5, 17, 3 · 64x64")


def test_random_shows_the_seeds_it_drew(engine: Engine) -> None:
    items, refs, summary = handlers.run_grid(engine, "a boat", "", "random 2", *ARGS[1:])
    drawn = [ref.seed for ref in refs]
    assert [caption for _, caption in items] == [f"seed {seed}" for seed in drawn]
    assert "-1" not in summary and str(drawn[0]) in summary


def test_refine_captions_carry_the_suffix(engine: Engine) -> None:
    items, refs, _ = handlers.run_refine(
        engine, "a boat", "", "8", ", artsy\n\n, colorful\n", *ARGS[1:]
    )
    assert [caption for _, caption in items] == ["artsy · seed 8", "colorful · seed 8"]
    assert [ref.prompt for ref in refs] == ["a boat, artsy", "a boat, colorful"]


def test_compare_captions_carry_scheduler_steps_and_time(engine: Engine) -> None:
    items, refs, _ = handlers.run_compare(
        engine, "a boat", "", "8", ["Euler", "DDIM"], 0, 7.5, 64, 64, "Euler: 3\nDDIM: 2"
    )
    captions = [caption for _, caption in items]
    assert captions[0].startswith("Euler · 3 steps · ") and captions[0].endswith(" s")
    assert captions[1].startswith("DDIM · 2 steps · ")
    assert {ref.seed for ref in refs} == {8}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda e: handlers.run_grid(e, "a boat", "", "0-x", *ARGS[1:]), "Seeds"),
        (lambda e: handlers.run_grid(e, "a boat", "", "0-99", *ARGS[1:]), "Seeds"),
        (lambda e: handlers.run_grid(e, "", "", "0-3", *ARGS[1:]), "Prompt"),
        (lambda e: handlers.run_grid(e, "a", "", "1", "Euler", 2.5, 7.5, 64, 64), "Steps"),
        (lambda e: handlers.run_grid(e, "a", "", "1", "Euler", "abc", 7.5, 64, 64), "Steps"),
        (lambda e: handlers.run_grid(e, "a", "", "1", "Euler", 4, 7.5, 60, 64), "Width"),
        (lambda e: handlers.run_grid(e, "a", "", "1", "Nope", 4, 7.5, 64, 64), "Scheduler"),
        (lambda e: handlers.run_refine(e, "a", "", "", ", x", *ARGS[1:]), "Pinned seed"),
        (lambda e: handlers.run_refine(e, "a", "", "1, 2", ", x", *ARGS[1:]), "Pinned seed"),
        (lambda e: handlers.run_refine(e, "a", "", "8", "\n \n", *ARGS[1:]), "Suffixes"),
        (lambda e: handlers.run_compare(e, "a", "", "8", [], 0, 7.5, 64, 64), "Schedulers"),
        (
            lambda e: handlers.run_compare(e, "a", "", "8", ["Euler"], 0, 7.5, 64, 64, "Euler"),
            "Steps per scheduler",
        ),
    ],
)
def test_bad_input_is_a_toast_naming_the_field(engine: Engine, call, field: str) -> None:
    with pytest.raises(gr.Error) as caught:
        call(engine)
    assert caught.value.message.startswith(f"{field}:")


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


def test_clicking_a_tile_pins_its_seed() -> None:
    shown = [TileRef(5, "a"), TileRef(17, "a")]
    assert handlers.pin(shown, 1) == "17"


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
