"""Grid: one prompt, one tile per seed; click a tile to pin its seed."""

from __future__ import annotations

import gradio as gr

from pipeline.seeds import random_seeds
from ui import specs, wiring
from ui.context import Services
from ui.widgets import SharedInputs, run_buttons, tab_results


def build(services: Services, shared: SharedInputs) -> None:
    max_tiles = services.engine.limits.max_tiles
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
            run, stop = run_buttons("Generate", "grid")
        parts = tab_results("Grid", "grid", 4, run, stop)
    wiring.connect(services, specs.GRID, shared, parts, {"seeds": seeds})
    dice.click(
        lambda: ", ".join(map(str, random_seeds(4))),
        None,
        seeds,
        queue=False,
        api_visibility="private",
    )
