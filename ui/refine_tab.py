"""Refine: the pinned seed again, once per prompt suffix; the composition stays."""

from __future__ import annotations

import gradio as gr

from pipeline.requests import DEFAULT_SUFFIXES
from ui import specs, wiring
from ui.context import Services
from ui.state import TileRef
from ui.widgets import SharedInputs, Updates, run_buttons, tab_results


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

    def offer_prompt(shown: list[TileRef], evt: gr.SelectData) -> Updates:
        if not isinstance(evt.index, int) or not 0 <= evt.index < len(shown):
            return gr.skip()
        prompt = shown[evt.index].recipe.prompt
        return {
            chosen_prompt: prompt,
            use_prompt: gr.update(visible=True, value=f"Use “{prompt}” as the prompt"),
        }

    wiring.connect(services, specs.REFINE, shared, parts, {"suffixes": suffixes})
    parts.gallery.select(
        offer_prompt,
        parts.tiles,
        [chosen_prompt, use_prompt],
        queue=False,
        api_visibility="private",
    )
    use_prompt.click(
        lambda chosen: {shared.prompt: chosen, use_prompt: gr.update(visible=False)},
        chosen_prompt,
        [shared.prompt, use_prompt],
        queue=False,
        api_visibility="private",
    )
