"""Each tab's declaration: its inputs are its request's fields, its captions say what a tile
is; and the layers keep to themselves."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from pipeline.engine import Engine
from pipeline.requests import CompareRequest, GridRequest, MatrixRequest, RefineRequest
from ui import specs
from ui.demo import build_demo
from ui.runner import summary

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", list(specs.SPECS.values()), ids=list(specs.SPECS))
def test_a_tabs_inputs_are_fields_of_its_request_and_make_it(spec: specs.TabSpec) -> None:
    fields = {field.name for field in dataclasses.fields(spec.request)}
    assert set(spec.inputs) <= fields
    request = spec.request_of({name: f"<{name}>" for name in spec.inputs})
    assert all(getattr(request, name) == f"<{name}>" for name in spec.inputs)


def test_captions_say_seed_suffix_and_scheduler(engine: Engine) -> None:
    grid = engine.run(GridRequest("a boat", "5", steps=2))
    assert specs.GRID.caption(grid[0]) == "seed 5"
    refined = engine.run(RefineRequest("a boat", 8, ", artsy\n\n, colorful\n", steps=2))
    assert [specs.REFINE.caption(t) for t in refined] == ["artsy · seed 8", "colorful · seed 8"]
    request = CompareRequest("a boat", 8, ["Euler", "DDIM"], scheduler_steps="Euler: 3\nDDIM: 2")
    compared = engine.run(request)
    captions = [specs.COMPARE.caption(t) for t in compared]
    assert captions[0].startswith("Euler · 3 steps · ") and captions[0].endswith(" s")
    assert captions[1].startswith("DDIM · 2 steps · ")
    # One lockstep call: each tile has its share, and the summary adds the shares up.
    assert compared[0].seconds == pytest.approx(compared[1].seconds * 3 / 2)
    total = compared[0].seconds + compared[1].seconds
    assert summary(compared).endswith(f"· {total:.1f} s")
    plan = engine.plan(request)
    assert [specs.COMPARE.label(plan, i) for i in range(plan.tiles)] == ["Euler", "DDIM"]


def test_a_summary_gives_a_setting_that_varies_as_its_range(engine: Engine) -> None:
    request = MatrixRequest("a boat", 3, "CFG scale", "4, 7", "Seed", "3", steps=2)
    line = summary(engine.run(request))
    assert "CFG 4 to 7" in line and "CFG 4 ·" not in line


def test_a_summary_names_flux_devs_guidance_distilled_cfg(flux: Engine) -> None:
    line = summary(flux.run(GridRequest("a pear", "1", steps=2, width=32, height=32)))
    assert "· Distilled CFG 3.5 ·" in line


def box(page: Engine | gr.Blocks, elem_id: str) -> Any:
    """The component with this element id on a page (or the page built around an engine)."""
    demo = build_demo(page, previews=False) if isinstance(page, Engine) else page
    (found,) = [block for block in demo.blocks.values() if block.elem_id == elem_id]
    return found


def test_the_guidance_box_is_distilled_cfg_for_flux_dev_and_cfg_for_stable_diffusion(
    engine: Engine, flux: Engine
) -> None:
    assert box(flux, "guidance-scale").label == "Distilled CFG"
    assert box(engine, "guidance-scale").label == "Guidance scale (CFG)"


def test_true_cfg_shift_and_seed_variance_are_shown_for_flux_and_not_for_stable_diffusion(
    engine: Engine, flux: Engine
) -> None:
    flux_page = build_demo(flux, previews=False)
    sd_page = build_demo(engine, previews=False)
    for elem_id in ("true-cfg-scale", "shift", "seed-variance"):
        assert box(flux_page, elem_id).visible is True
        assert box(sd_page, elem_id).visible is False


def imports(path: Path) -> set[str]:
    """The modules a file imports, by their full dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def imported_roots(folder: str) -> set[str]:
    return {name.split(".")[0] for path in (ROOT / folder).glob("*.py") for name in imports(path)}


def test_the_ui_imports_no_torch_and_the_pipeline_no_gradio() -> None:
    assert not imported_roots("ui") & {"torch", "diffusers", "transformers"}
    assert "gradio" not in imported_roots("pipeline")


def test_the_ui_uses_the_engines_facade_only() -> None:
    for path in (ROOT / "ui").glob("*.py"):
        text = path.read_text()
        assert ".model." not in text and ".planner." not in text, path.name


def test_the_tab_declarations_import_only_the_pipeline() -> None:
    roots = {name.split(".")[0] for name in imports(ROOT / "ui" / "specs.py")}
    assert roots <= {"__future__", "collections", "dataclasses", "typing", "pipeline"}


def test_the_ui_modules_import_each_other_in_one_direction() -> None:
    modules = {path.stem: path for path in (ROOT / "ui").glob("*.py") if path.stem != "__init__"}
    uses = {
        name: {m.split(".")[1] for m in imports(path) if m.startswith("ui.")} & modules.keys()
        for name, path in modules.items()
    }

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(
            used == target or (used not in seen and reaches(used, target, seen | {used}))
            for used in uses[start]
        )

    assert [name for name in modules if reaches(name, name, set())] == []
