"""A run from click to gallery: progress and live previews while it denoises, Stop, then
the tiles.

The render is `Services.render`: a generator of events (progress, previews, then the tiles or
the error), made by `render_stream` and wrapped for ZeroGPU (ui/gpu.py), where it runs in a
forked process; elsewhere it runs here, in a thread. This module keeps the latest progress
line and draws the previews as one live frame (ui/live.py), which the browser polls for, and
returns the finished tiles, written by ui/tiles.py, as the run's one response: an API caller
downloads each tile once (gradio_client fetches the files of every streamed update, and a
generator's last update twice) and is sent nothing it cannot show.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from gradio.utils import get_upload_folder

from pipeline.engine import Engine, Hooks, RenderError, Stopped
from pipeline.manifest import Manifest
from pipeline.outputs import OutputFolder
from pipeline.plan import Plan
from pipeline.preview import PREVIEW_INTERVAL
from pipeline.requests import RequestError
from ui.gpu import gpu, render_duration
from ui.live import Live
from ui.runs import Runs, StopFlag
from ui.state import TileRef
from ui.tiles import write_tiles

if TYPE_CHECKING:
    from ui.tabs import TabSpec

log = logging.getLogger("seed_explorer")

# gallery, tiles, status, manifest
Update = tuple[Any, Any, Any, Any]
# ("progress", fraction, text), ("preview", first tile, images), ("tiles", tiles), ("error", e)
Event = tuple[Any, ...]
Render = Callable[[Plan, StopFlag, float | None], Iterator[Event]]


def _served() -> Path:
    """A folder inside Gradio's file cache: Gradio serves a file there as it is, where it
    would hash and copy one from anywhere else."""
    cache = Path(get_upload_folder())
    cache.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="seed-explorer-", dir=cache))


@dataclass(frozen=True)
class Services:
    """What every session's handlers share: the engine, where tiles go, and the render."""

    engine: Engine
    outputs: OutputFolder | None = None
    previews: bool = True
    runs: Runs = field(default_factory=Runs)
    live: Live = field(default_factory=Live)
    served: Path = field(default_factory=_served)
    preview_interval: float = PREVIEW_INTERVAL
    render: Render = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "render", render_stream(self.engine))

    def folder(self, session: str) -> Path:
        """Where one browser session's served files go, apart from every other session's."""
        folder = self._folder_of(session)
        folder.mkdir(exist_ok=True)
        return folder

    def readable(self, session: str) -> tuple[Path, ...]:
        """The folders a path from a client (a manifest, a recipe) may point into: the
        outputs folder and this session's own served folder, never anywhere else."""
        outputs = () if self.outputs is None else (self.outputs.root,)
        return (*outputs, self.folder(session))

    def forget(self, session: str) -> None:
        """The session has ended (its tab closed): its served files go."""
        shutil.rmtree(self._folder_of(session), ignore_errors=True)

    def _folder_of(self, session: str) -> Path:
        # Named by a hash: the session id comes from the client and never becomes a path.
        return self.served / hashlib.sha256(session.encode()).hexdigest()[:24]


def render_stream(engine: Engine) -> Render:
    """The render as a generator of events, asking ZeroGPU for a GPU sized from the plan.

    Its arguments and events are plain, picklable values, since on ZeroGPU it runs in a forked
    process; the engine is that process's copy (inherited, never sent).
    """

    def render(plan: Plan, stop: StopFlag, preview_interval: float | None) -> Iterator[Event]:
        events: queue.Queue = queue.Queue()
        hooks = Hooks(
            progress=lambda fraction, text: events.put(("progress", fraction, text)),
            preview=None
            if preview_interval is None
            else lambda first, images: events.put(("preview", first, images)),
            preview_interval=preview_interval or 0.0,
            stop=stop,
        )

        def work() -> None:
            try:
                events.put(("tiles", engine.render(plan, hooks)))
            except Exception as error:  # reported to the user by the runner
                events.put(("error", error))
            finally:
                events.put(None)

        threading.Thread(target=work, name="render", daemon=True).start()
        while (event := events.get()) is not None:
            yield event

    return gpu(render, duration=render_duration)


def run(
    services: Services,
    spec: TabSpec,
    plan: Plan,
    manifest: Manifest,
    parent: TileRef | None,
    session: str,
) -> Update:
    """Renders the plan, keeping its progress and live frame for the browser's poll; returns
    the tiles. A refusal or a fault becomes a toast."""
    stop = services.runs.start(session)
    started = time.monotonic()
    labels = [spec.label(plan, index) for index in range(plan.tiles)]
    seeds = plan.seeds
    interval = services.preview_interval if services.previews else None
    shown: list[Any] = [None] * len(labels)
    outcome: dict[str, Any] = {}
    services.live.say(session, "Waiting for the model…")
    try:
        for event in services.render(plan, stop, interval):
            if event[0] == "progress":
                services.live.say(session, progress_line(*event[1:], started))
            elif event[0] == "preview":
                _, first, images = event
                shown[first : first + len(images)] = images
                services.live.show(session, services.folder(session), shown, labels, seeds)
            else:
                outcome[event[0]] = event[1]
    except Exception as error:  # the render could not start (ZeroGPU: no GPU granted)
        outcome["error"] = error
    finally:
        services.runs.finish(session, stop)
        services.live.end(session)
    if "error" in outcome:
        return _refusal(outcome["error"])
    return write_tiles(services, spec, outcome["tiles"], manifest, parent, services.folder(session))


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
