"""Compare: the pinned seed across schedulers, side by side, each at its own step count."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipeline.engine import Engine
from pipeline.schedulers import DEFAULT_COMPARE
from ui import handlers
from ui.shared import MODEL_QUEUE, SharedInputs, tile_gallery
from ui.state import TileRef


def build(engine: Engine, shared: SharedInputs) -> None:
    offered = engine.registry.names
    chosen = [name for name in DEFAULT_COMPARE if name in offered]
    with gr.Tab("Compare", id="compare"):
        with gr.Row(equal_height=True):
            schedulers = gr.Dropdown(
                offered,
                value=chosen,
                multiselect=True,
                label="Schedulers",
                elem_id="compare-schedulers",
                scale=4,
            )
            run = gr.Button("Compare", variant="primary", elem_id="compare-run", scale=1)
        with gr.Row():
            scheduler_steps = gr.Textbox(
                handlers.scheduler_steps_text(engine, chosen),
                label="Steps per scheduler",
                elem_id="compare-scheduler-steps",
                info="Each scheduler's own sensible default; edit any line.",
                lines=3,
                max_lines=12,
                scale=3,
            )
            steps = gr.Number(
                0,
                label="Steps for all",
                elem_id="compare-steps",
                info="0 = each scheduler's own steps",
                precision=0,
                minimum=0,
                maximum=engine.limits.max_steps,
                scale=1,
            )
        gallery = tile_gallery("Schedulers", "compare-gallery", columns=6)
        status = gr.Markdown(label="Summary", elem_id="compare-status")
        tiles = gr.State([])

    def compare(
        prompt: str,
        negative_prompt: str,
        seed: str,
        schedulers: list[str],
        steps: float,
        guidance_scale: float,
        width: float,
        height: float,
        scheduler_steps: str,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, list[TileRef], str]:
        return handlers.run_compare(
            engine,
            prompt,
            negative_prompt,
            seed,
            schedulers,
            steps,
            guidance_scale,
            width,
            height,
            scheduler_steps,
            progress,
        )

    def pin_tile(shown: list[TileRef], evt: gr.SelectData) -> str:
        return handlers.pin(shown, evt.index)

    run.click(
        compare,
        [
            shared.prompt,
            shared.negative_prompt,
            shared.pinned_seed,
            schedulers,
            steps,
            shared.guidance_scale,
            shared.width,
            shared.height,
            scheduler_steps,
        ],
        [gallery, tiles, status],
        api_name="compare",
        concurrency_id=MODEL_QUEUE,
    )
    gallery.select(pin_tile, tiles, shared.pinned_seed, queue=False, api_visibility="private")
    schedulers.change(
        lambda names, current: handlers.scheduler_steps_text(engine, names, current),
        [schedulers, scheduler_steps],
        scheduler_steps,
        queue=False,
        api_visibility="private",
    )
