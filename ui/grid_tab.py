"""Grid: one prompt, one tile per seed; click a tile to pin its seed."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from pipeline.manifest import Manifest
from pipeline.seeds import random_seeds
from ui import handlers, runner, validation
from ui.gpu import gpu
from ui.runner import Services, Update
from ui.shared import SharedInputs, connect_parts, run_buttons, run_on_click, tab_results


def build(services: Services, shared: SharedInputs) -> None:
    engine = services.engine
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
            run, stop = run_buttons("Generate", "grid")
        parts = tab_results("Grid", "grid", 4, run, stop)

    @gpu
    def grid(
        prompt: str,
        negative_prompt: str,
        seeds: str,
        scheduler: str,
        steps: float,
        guidance_scale: float,
        width: float,
        height: float,
        manifest: Manifest,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[Update]:
        job = handlers.grid_request(
            engine, prompt, negative_prompt, seeds, scheduler, steps, guidance_scale, width, height
        )
        labels = [f"seed {seed}" for seed in job.seeds]
        yield from runner.run(
            services,
            "grid",
            lambda hooks: engine.grid(job, hooks),
            labels,
            manifest,
            None,
            request.session_hash,
            progress,
        )

    run_on_click(
        run,
        grid,
        [
            shared.prompt,
            shared.negative_prompt,
            seeds,
            *shared.render_settings(),
            shared.manifest,
        ],
        parts.outputs(shared),
        "grid",
        validation.grid_validator(engine),
    )
    connect_parts(services, shared, parts)
    dice.click(
        lambda: ", ".join(map(str, random_seeds(4))),
        None,
        seeds,
        queue=False,
        api_visibility="private",
    )
