"""Refine: the pinned seed again, once per prompt suffix; the composition stays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from pipeline.manifest import Manifest
from pipeline.requests import DEFAULT_SUFFIXES
from ui import handlers, runner, validation
from ui.gpu import gpu
from ui.runner import Services, Update
from ui.shared import SharedInputs, connect_parts, run_buttons, run_on_click, tab_results
from ui.state import TileRef


def build(services: Services, shared: SharedInputs) -> None:
    engine = services.engine
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

    @gpu
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
        manifest: Manifest,
        pinned: TileRef | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[Update]:
        job = handlers.refine_request(
            prompt, negative_prompt, seed, suffixes, scheduler, steps, guidance_scale, width, height
        )
        labels = [(suffix.strip(" ,") or "(no suffix)") for suffix in job.suffixes]
        yield from runner.run(
            services,
            "refine",
            lambda hooks: engine.refine(job, hooks),
            labels,
            manifest,
            runner.parent(pinned, job.seed),
            request.session_hash,
            progress,
        )

    def offer_prompt(shown: list[TileRef], evt: gr.SelectData) -> tuple[Any, Any]:
        if not isinstance(evt.index, int) or not 0 <= evt.index < len(shown):
            return gr.skip(), gr.skip()
        prompt = shown[evt.index].recipe.prompt
        return prompt, gr.update(visible=True, value=f"Use “{prompt}” as the prompt")

    run_on_click(
        run,
        refine,
        [
            shared.prompt,
            shared.negative_prompt,
            shared.pinned_seed,
            suffixes,
            *shared.render_settings(),
            shared.manifest,
            shared.pinned,
        ],
        parts.outputs(shared),
        "refine",
        validation.refine_validator(engine),
    )
    connect_parts(services, shared, parts)
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
