"""What every tab and every session's handlers share: the engine, where tiles go, the render,
the runs going and their live frames. Built once per app (ui/demo.py) and handed down."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from gradio.utils import get_upload_folder

from pipeline.admission import Admission
from pipeline.engine import Engine
from pipeline.outputs import OutputFolder
from pipeline.preview import PREVIEW_INTERVAL
from ui.live import Live
from ui.render import Render, render_stream
from ui.runs import Runs

# Every event that runs the model shares one Gradio concurrency group; how many of them reach
# the engine at once, and in what order, is the Admission's (pipeline/admission.py).
MODEL_QUEUE = "model"
# With step sharing, model events let through at once (Gradio's thread pool holds 40): the
# Admission renders some and lines up the rest; without it, one, in Gradio's own queue.
MODEL_RUNS = 32


def _served() -> Path:
    """A folder inside Gradio's file cache: Gradio serves a file there as it is, where it
    would hash and copy one from anywhere else."""
    cache = Path(get_upload_folder())
    cache.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="seed-explorer-", dir=cache))


@dataclass(frozen=True)
class Services:
    """The app-wide context: the engine, the outputs folder, previews on or off, each
    session's runs and live frame, the served files, the line in front of the engine, and
    the render."""

    engine: Engine
    outputs: OutputFolder | None = None
    previews: bool = True
    runs: Runs = field(default_factory=Runs)
    live: Live = field(default_factory=Live)
    served: Path = field(default_factory=_served)
    preview_interval: float = PREVIEW_INTERVAL
    admission: Admission = field(default_factory=lambda: Admission(1))
    render: Render = field(init=False)
    # Each served folder's session (by folder name), and the sessions whose page is open in a
    # browser: what the upkeep (ui/upkeep.py) may expire and what it must keep.
    _sessions: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _open: set[str] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "render", render_stream(self.engine))

    @property
    def model_runs(self) -> int:
        """How many model events Gradio lets through to the Admission at once."""
        return MODEL_RUNS if self.admission.slots > 1 else 1

    def folder(self, session: str) -> Path:
        """Where one browser session's served files go, apart from every other session's."""
        folder = self._folder_of(session)
        with self._lock:
            self._sessions[folder.name] = session
        folder.mkdir(exist_ok=True)
        return folder

    def readable(self, session: str) -> tuple[Path, ...]:
        """The folders a path from a client (a manifest, a recipe) may point into: the
        outputs folder and this session's own served folder, never anywhere else."""
        outputs = () if self.outputs is None else (self.outputs.root,)
        return (*outputs, self.folder(session))

    def tile_path(self, session: str, entry: int, index: int, seed: int) -> Path:
        """The served PNG of the manifest's tile (entry, index): the one name the runner
        writes it under and History finds it by."""
        return self.folder(session) / f"{entry:04d}-{index:02d}-{seed}.png"

    def opened(self, session: str) -> None:
        """A browser opened the page: its files stay, however old, until it closes."""
        with self._lock:
            self._open.add(session)

    def sessions(self) -> list[tuple[str, Path, bool]]:
        """Every session with a served folder: its id, its folder, whether its page is open."""
        with self._lock:
            return [
                (session, self.served / name, session in self._open)
                for name, session in self._sessions.items()
            ]

    def forget(self, session: str) -> None:
        """The session has ended (its tab closed, or its files expired): its served files
        go, and all the app kept for it."""
        folder = self._folder_of(session)
        with self._lock:
            self._sessions.pop(folder.name, None)
            self._open.discard(session)
        shutil.rmtree(folder, ignore_errors=True)
        self.live.forget(session)

    def _folder_of(self, session: str) -> Path:
        # Named by a hash: the session id comes from the client and never becomes a path.
        return self.served / hashlib.sha256(session.encode()).hexdigest()[:24]
