"""Vary: the pinned seed's neighbours, A1111's variation seeds at one strength."""

from __future__ import annotations

import gradio as gr

from pipeline.requests import DEFAULT_STRENGTH
from ui import specs, wiring
from ui.context import Services
from ui.widgets import SharedInputs, run_buttons, tab_results

ANCESTRAL_NOTE = (
    "The start noise moves from the pin's own (its variation too) towards each variation seed's "
    "(A1111's slerp): strength 0 is the pinned tile, 1 the variation seed's own tile. "
    "Ancestral schedulers (Euler a, DPM2 a, …) still take their step noise from the pinned "
    "seed, as in A1111, so at strength 1 they differ from that seed's tile."
)


def build(services: Services, shared: SharedInputs) -> None:
    max_tiles = services.engine.limits.max_tiles
    with gr.Tab("Vary", id="vary"):
        with gr.Row(equal_height=True):
            variation_seeds = gr.Textbox(
                "0-7",
                label="Variation seeds",
                elem_id="vary-seeds",
                info=f"0-7 · 5, 17, 3 · random 8 (at most {max_tiles} tiles)",
                scale=3,
            )
            strength = gr.Slider(
                0,
                1,
                value=DEFAULT_STRENGTH,
                step=0.01,
                label="Variation strength",
                elem_id="vary-strength",
                scale=2,
            )
            resize_from = gr.Textbox(
                "",
                label="Resize seed from",
                elem_id="vary-resize-from",
                info="W x H, e.g. 512x768: keep the composition of that size",
                placeholder="none",
                scale=1,
            )
            run, stop = run_buttons("Vary", "vary")
        gr.Markdown(ANCESTRAL_NOTE, elem_id="vary-note")
        parts = tab_results("Variations", "vary", 4, run, stop)
    own = {"variation_seeds": variation_seeds, "strength": strength, "resize_from": resize_from}
    wiring.connect(services, specs.VARY, shared, parts, own)
