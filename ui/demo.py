"""The page: header, shared inputs, the three tabs, and the About line."""

from __future__ import annotations

from importlib.metadata import version

import gradio as gr

from pipeline.engine import Engine
from ui import compare_tab, grid_tab, refine_tab
from ui.shared import build_shared

INTRO = (
    "# Seed Explorer\n"
    "One prompt, many seeds: render a **grid**, click a tile to **pin** its seed, "
    "**refine** it with prompt suffixes, **compare** schedulers on it."
)

# Gradio caps a gallery at 55% of the window: a grid's second row and its seed captions would
# hide behind a scroll bar. Show every tile.
CSS = """
#grid-gallery .fixed-height, #refine-gallery .fixed-height, #compare-gallery .fixed-height {
    max-height: none;
}
"""


def build_demo(engine: Engine) -> gr.Blocks:
    """The whole app around one engine (any object with the engine's methods will do)."""
    with gr.Blocks(title="Seed Explorer") as demo:
        gr.Markdown(INTRO)
        banner = model_banner(engine)
        gr.Markdown(banner, elem_id="model-banner", visible=bool(banner))
        shared = build_shared(engine)
        with gr.Tabs():
            grid_tab.build(engine, shared)
            refine_tab.build(engine, shared)
            compare_tab.build(engine, shared)
        gr.Markdown(about_line(engine), elem_id="about")
    return demo


def model_banner(engine: Engine) -> str:
    """Says plainly when the images are noise, and why."""
    model = engine.model
    if model.notice:
        return f"⚠️ {model.notice}"
    if model.is_tiny:
        return (
            "⚠️ The built-in **tiny model** is running: random weights, so every image is "
            "noise. It shows how the app works; start with `--model` and a Stable Diffusion "
            "id or folder for real images."
        )
    return ""


def about_line(engine: Engine) -> str:
    model = engine.model
    dtype = str(model.dtype).removeprefix("torch.")
    versions = " · ".join(
        f"{name} {version(name)}" for name in ("torch", "diffusers", "transformers", "gradio")
    )
    limits = engine.limits
    return (
        f"**Model** {model.model_id} · {model.device} · {dtype} · "
        f"generators on {engine.generator_device} · loaded in {model.seconds:.1f} s  \n"
        f"**Limits** {limits.max_tiles} tiles · {limits.max_steps} steps · "
        f"{limits.max_side} px per side  \n{versions}"
    )
