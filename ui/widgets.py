"""The layout every tab shares: the inputs above the tabs (prompt, pin, settings) and the parts
under each run tab (Run and Stop, live preview, gallery, status, "download all"); and the one
place the pin and a tile's settings become widget values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipeline.engine import Engine
from pipeline.manifest import Manifest
from pipeline.planner import MAX_SHIFT
from pipeline.recipe import Recipe
from pipeline.requests import MAX_SEED_VARIANCE
from ui.state import Pin

LIVE_POLL = 0.5  # seconds between a browser's looks at its run's progress and live frame
Updates = dict[gr.components.Component, Any]


@dataclass(frozen=True)
class SharedInputs:
    """The inputs every tab reads, and the session's pin and manifest."""

    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    pinned_seed: gr.Textbox
    scheduler: gr.Dropdown
    steps: gr.Number
    guidance_scale: gr.Number
    width: gr.Number
    height: gr.Number
    true_cfg_scale: gr.Number  # shown for a model that takes it (Flux.1)
    shift: gr.Number  # shown for a flow-matching model (Flux.1, SD3)
    seed_variance: gr.Number  # noise on the prompt from the seed: spreads a distilled model
    pin: gr.State  # the Pin (ui/state.py) the pinned-seed field shows; None: a seed typed
    pin_note: gr.Markdown  # the pin's variation, which the field cannot show
    manifest: gr.State  # everything this session rendered

    def pin_outputs(self) -> list[gr.components.Component]:
        """What `show_pin` sets."""
        return [self.pinned_seed, self.pin, self.pin_note]

    def restore_outputs(self) -> list[gr.components.Component]:
        """What `restore` sets."""
        return [self.prompt, self.negative_prompt, *self.render_settings(), *self.pin_outputs()]

    def render_settings(self) -> list[gr.components.Component]:
        """The settings every render takes, in the API's order."""
        return [
            *(self.scheduler, self.steps, self.guidance_scale, self.width, self.height),
            *(self.true_cfg_scale, self.shift, self.seed_variance),
        ]

    def show_pin(self, pin: Pin) -> Updates:
        """The pin, and the widgets that show it."""
        return {self.pinned_seed: str(pin.seed), self.pin: pin, self.pin_note: pin.note()}

    def restore(self, recipe: Recipe, pin: Pin | None) -> Updates:
        """A tile's prompt (before a refinement's suffix) and settings as they were for it,
        and `pin` (None: the pin stays)."""
        shown: Updates = {
            self.prompt: recipe.prompt.removesuffix(recipe.suffix or ""),
            self.negative_prompt: recipe.negative_prompt,
            self.scheduler: recipe.sampler,
            self.steps: recipe.steps,
            self.guidance_scale: recipe.guidance_scale,
            self.width: recipe.width,
            self.height: recipe.height,
            self.true_cfg_scale: recipe.true_cfg_scale,
            # A shift the model chose from the image's size (its `mu`) stays the model's.
            self.shift: recipe.shift if recipe.mu is None and recipe.shift else 0,
            self.seed_variance: recipe.seed_variance,
        }
        return shown | (self.show_pin(pin) if pin else {})


@dataclass(frozen=True)
class TabParts:
    """What every run tab has under its own inputs."""

    run: gr.Button
    stop: gr.Button
    live: gr.Image  # the run's live frame (ui/live.py), shown while it renders
    poll: gr.Timer  # looks for new progress and a new frame, active while the run renders
    seen: gr.State  # what the poll last showed (Sight): its frame finds the seed under a click
    progress: gr.Markdown  # the run's progress line (the poll's), shown while it renders
    gallery: gr.Gallery
    status: gr.Markdown  # what the run's one response says: what was rendered, or why not
    download: gr.DownloadButton  # the zip of the tiles shown, made when they arrive
    tiles: gr.State


def run_buttons(label: str, prefix: str) -> tuple[gr.Button, gr.Button]:
    with gr.Column(scale=1, min_width=140):
        run = gr.Button(label, variant="primary", elem_id=f"{prefix}-run")
        stop = gr.Button("Stop", variant="stop", elem_id=f"{prefix}-stop", size="sm")
    return run, stop


def tab_results(label: str, prefix: str, columns: int, run: gr.Button, stop: gr.Button) -> TabParts:
    """The live preview, the gallery (every tile shown, as the app's own PNG files), its
    summary and "download all"."""
    live = gr.Image(
        label="Live preview: click a tile to pin its seed",
        elem_id=f"{prefix}-live",
        type="filepath",
        interactive=False,
        visible=False,
        buttons=[],
    )
    poll = gr.Timer(LIVE_POLL, active=False)
    gallery = gr.Gallery(
        label=label,
        elem_id=f"{prefix}-gallery",
        columns=columns,
        object_fit="contain",
        height="auto",
        fit_columns=False,
    )
    with gr.Row(equal_height=True):
        progress = gr.Markdown(elem_id=f"{prefix}-progress", visible=False)
        status = gr.Markdown(elem_id=f"{prefix}-status")
        download = gr.DownloadButton(
            "Download all (.zip)",
            elem_id=f"{prefix}-download",
            size="sm",
            scale=0,
            min_width=170,
            visible=False,
        )
    seen, tiles = gr.State(), gr.State([])
    return TabParts(run, stop, live, poll, seen, progress, gallery, status, download, tiles)


def build_shared(engine: Engine) -> SharedInputs:
    defaults = engine.defaults()
    limits = engine.limits
    with gr.Row(equal_height=False):
        with gr.Column(scale=4):
            prompt = gr.Textbox(
                label="Prompt",
                elem_id="prompt",
                lines=1,
                max_lines=4,
                placeholder="A photograph of an astronaut riding a horse on Mars",
            )
            negative_prompt = gr.Textbox(
                "", label="Negative prompt", elem_id="negative-prompt", placeholder="optional"
            )
        with gr.Column(scale=1, min_width=220):
            pinned_seed = gr.Textbox(
                label="Pinned seed",
                elem_id="pinned-seed",
                info="Click any tile to pin it; Refine, Compare, Vary and Matrix use it.",
                buttons=["copy"],
            )
            pin_note = gr.Markdown(elem_id="pin-variation")
    with gr.Accordion("Settings", open=True), gr.Row():
        scheduler = gr.Dropdown(
            engine.schedulers,
            value=defaults["scheduler"],
            label="Scheduler",
            elem_id="scheduler",
            info="Grid and Refine; Compare picks its own.",
        )
        # Number boxes, not sliders: a slider's box moves a number outside its range to the
        # nearest end without a word; here the run is refused naming the field and the range.
        steps = gr.Number(
            defaults["steps"],
            label="Steps",
            elem_id="steps",
            info=f"1 to {limits.max_steps}",
            precision=0,
        )
        guidance_scale = gr.Number(
            defaults["guidance_scale"],
            label=engine.card.guidance_label,
            elem_id="guidance-scale",
            info=f"0 to {limits.max_guidance:g}",
            step=0.5,
        )
        width, height = (
            gr.Number(
                defaults[name.lower()],
                label=name,
                elem_id=name.lower(),
                info=f"{limits.min_side} to {limits.max_side}, a multiple of 8",
                precision=0,
                step=8,
            )
            for name in ("Width", "Height")
        )
        card = engine.card
        true_cfg_scale = gr.Number(
            1,
            label="True CFG scale",
            elem_id="true-cfg-scale",
            info=f"1 (off) to {limits.max_guidance:g}: a second pass with the negative prompt",
            step=0.5,
            visible=card.true_cfg,
        )
        native = "" if card.shift is None else f", {card.shift:.3g} at {card.native_size} px"
        shift = gr.Number(
            0,
            label="Shift",
            elem_id="shift",
            info=f"0: the model's own{native}; up to {MAX_SHIFT:g}",
            step=0.1,
            visible=card.shift is not None,
        )
        seed_variance = gr.Number(
            0,
            label="Seed variance",
            elem_id="seed-variance",
            info=f"0 (off) to {MAX_SEED_VARIANCE:g}: noise on the prompt from each seed, to "
            "spread a distilled or turbo model's images",
            step=0.05,
            minimum=0,
            maximum=MAX_SEED_VARIANCE,
            visible=card.shift is not None,
        )
    return SharedInputs(
        prompt,
        negative_prompt,
        pinned_seed,
        scheduler,
        steps,
        guidance_scale,
        width,
        height,
        true_cfg_scale,
        shift,
        seed_variance,
        pin=gr.State(None),
        pin_note=pin_note,
        manifest=gr.State(Manifest(engine.card.model_id)),
    )
