"""A run from click to gallery: live previews while it denoises, Stop, then the tiles.

The engine renders in a worker thread; this generator forwards its previews to the gallery
as they come, so Gradio streams them. Finished tiles are written once as PNGs with their
recipe (served to the browser, and kept in the outputs folder when saving is on) and entered
in the session manifest.
"""

from __future__ import annotations

import hashlib
import io
import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from pipeline.contact_sheet import contact_sheet, zip_bundle
from pipeline.engine import Engine, Hooks, RenderError, Stopped
from pipeline.manifest import Manifest
from pipeline.metadata import png_bytes
from pipeline.outputs import OutputFolder
from pipeline.plan import Plan
from pipeline.recipe import Tile
from pipeline.requests import RequestError
from ui.runs import Runs
from ui.state import TileRef

if TYPE_CHECKING:
    from ui.tabs import TabSpec

log = logging.getLogger("seed_explorer")

# gallery, tiles, status, manifest
Update = tuple[Any, Any, Any, Any]
STATUS_EVERY = 0.25  # seconds between progress lines sent to the browser


@dataclass(frozen=True)
class Services:
    """What every session's handlers share: the engine and where tiles go."""

    engine: Engine
    outputs: OutputFolder | None = None
    previews: bool = True
    runs: Runs = field(default_factory=Runs)
    served: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="seed-explorer-")))

    def folder(self, session: str) -> Path:
        """Where one browser session's served files go, apart from every other session's."""
        folder = self._folder_of(session)
        folder.mkdir(exist_ok=True)
        return folder

    def forget(self, session: str) -> None:
        """The session has ended (its tab closed): its served files go."""
        shutil.rmtree(self._folder_of(session), ignore_errors=True)

    def _folder_of(self, session: str) -> Path:
        # Named by a hash: the session id comes from the client and never becomes a path.
        return self.served / hashlib.sha256(session.encode()).hexdigest()[:24]


def run(
    services: Services,
    spec: TabSpec,
    plan: Plan,
    manifest: Manifest,
    parent: TileRef | None,
    session: str,
) -> Iterator[Update]:
    """Streams previews, then the tiles; a refusal or a fault becomes a toast."""
    stop = services.runs.start(session)
    events: queue.Queue = queue.Queue()
    started = time.monotonic()
    labels = [spec.label(plan, index) for index in range(plan.tiles)]
    hooks = Hooks(
        progress=lambda fraction, text: events.put(("progress", fraction, text)),
        preview=(lambda first, images: events.put(("preview", first, images)))
        if services.previews
        else None,
        stop=stop,
    )
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["tiles"] = services.engine.render(plan, hooks)
        except Exception as error:  # reported to the user below, after the thread ends
            outcome["error"] = error
        finally:
            events.put(None)

    worker = threading.Thread(target=work, name=f"render-{spec.kind}", daemon=True)
    worker.start()
    shown: list[Any] = [None] * len(labels)
    last_status = 0.0
    try:
        # The old tiles go: a click while this runs must not pin a seed from the last run.
        yield [], [], "Waiting for the model…", gr.skip()
        finished = False
        while not finished:
            # Everything that came while the last update went out, as one update: Gradio sends
            # one update at a time, so updates sent one per event would pile up behind a slow
            # one and hold the tiles back after the render ends.
            waiting = _waiting(events)
            finished = waiting[-1] is None  # the worker's last word
            previews = [event for event in waiting if event and event[0] == "preview"]
            progressed = [event for event in waiting if event and event[0] == "progress"]
            for _, first, images in previews:
                shown[first : first + len(images)] = images
            gallery = (
                [(im, f"{labels[i]} · preview") for i, im in enumerate(shown) if im]
                if previews
                else gr.skip()
            )
            line = None
            if progressed and (
                time.monotonic() - last_status > STATUS_EVERY or progressed[-1][1] >= 1
            ):
                last_status = time.monotonic()
                line = progress_line(*progressed[-1][1:], started)
            if previews or line:
                yield gallery, gr.skip(), line or gr.skip(), gr.skip()
    finally:
        if worker.is_alive():  # the browser went away: stop rendering for nobody
            stop.set()
        worker.join()
        services.runs.finish(session, stop)
    if "error" in outcome:
        yield _refusal(outcome["error"])
        return
    yield finish(services, spec, outcome["tiles"], manifest, parent, services.folder(session))


def finish(
    services: Services,
    spec: TabSpec,
    tiles: list[Tile],
    manifest: Manifest,
    parent: TileRef | None,
    folder: Path,
) -> Update:
    """Writes the tiles' PNGs (served from the session's `folder`), enters them in the
    manifest, and says what was rendered."""
    notes = []
    encoded = [png_bytes(tile.image, tile.recipe) for tile in tiles]  # once, for both copies
    saved: list[str | None] = [None] * len(tiles)
    if services.outputs is not None:
        try:
            for index, tile in enumerate(tiles):
                saved[index] = str(services.outputs.save(tile, encoded[index]))
        except OSError as error:
            done = sum(path is not None for path in saved)
            notes.append(f"saved {done} of {len(tiles)} to the outputs folder, then: {error}")
    entry = manifest.append(spec.kind, tiles, parent and (parent.entry, parent.index), saved)
    caption = spec.caption
    refs = []
    for index, tile in enumerate(tiles):
        path = folder / f"{entry:04d}-{index:02d}-{tile.recipe.seed}.png"
        path.write_bytes(encoded[index])  # a temporary copy: no fsync, unlike a saved tile
        refs.append(TileRef(tile.recipe, str(path), caption(tile), entry, index, saved[index]))
    if any(services.engine.truncated(prompt) for prompt in {t.recipe.prompt for t in tiles}):
        notes.append("the prompt is longer than the model reads (77 tokens): the tail is ignored")
        gr.Warning("Prompt truncated: the model reads the first 77 tokens; the tail is ignored.")
    if saved[0] is not None:
        notes.append(f"saved to {Path(saved[0]).parent}")
    items = [(ref.file, ref.caption) for ref in refs]
    return items, refs, " · ".join([summary(tiles), *notes]), manifest


def bundle(tiles: list[TileRef], folder: Path) -> str:
    """ "Download all": the tiles' PNGs (recipes kept) and a labelled contact sheet, zipped."""
    if not tiles:
        raise gr.Error("Download all: nothing rendered yet", print_exception=False)
    images = [Image.open(ref.file) for ref in tiles]
    first = tiles[0].recipe
    footer = [
        first.prompt.removesuffix(first.suffix or "")
    ]  # a refinement's prompt before its suffix
    if first.negative_prompt:
        footer.append(f"Negative prompt: {first.negative_prompt}")
    footer.append(
        f"{first.sampler}, {first.steps} steps, CFG {first.guidance_scale:g}, "
        f"{first.width}x{first.height}, model {first.model_id}"
    )
    sheet = contact_sheet(images, [ref.caption for ref in tiles], footer)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    files = [(Path(ref.file).name, Path(ref.file).read_bytes()) for ref in tiles]
    entry = tiles[0].entry
    name = f"seed-explorer-{first.kind}-{entry if entry is not None else 'loaded'}.zip"
    return str(zip_bundle(files, buffer.getvalue(), folder, name))


def summary(tiles: list[Tile]) -> str:
    """One line under a gallery: what was rendered and how long it took."""
    first = tiles[0].recipe
    seconds = sum(t.seconds for t in tiles)  # each tile's share of the call that rendered it
    seeds = ", ".join(str(s) for s in dict.fromkeys(t.recipe.seed for t in tiles))
    return (
        f"{len(tiles)} tiles · seeds {seeds} · {first.width}x{first.height} · "
        f"CFG {first.guidance_scale:g} · {seconds:.1f} s"
    )


def _waiting(events: queue.Queue) -> list:
    """The next event (waiting for it) and every other one already queued behind it."""
    waiting = [events.get()]
    while waiting[-1] is not None:
        try:
            waiting.append(events.get_nowait())
        except queue.Empty:
            break
    return waiting


def progress_line(fraction: float, text: str, started: float) -> str:
    """ "DDIM: step 12/50 · 24% · about 9 s left": the run's progress as the status line."""
    line = f"{text} · {fraction:.0%}"
    elapsed = time.monotonic() - started
    if 0 < fraction < 1 and elapsed > 1:
        line += f" · about {elapsed * (1 - fraction) / fraction:.0f} s left"
    return line


def parent(pinned: TileRef | None, seed: int) -> TileRef | None:
    """The pinned tile a refinement or comparison grows from, when the seed is still its."""
    if pinned is None or pinned.entry is None or pinned.seed != seed:
        return None
    return pinned


def _refusal(error: Exception) -> Update:
    """A refused or failed run as a toast; the gallery stays empty, the app keeps serving."""
    if isinstance(error, Stopped):
        gr.Info(str(error))
        return [], [], f"{error}.", gr.skip()
    if isinstance(error, (RequestError, RenderError)):
        raise gr.Error(str(error), print_exception=False)
    log.error("Render failed", exc_info=error)
    raise gr.Error(f"Render failed ({type(error).__name__}: {error}). The app is still running.")
