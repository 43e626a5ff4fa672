"""The inputs every tab reads: prompt, negative prompt, pinned seed and render settings."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pipeline.engine import Engine

# Every event that runs the model shares one queue slot: one render at a time, in order.
MODEL_QUEUE = "model"


@dataclass(frozen=True)
class SharedInputs:
    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    pinned_seed: gr.Textbox
    scheduler: gr.Dropdown
    steps: gr.Slider
    guidance_scale: gr.Slider
    width: gr.Slider
    height: gr.Slider

    def render_settings(self) -> list[gr.components.Component]:
        """The settings every render takes, in the API's order."""
        return [self.scheduler, self.steps, self.guidance_scale, self.width, self.height]


def tile_gallery(label: str, elem_id: str, columns: int) -> gr.Gallery:
    """A gallery of tiles: lossless PNG (Gradio's default is lossy WebP), every tile shown."""
    return gr.Gallery(
        label=label,
        elem_id=elem_id,
        format="png",
        columns=columns,
        object_fit="contain",
        height="auto",
        fit_columns=False,
    )


def build_shared(engine: Engine) -> SharedInputs:
    defaults = engine.default_settings()
    limits = engine.limits
    with gr.Row(equal_height=False):
        with gr.Column(scale=4):
            prompt = gr.Textbox(
                label="Prompt",
                elem_id="prompt",
                lines=2,
                placeholder="A photograph of an astronaut riding a horse on Mars",
            )
            negative_prompt = gr.Textbox(
                "", label="Negative prompt", elem_id="negative-prompt", placeholder="optional"
            )
        with gr.Column(scale=1, min_width=220):
            pinned_seed = gr.Textbox(
                label="Pinned seed",
                elem_id="pinned-seed",
                info="Click any tile to pin its seed; Refine and Compare use it.",
                buttons=["copy"],
            )
    with gr.Accordion("Settings", open=True), gr.Row():
        scheduler = gr.Dropdown(
            engine.registry.names,
            value=defaults.scheduler,
            label="Scheduler",
            elem_id="scheduler",
            info="Grid and Refine; Compare picks its own.",
        )
        steps = gr.Slider(
            1, limits.max_steps, value=defaults.steps, step=1, label="Steps", elem_id="steps"
        )
        guidance_scale = gr.Slider(
            0,
            limits.max_guidance,
            value=defaults.guidance_scale,
            step=0.5,
            label="Guidance scale (CFG)",
            elem_id="guidance-scale",
        )
        width = gr.Slider(
            64, limits.max_side, value=defaults.width, step=8, label="Width", elem_id="width"
        )
        height = gr.Slider(
            64, limits.max_side, value=defaults.height, step=8, label="Height", elem_id="height"
        )
    return SharedInputs(
        prompt, negative_prompt, pinned_seed, scheduler, steps, guidance_scale, width, height
    )
