"""Compare: the pinned seed across schedulers, side by side, each at its own step count."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipeline.engine import Engine
from pipeline.requests import parse_steps_table
from ui import specs, wiring
from ui.context import Services
from ui.widgets import SharedInputs, run_buttons, tab_results


def build(services: Services, shared: SharedInputs) -> None:
    engine = services.engine
    offered = engine.schedulers
    chosen = engine.defaults()["compare"]
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
                steps_table(engine, chosen),
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
                info="0 = each scheduler's own; the Settings' Steps is not used here",
                precision=0,
                minimum=0,
                maximum=engine.limits.max_steps,
                scale=1,
            )
        parts = tab_results("Schedulers", "compare", 6, run, stop)
    own = {"schedulers": schedulers, "steps": steps, "scheduler_steps": scheduler_steps}
    wiring.connect(services, specs.COMPARE, shared, parts, own)
    schedulers.change(
        lambda names, current: steps_table(engine, names, current),
        [schedulers, scheduler_steps],
        scheduler_steps,
        queue=False,
        api_visibility="private",
    )
    steps.change(
        lambda every, names: steps_table(engine, names, every=every),
        [steps, schedulers],
        scheduler_steps,
        queue=False,
        api_visibility="private",
    )


def steps_table(engine: Engine, names: list[str], current: str = "", every: Any = 0) -> str:
    """The steps table for the chosen schedulers: `every` (not 0) for each, else the numbers
    the user already typed, else each scheduler's own."""
    typed = parse_steps_table(current)
    own = engine.scheduler_steps(names or [])
    if isinstance(every, int | float) and every > 0:
        typed = dict.fromkeys(own, int(every))
    return "\n".join(f"{name}: {typed.get(name, steps)}" for name, steps in own.items())
