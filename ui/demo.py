"""The page: header, shared inputs, Reproduce, the run tabs and History, the About line."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from pipeline.admission import DEFAULT_PER_SESSION, SHARED_SLOTS, Admission
from pipeline.engine import Engine
from pipeline.outputs import OutputFolder
from ui import (
    compare_tab,
    grid_tab,
    history_tab,
    matrix_tab,
    refine_tab,
    reproduce,
    travel_tab,
    vary_tab,
    wiring,
)
from ui.context import Services
from ui.upkeep import keep_sweeping, release_state
from ui.widgets import build_shared

INTRO = (
    "# Seed Explorer\n"
    "One prompt, many seeds: render a **grid**, click a tile to **pin** its seed, "
    "**refine** it with prompt suffixes, **compare** schedulers on it, **vary** it, "
    "**travel** to another seed, or lay any two settings out as a **matrix**."
)

# Gradio caps a gallery at 55% of the window: a grid's second row and its seed captions would
# hide behind a scroll bar. Show every tile.
CSS = """
#grid-gallery .fixed-height, #refine-gallery .fixed-height, #compare-gallery .fixed-height,
#vary-gallery .fixed-height, #travel-gallery .fixed-height, #matrix-gallery .fixed-height {
    max-height: none;
}
"""


# Enter in the prompt runs the tab in view, as its Generate / Refine / Compare button would.
RUN_VISIBLE_TAB = """() => {
    const ids = ["grid-run", "refine-run", "compare-run", "vary-run", "travel-run", "matrix-run"];
    for (const id of ids) {
        const button = document.getElementById(id);
        if (button && button.offsetParent !== null) { button.click(); return; }
    }
}"""


def build_demo(
    engine: Engine,
    outputs: Path | None = None,
    previews: bool = True,
    runs_per_session: int = DEFAULT_PER_SESSION,
    expire_after: float | None = None,
) -> gr.Blocks:
    """The whole app around one engine; `outputs` is where every render is saved (None: not).
    With step sharing many runs render at once, else one per engine; each person has at most
    `runs_per_session` going or waiting. Served files expire after `expire_after` seconds
    (None: the sweep is not started)."""
    slots = SHARED_SLOTS if engine.max_batch else engine.runs_at_once
    admission = Admission(slots, runs_per_session)
    services = Services(engine, outputs and OutputFolder(outputs), previews, admission=admission)
    demo = build_page(services)
    if expire_after is not None:
        keep_sweeping(services, demo, expire_after)
    return demo


def build_page(services: Services) -> gr.Blocks:
    """The page over the app's shared context."""
    engine = services.engine
    outputs = services.outputs and services.outputs.root
    with gr.Blocks(title="Seed Explorer") as demo:
        gr.Markdown(INTRO)
        banner = model_banner(engine)
        gr.Markdown(banner, elem_id="model-banner", visible=bool(banner))
        shared = build_shared(engine)
        wiring.connect_shared(shared)
        reproduce.build(services, shared)
        with gr.Tabs():
            grid_tab.build(services, shared)
            refine_tab.build(services, shared)
            compare_tab.build(services, shared)
            vary_tab.build(services, shared)
            travel_tab.build(services, shared)
            matrix_tab.build(services, shared)
            history_tab.build(services, shared)
        gr.Markdown(about_line(engine, outputs), elem_id="about")
        shared.prompt.submit(None, js=RUN_VISIBLE_TAB, api_visibility="private")

        def page_opened(request: gr.Request) -> None:
            services.opened(request.session_hash)

        def session_ended(request: gr.Request) -> None:
            services.runs.stop(request.session_hash)  # no render for nobody
            services.forget(request.session_hash)
            release_state(demo, request.session_hash)

        demo.load(page_opened, queue=False, api_visibility="private")
        demo.unload(session_ended)
    return demo


def model_banner(engine: Engine) -> str:
    """Says plainly when the images are noise, and why."""
    card = engine.card
    if card.notice:
        return f"⚠️ {card.notice}"
    if card.is_tiny:
        return (
            "⚠️ The built-in **tiny model** is running: random weights, so every image is "
            "noise. It shows how the app works; start with `--model` and a Stable Diffusion "
            "id or folder for real images."
        )
    return ""


def about_line(engine: Engine, outputs: Path | None = None) -> str:
    card = engine.card
    seen = engine.provenance
    versions = " · ".join(
        f"{name} {version}" for name, version in {**seen.versions, "gradio": gr.__version__}.items()
    )
    limits = engine.limits
    if engine.max_batch:
        batches = f"shared calls of {engine.max_batch} rows"
    elif engine.micro_batch:
        batches = f"micro-batches of {engine.micro_batch}"
    else:
        batches = "one call per run"
    mode = "deterministic mode on" if seen.deterministic else "deterministic mode off"
    saving = f"saving to {outputs}" if outputs else "not saving"
    return (
        f"**Model** {card.model_id} · {card.family_label}, {card.native_size} px · "
        f"{card.device} ({seen.device_name}) · {seen.dtype} · "
        + (f"offload {seen.offload_mode} · " if seen.offload_mode else "")
        + (f"quantized {seen.quantize} · " if seen.quantize else "")
        + f"generators on {engine.generator_device} · loaded in {card.seconds:.1f} s  \n"
        + (f"**LoRAs** {', '.join(card.loras)}  \n" if card.loras else "")
        + (f"**Defaults** {card.few_step}  \n" if card.few_step else "")
        + f"**Reproducibility** {batches} · {mode} · {saving}  \n"
        f"**Limits** {limits.max_tiles} tiles · {limits.max_steps} steps · "
        f"{limits.max_side} px per side  \n{versions}"
    )
