"""Compare: the pinned seed across schedulers, side by side, each at its own step count."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from pipeline.manifest import Manifest
from pipeline.schedulers import DEFAULT_COMPARE
from ui import handlers, runner, validation
from ui.gpu import gpu
from ui.runner import Services, Update
from ui.shared import SharedInputs, connect_parts, run_buttons, run_on_click, tab_results
from ui.state import TileRef


def build(services: Services, shared: SharedInputs) -> None:
    engine = services.engine
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
            run, stop = run_buttons("Compare", "compare")
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
        parts = tab_results("Schedulers", "compare", 6, run, stop)

    @gpu
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
        manifest: Manifest,
        pinned: TileRef | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[Update]:
        job = handlers.compare_request(
            prompt,
            negative_prompt,
            seed,
            schedulers,
            steps,
            guidance_scale,
            width,
            height,
            scheduler_steps,
        )
        yield from runner.run(
            services,
            "compare",
            lambda hooks: engine.compare(job, hooks),
            list(job.schedulers),
            manifest,
            runner.parent(pinned, job.seed),
            request.session_hash,
            progress,
        )

    run_on_click(
        run,
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
            shared.manifest,
            shared.pinned,
        ],
        parts.outputs(shared),
        "compare",
        validation.compare_validator(engine),
    )
    connect_parts(services, shared, parts)
    schedulers.change(
        lambda names, current: handlers.scheduler_steps_text(engine, names, current),
        [schedulers, scheduler_steps],
        scheduler_steps,
        queue=False,
        api_visibility="private",
    )
