"""Refine: the pinned seed again, once per prompt suffix; the composition stays."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipeline.engine import Engine
from pipeline.requests import DEFAULT_SUFFIXES
from ui import handlers
from ui.shared import MODEL_QUEUE, SharedInputs, tile_gallery
from ui.state import TileRef


def build(engine: Engine, shared: SharedInputs) -> None:
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
            run = gr.Button("Refine", variant="primary", elem_id="refine-run", scale=1)
        gallery = tile_gallery("Refinements", "refine-gallery", columns=4)
        status = gr.Markdown(label="Summary", elem_id="refine-status")
        use_prompt = gr.Button(
            "Use this tile's prompt as the prompt", elem_id="refine-use-prompt", visible=False
        )
        tiles = gr.State([])
        chosen_prompt = gr.State("")

    def refine(
        prompt: str,
        negative_prompt: str,
        seed: str,
        suffixes: str,
        scheduler: str,
        steps: float,
        guidance_scale: float,
        width: float,
        height: float,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, list[TileRef], str]:
        return handlers.run_refine(
            engine,
            prompt,
            negative_prompt,
            seed,
            suffixes,
            scheduler,
            steps,
            guidance_scale,
            width,
            height,
            progress,
        )

    def pin_tile(shown: list[TileRef], evt: gr.SelectData) -> tuple[str, str, Any]:
        tile = shown[evt.index]
        label = f"Use “{tile.prompt}” as the prompt"
        return handlers.pin(shown, evt.index), tile.prompt, gr.update(visible=True, value=label)

    run.click(
        refine,
        [
            shared.prompt,
            shared.negative_prompt,
            shared.pinned_seed,
            suffixes,
            *shared.render_settings(),
        ],
        [gallery, tiles, status],
        api_name="refine",
        concurrency_id=MODEL_QUEUE,
    )
    gallery.select(
        pin_tile,
        tiles,
        [shared.pinned_seed, chosen_prompt, use_prompt],
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
