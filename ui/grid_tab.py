"""Grid: one prompt, one tile per seed; click a tile to pin its seed."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipeline.engine import Engine
from pipeline.seeds import random_seeds
from ui import handlers
from ui.shared import MODEL_QUEUE, SharedInputs, tile_gallery
from ui.state import TileRef


def build(engine: Engine, shared: SharedInputs) -> None:
    max_tiles = engine.limits.max_tiles
    with gr.Tab("Grid", id="grid"):
        with gr.Row(equal_height=True):
            seeds = gr.Textbox(
                "0-3",
                label="Seeds",
                elem_id="seeds",
                info=f"0-3 · 5, 17, 3 · random · random 8 (at most {max_tiles} tiles)",
                scale=4,
            )
            dice = gr.Button("🎲 Random", elem_id="seeds-random", scale=0, min_width=110)
            run = gr.Button("Generate", variant="primary", elem_id="grid-run", scale=1)
        gallery = tile_gallery("Grid", "grid-gallery", columns=4)
        status = gr.Markdown(label="Summary", elem_id="grid-status")
        tiles = gr.State([])

    def grid(
        prompt: str,
        negative_prompt: str,
        seeds: str,
        scheduler: str,
        steps: float,
        guidance_scale: float,
        width: float,
        height: float,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, list[TileRef], str]:
        return handlers.run_grid(
            engine,
            prompt,
            negative_prompt,
            seeds,
            scheduler,
            steps,
            guidance_scale,
            width,
            height,
            progress,
        )

    def pin_tile(shown: list[TileRef], evt: gr.SelectData) -> str:
        return handlers.pin(shown, evt.index)

    run.click(
        grid,
        [shared.prompt, shared.negative_prompt, seeds, *shared.render_settings()],
        [gallery, tiles, status],
        api_name="grid",
        concurrency_id=MODEL_QUEUE,
    )
    gallery.select(pin_tile, tiles, shared.pinned_seed, queue=False, api_visibility="private")
    dice.click(
        lambda: ", ".join(map(str, random_seeds(4))),
        None,
        seeds,
        queue=False,
        api_visibility="private",
    )
