"""The inputs every tab reads (prompt, pinned seed, settings) and the parts every tab has."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipeline.engine import Engine
from pipeline.manifest import Manifest
from pipeline.recipe import Recipe
from ui import validation
from ui.bundle import bundle
from ui.live import Sight
from ui.runner import Services
from ui.state import TileRef

# Every event that runs the model shares one queue slot: one render at a time, in order.
MODEL_QUEUE = "model"
LIVE_POLL = 0.5  # seconds between a browser's looks at its run's progress and live frame


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
    pinned: gr.State  # the pinned tile (TileRef) while the pinned-seed field shows its seed
    manifest: gr.State  # everything this session rendered
    # The pin's variation, {"variation_seed", "variation_strength"}, or None: Refine, Compare
    # and Matrix render the whole pin. Shown in `pin_note`.
    variation: gr.State
    pin_note: gr.Markdown

    def restore_outputs(self) -> list[gr.components.Component]:
        """What restoring a tile's settings sets, in the order `restore_values` gives it."""
        return [self.prompt, self.negative_prompt, *self.render_settings(), *self.pin_outputs()]

    def pin_outputs(self) -> list[gr.components.Component]:
        """What pinning sets, in the order `pin_values` gives it."""
        return [self.pinned_seed, self.pinned, self.variation, self.pin_note]

    def render_settings(self) -> list[gr.components.Component]:
        """The settings every render takes, in the API's order."""
        return [self.scheduler, self.steps, self.guidance_scale, self.width, self.height]


@dataclass(frozen=True)
class TabParts:
    """What every tab has: Run and Stop, the live preview, the gallery, its summary,
    "download all"."""

    run: gr.Button
    stop: gr.Button
    live: gr.Image  # the run's live frame (ui/live.py), shown while it renders
    poll: gr.Timer  # looks for new progress and a new frame, active while the run renders
    seen: gr.State  # what the poll last showed (Sight): its frame finds the seed under a click
    progress: gr.Markdown  # the run's progress line (the poll's), shown while it renders
    gallery: gr.Gallery
    status: gr.Markdown  # what the run's one response says: what was rendered, or why not
    download: gr.Button
    bundle: gr.File
    tiles: gr.State

    def outputs(self, shared: SharedInputs) -> list[gr.components.Component]:
        """What a run updates, in the order the runner yields it."""
        return [self.gallery, self.tiles, self.status, shared.manifest]


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
        download = gr.Button(
            "Download all (.zip)", elem_id=f"{prefix}-download", size="sm", scale=0, min_width=170
        )
    bundle = gr.File(label="Tiles and contact sheet", elem_id=f"{prefix}-zip", visible=False)
    seen, tiles = gr.State(), gr.State([])
    return TabParts(run, stop, live, poll, seen, progress, gallery, status, download, bundle, tiles)


def build_shared(engine: Engine) -> SharedInputs:
    defaults = engine.planner.defaults()
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
            engine.model.registry.names,
            value=defaults["scheduler"],
            label="Scheduler",
            elem_id="scheduler",
            info="Grid and Refine; Compare picks its own.",
        )
        steps = gr.Slider(
            1, limits.max_steps, value=defaults["steps"], step=1, label="Steps", elem_id="steps"
        )
        guidance_scale = gr.Slider(
            0,
            limits.max_guidance,
            value=defaults["guidance_scale"],
            step=0.5,
            # Flux.1 [dev]'s guidance is an embedding, named as Forge names it.
            label="Distilled CFG"
            if engine.model.guidance_kind == "embedding"
            else "Guidance scale (CFG)",
            elem_id="guidance-scale",
        )
        width = gr.Slider(
            64, limits.max_side, value=defaults["width"], step=8, label="Width", elem_id="width"
        )
        height = gr.Slider(
            64, limits.max_side, value=defaults["height"], step=8, label="Height", elem_id="height"
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
        pinned=gr.State(None),
        manifest=gr.State(Manifest(engine.model.model_id)),
        variation=gr.State(None),
        pin_note=pin_note,
    )


def pin_values(
    seed: int | str, tile: TileRef | None, variation: dict[str, Any] | None
) -> tuple[Any, ...]:
    """The pin's widgets for a seed, its tile and its variation (None: a plain seed)."""
    notes = []
    if variation and variation.get("variation_seed") is not None:
        notes.append(
            f"with variation seed **{variation['variation_seed']}** at strength "
            f"**{variation['variation_strength']:g}**"
        )
    if variation and variation.get("resize_from"):
        notes.append("seed resized from {}x{}".format(*variation["resize_from"]))
    return str(seed), tile, variation, " · ".join(notes)


def restore_values(tile: TileRef) -> tuple[Any, ...]:
    """A tile's prompt, settings and the whole pin: the widgets as they were for it."""
    recipe = tile.recipe
    settings = (recipe.sampler, recipe.steps, recipe.guidance_scale, recipe.width, recipe.height)
    pin = pin_values(recipe.seed, tile, variation_of(recipe))
    return recipe.prompt, recipe.negative_prompt, *settings, *pin


def variation_of(recipe: Recipe) -> dict[str, Any] | None:
    """A tile's variation as the pin carries it (a Pin request's fields); None: none."""
    variation: dict[str, Any] = {}
    if recipe.variation_seed is not None and recipe.variation_strength:
        variation["variation_seed"] = recipe.variation_seed
        variation["variation_strength"] = recipe.variation_strength
    if recipe.resize_from:
        variation["resize_from"] = list(recipe.resize_from)
    return variation or None


def run_on_click(
    button: gr.Button,
    fn: Callable[..., Any],
    inputs: list[Any],
    outputs: list[Any],
    parts: TabParts,
    api_name: str,
    validate: validation.Validator,
    previews: bool,
) -> gr.events.Dependency:
    """A run button: the checks first (a refusal is a toast naming the field; they never wait
    behind the model), then the old tiles cleared and the poll for progress and the live
    preview on, then the model job in the shared queue, whose one response is the tiles; the
    poll off when it ends. API callers reach the job directly; `validate` refuses their bad
    input before it is queued."""
    raw = {"preprocess": False}  # raw values: our checks name the field, not Gradio's
    ui_only = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}
    event = (
        button.click(
            validation.as_toast(validate),
            inputs,
            None,
            concurrency_limit=None,
            api_visibility="private",
            show_progress="hidden",
            **raw,
        )
        .success(
            # The old tiles go at once: a click while the run renders must not pin their seeds.
            # (An update made here, at build time, would be a component in the tab.)
            lambda: (
                gr.Timer(active=True),
                None,
                gr.update(value="Waiting for the model…", visible=True),
                gr.update(value=None, visible=previews),
                [],
                [],
                "",
            ),
            None,
            [
                parts.poll,
                parts.seen,
                parts.progress,
                parts.live,
                parts.gallery,
                parts.tiles,
                parts.status,
            ],
            **ui_only,
        )
        .success(
            fn,
            inputs,
            outputs,
            api_name=api_name,
            concurrency_id=MODEL_QUEUE,
            validator=validate,
            **raw,
        )
    )
    # Only the start and the end show and hide the live parts: a poll's answer that arrives
    # after the run's (another connection) changes nothing that is shown.
    event.then(
        lambda: (gr.update(visible=False), gr.update(visible=False), gr.Timer(active=False), None),
        None,
        [parts.live, parts.progress, parts.poll, parts.seen],
        **ui_only,
    )
    return event


def connect_parts(services: Services, shared: SharedInputs, parts: TabParts) -> None:
    """Pin on click, Stop, and "download all": UI-only events that never wait for the model."""

    def pin_tile(shown: list[TileRef], manifest: Manifest, evt: gr.SelectData) -> tuple[Any, ...]:
        if not isinstance(evt.index, int) or not 0 <= evt.index < len(shown):
            return (gr.skip(),) * 5
        tile = shown[evt.index]
        if tile.entry is not None:
            manifest.pin(tile.entry, tile.index)
        return *pin_values(tile.seed, tile, variation_of(tile.recipe)), manifest

    def look(seen: Sight | None, request: gr.Request) -> tuple[Any, Any, Any]:
        """The run's progress line and newest frame, when they are not the ones shown."""
        latest = services.live.latest(request.session_hash)
        if latest is None or (seen is not None and seen.number == latest.number):
            return gr.skip(), gr.skip(), gr.skip()
        frame = latest.frame
        new_frame = frame is not None and (seen is None or seen.frame != frame)
        return frame.path if new_frame else gr.skip(), latest.line, latest

    def pin_preview(seen: Sight | None, evt: gr.SelectData) -> tuple[Any, ...]:
        """Still rendering: the seed under the click, no tile to grow from yet."""
        index = evt.index if isinstance(evt.index, (list, tuple)) else ()
        frame = seen and seen.frame
        seed = frame.seed_at(*index[:2]) if frame and len(index) >= 2 else None
        if seed is None:
            return (gr.skip(),) * 4
        return pin_values(seed, None, None)

    def download_all(tiles: list[TileRef], request: gr.Request) -> Any:
        return gr.update(value=bundle(tiles, services.folder(request.session_hash)), visible=True)

    def stop(request: gr.Request) -> None:
        if not services.runs.stop(request.session_hash):
            gr.Info("Nothing is running.")

    parts.gallery.select(
        pin_tile,
        [parts.tiles, shared.manifest],
        [*shared.pin_outputs(), shared.manifest],
        queue=False,
        api_visibility="private",
    )
    parts.poll.tick(
        look,
        parts.seen,
        [parts.live, parts.progress, parts.seen],
        queue=False,
        api_visibility="private",
    )
    parts.live.select(
        pin_preview, parts.seen, shared.pin_outputs(), queue=False, api_visibility="private"
    )
    parts.stop.click(stop, None, None, queue=False, api_visibility="private")
    parts.download.click(
        download_all,
        parts.tiles,
        parts.bundle,
        api_visibility="private",
    )
