"""Reproduce's "Load a recipe", called as Gradio calls it: the upload event of the built app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.state_holder import SessionState

from pipeline.engine import Engine
from tests.conftest import a1111_png
from ui.demo import build_demo

A1111_TEXT = (
    "a lighthouse at dusk, oil painting\n"
    "Negative prompt: blurry, text\n"
    "Steps: 7, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 1234, "
    "Size: 64x128, Model hash: 0123456789, Model: other-model, Version: v1.10.1"
)


def event_of(demo: gr.Blocks, elem_id: str, event: str) -> int:
    """The fn_index of `event` on the component with `elem_id`, as the page's config has it."""
    ids = {block._id for block in demo.blocks.values() if block.elem_id == elem_id}
    for index, fn in demo.fns.items():
        if any(target in ids and name == event for target, name in fn.targets):
            return index
    raise LookupError(f"no {event} event on #{elem_id}")


def upload(demo: gr.Blocks, elem_id: str, path: Path) -> list[Any]:
    """What the page receives after dropping `path` on the File component `elem_id`."""
    payload = {"path": str(path), "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}
    request = gr.Request(session_hash="reproduce-test")
    output = asyncio.run(
        demo.process_api(
            block_fn=event_of(demo, elem_id, "upload"),
            inputs=[payload],
            state=SessionState(demo),
            request=request,
            session_hash="reproduce-test",
        )
    )
    return output["data"]


def test_an_a1111_png_fills_prompt_settings_and_pins_its_seed(
    engine: Engine, tmp_path: Path
) -> None:
    png = a1111_png(tmp_path / "a1111.png", A1111_TEXT, (64, 128))
    demo = build_demo(engine)
    data = upload(demo, "recipe-file", png)
    prompt, negative, scheduler, steps, guidance, width, height = data[:7]
    seed, pinned = data[10:12]  # after True CFG, Shift and Seed variance (flow families only)
    assert (prompt, negative) == ("a lighthouse at dusk, oil painting", "blurry, text")
    assert (scheduler, steps, guidance, width, height) == ("DPM++ 2M Karras", 7, 5.5, 64, 128)
    assert seed == "1234"
    assert pinned is None  # an A1111 image has no recipe to verify
    assert data[-1].startswith("Loaded the AUTOMATIC1111 parameters")
