"""Each tab's declaration: its API inputs are its request's fields, its captions say what a
tile is; and the layers keep to themselves."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import gradio as gr
import pytest

from pipeline.engine import Engine
from pipeline.requests import CompareRequest, GridRequest, RefineRequest
from ui import tabs
from ui.runner import Services
from ui.tiles import summary

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", list(tabs.SPECS.values()), ids=list(tabs.SPECS))
def test_a_tabs_api_is_its_declared_inputs_and_they_make_its_request(spec: tabs.TabSpec) -> None:
    fields = {field.name for field in dataclasses.fields(spec.request)}
    assert set(spec.inputs) <= fields
    parameters = list(inspect.signature(tabs.handler(Services(None), spec)).parameters)
    assert parameters == [*spec.inputs, "manifest", "pinned", "variation", "request"]
    request = spec.request_of([f"<{name}>" for name in spec.inputs])
    assert all(getattr(request, name) == f"<{name}>" for name in spec.inputs)


def test_captions_say_seed_suffix_and_scheduler(engine: Engine) -> None:
    grid = engine.run(GridRequest("a boat", "5", steps=2))
    assert tabs.GRID.caption(grid[0]) == "seed 5"
    refined = engine.run(RefineRequest("a boat", 8, ", artsy\n\n, colorful\n", steps=2))
    assert [tabs.REFINE.caption(t) for t in refined] == ["artsy · seed 8", "colorful · seed 8"]
    request = CompareRequest("a boat", 8, ["Euler", "DDIM"], scheduler_steps="Euler: 3\nDDIM: 2")
    compared = engine.run(request)
    captions = [tabs.COMPARE.caption(t) for t in compared]
    assert captions[0].startswith("Euler · 3 steps · ") and captions[0].endswith(" s")
    assert captions[1].startswith("DDIM · 2 steps · ")
    # One lockstep call: each tile has its share, and the summary adds the shares up.
    assert compared[0].seconds == pytest.approx(compared[1].seconds * 3 / 2)
    total = compared[0].seconds + compared[1].seconds
    assert summary(compared).endswith(f"· {total:.1f} s")
    plan = engine.plan(request)
    assert [tabs.COMPARE.label(plan, i) for i in range(plan.tiles)] == ["Euler", "DDIM"]


def test_a_handler_refuses_a_bad_request_with_a_toast_naming_the_field(engine: Engine) -> None:
    handler = tabs.handler(Services(engine), tabs.REFINE)
    values = ["a", "", "", ", x", None, 2, None, None, None]
    with pytest.raises(gr.Error, match="Pinned seed: no seed pinned yet"):
        handler(*values, None, None, None, None)  # as Gradio calls it: values, states, request


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
