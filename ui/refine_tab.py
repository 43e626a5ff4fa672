"""Refine: the pinned seed again, once per prompt suffix; the composition stays."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipeline.requests import DEFAULT_SUFFIXES
from ui import tabs
from ui.runner import Services
from ui.shared import SharedInputs, run_buttons, tab_results
from ui.state import TileRef


def build(services: Services, shared: SharedInputs) -> None:
    with gr.Tab("Refine", id="refine"):
        with gr.Row(equal_height=True):
            suffixes = gr.Textbox(
                "\n".join(DEFAULT_SUFFIXES),
                label="Suffixes",
                elem_id="refine-suffixes",
                info="One per line, added to the prompt; every tile uses the pinned seed.",
                lines=4,
                scale=4,
            )
            run, stop = run_buttons("Refine", "refine")
        use_prompt = gr.Button(
            "Use this tile's prompt as the prompt", elem_id="refine-use-prompt", visible=False
        )
        parts = tab_results("Refinements", "refine", 4, run, stop)
        chosen_prompt = gr.State("")

    def offer_prompt(shown: list[TileRef], evt: gr.SelectData) -> tuple[Any, Any]:
        if not isinstance(evt.index, int) or not 0 <= evt.index < len(shown):
            return gr.skip(), gr.skip()
        prompt = shown[evt.index].recipe.prompt
        return prompt, gr.update(visible=True, value=f"Use “{prompt}” as the prompt")

    tabs.connect(services, tabs.REFINE, shared, parts, {"suffixes": suffixes})
    parts.gallery.select(
        offer_prompt,
        parts.tiles,
        [chosen_prompt, use_prompt],
        queue=False,
        api_visibility="private",
    )
    use_prompt.click(
        lambda chosen: (chosen, gr.update(visible=False)),
        chosen_prompt,
        [shared.prompt, use_prompt],
        queue=False,
        api_visibility="private",
    )
