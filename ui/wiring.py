"""The events every run tab has, wired alike from its declaration (ui/specs.py): the check
before the job queues, the job itself (API name, validator, one model slot), the poll for
progress and the live frame, pin on click, Stop, and "download all"."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipeline.manifest import Manifest
from ui import runner, validation
from ui.bundle import bundle
from ui.context import MODEL_QUEUE, Services
from ui.live import Sight
from ui.specs import TabSpec
from ui.state import Pin, TileRef
from ui.widgets import SharedInputs, TabParts, Updates

# Events that never wait for the model: unqueued, not in the API, no progress overlay.
UI_ONLY: dict[str, Any] = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}


def connect(
    services: Services,
    spec: TabSpec,
    shared: SharedInputs,
    parts: TabParts,
    own: dict[str, gr.components.Component],
) -> gr.events.Dependency:
    """Wire a run tab: its inputs are its own widgets (`own`, by input name) and the shared
    ones. Returns the run's event, for what a tab does after it."""
    widgets = {
        "prompt": shared.prompt,
        "negative_prompt": shared.negative_prompt,
        "seed": shared.pinned_seed,
        "scheduler": shared.scheduler,
        "steps": shared.steps,
        "guidance_scale": shared.guidance_scale,
        "width": shared.width,
        "height": shared.height,
        "true_cfg_scale": shared.true_cfg_scale,
        "shift": shared.shift,
        "seed_variance": shared.seed_variance,
        **own,
    }
    # The API's parameters by name, in the declared order; then the session's states.
    inputs = {name: widgets[name] for name in spec.inputs}
    inputs |= {"manifest": shared.manifest, "pin": shared.pin}

    def job(request: gr.Request, **values: Any) -> Updates:
        """The tab's queued job; a refused request becomes a toast naming the field."""
        manifest, pin = values.pop("manifest"), values.pop("pin")
        outcome = runner.run(services, spec, values, pin, manifest, request.session_hash)
        return {
            parts.gallery: outcome.items,
            parts.tiles: outcome.tiles,
            parts.status: outcome.status,
            shared.manifest: manifest,
        }

    validate = validation.validator(services.engine, spec)
    event = (
        parts.run.click(
            validation.as_toast(validate, services.engine.limits, own),
            None,
            None,
            inputs_kwargs=inputs,
            concurrency_limit=None,
            api_visibility="private",
            show_progress="hidden",
            preprocess=False,  # raw values: our checks name the field, not Gradio's
        )
        .success(lambda: _started(parts, services.previews), None, _live_parts(parts), **UI_ONLY)
        .success(
            job,
            None,
            [parts.gallery, parts.tiles, parts.status, shared.manifest],
            inputs_kwargs=inputs,
            api_name=spec.kind,
            concurrency_id=MODEL_QUEUE,
            concurrency_limit=services.model_runs,
            validator=validate,
            preprocess=False,
            show_progress="hidden",  # the progress line (the poll's) says how long is left
        )
    )
    # Only the start and the end show and hide the live parts: a poll's answer that arrives
    # after the run's (another connection) changes nothing that is shown.
    event.then(lambda: _ended(parts), None, _live_parts(parts), **UI_ONLY)

    def download(tiles: list[TileRef], request: gr.Request) -> Updates:
        """ "Download all" ready as soon as the tiles are: one click saves the zip."""
        if not tiles:
            return gr.skip()
        try:
            zipped = bundle(tiles, services.folder(request.session_hash))
        except OSError:  # the session ended meanwhile (its tab closed), and its files went
            return gr.skip()
        return {parts.download: gr.update(value=zipped, visible=True)}

    event.then(
        download, parts.tiles, parts.download, api_visibility="private", show_progress="hidden"
    )
    _connect_parts(services, shared, parts)
    return event


def _live_parts(parts: TabParts) -> list[gr.components.Component]:
    return [
        *(parts.poll, parts.seen, parts.progress, parts.live),
        *(parts.gallery, parts.tiles, parts.download),
    ]


def _started(parts: TabParts, previews: bool) -> Updates:
    """The old tiles go at once (a click while the run renders must not pin their seeds),
    the poll starts, the progress line and the live preview show."""
    return {
        parts.poll: gr.Timer(active=True),
        parts.seen: None,
        parts.progress: gr.update(value=runner.WAITING, visible=True),
        parts.live: gr.update(value=None, visible=previews),
        parts.gallery: [],
        parts.tiles: [],
        parts.download: gr.update(visible=False),
    }


def _ended(parts: TabParts) -> Updates:
    return {
        parts.poll: gr.Timer(active=False),
        parts.seen: None,
        parts.progress: gr.update(visible=False),
        parts.live: gr.update(visible=False),
    }


def _connect_parts(services: Services, shared: SharedInputs, parts: TabParts) -> None:
    """Pin on click (a tile, or a seed under the live preview), the poll, and Stop."""

    def pin_tile(shown: list[TileRef], manifest: Manifest, evt: gr.SelectData) -> Updates:
        if not isinstance(evt.index, int) or not 0 <= evt.index < len(shown):
            return gr.skip()
        tile = shown[evt.index]
        if tile.entry is not None:
            manifest.pin(tile.entry, tile.index)
        return shared.show_pin(Pin.of_tile(tile)) | {shared.manifest: manifest}

    def look(seen: Sight | None, request: gr.Request) -> Updates:
        """The run's progress line and newest frame, when they are not the ones shown."""
        latest = services.live.latest(request.session_hash)
        if latest is None or (seen is not None and seen.number == latest.number):
            return gr.skip()
        shown = {parts.progress: latest.line, parts.seen: latest}
        frame = latest.frame
        if frame is not None and (seen is None or seen.frame != frame):
            shown[parts.live] = frame.path
        return shown

    def pin_preview(seen: Sight | None, evt: gr.SelectData) -> Updates:
        """Still rendering: the seed under the click, no tile to grow from yet."""
        index = evt.index if isinstance(evt.index, (list, tuple)) else ()
        frame = seen and seen.frame
        seed = frame.seed_at(*index[:2]) if frame and len(index) >= 2 else None
        return gr.skip() if seed is None else shared.show_pin(Pin(seed))

    def stop(request: gr.Request) -> None:
        if not services.runs.stop(request.session_hash):
            gr.Info("Nothing is running.")

    pin_outputs = [*shared.pin_outputs(), shared.manifest]
    parts.gallery.select(pin_tile, [parts.tiles, shared.manifest], pin_outputs, **UI_ONLY)
    parts.poll.tick(look, parts.seen, [parts.live, parts.progress, parts.seen], **UI_ONLY)
    parts.live.select(pin_preview, parts.seen, shared.pin_outputs(), **UI_ONLY)
    parts.stop.click(stop, None, None, **UI_ONLY)


def connect_shared(shared: SharedInputs) -> None:
    """A seed typed by hand is not the pinned tile any more, nor its variation."""
    shared.pinned_seed.input(
        lambda: {shared.pin: None, shared.pin_note: ""},
        None,
        [shared.pin, shared.pin_note],
        **UI_ONLY,
    )
