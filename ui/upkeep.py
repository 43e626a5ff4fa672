"""What keeps a public app up for weeks: the files it served expire, and a session that
leaves takes all that was kept for it.

Served files are the session folders (tiles, live frames, zips, manifests, the Travel WebP,
the Matrix grid; ui/context.py) and Gradio's own cache (uploads, copies of files handed to
it). Gradio's `delete_cache=(frequency, age)` would age them all alike, an open page's tiles
too, so the sweep here does it instead: a file goes once it is older than `age`, unless its
session's page is still open in a browser or a run of it is going; a session whose files are
all gone is forgotten. The outputs folder (the user's saved renders) is never touched.

Gradio also remembers every file it served (each component's `temp_files`) and every
session's state (about 260 KiB of page config apiece, kept up to 10,000 sessions): both are let go
here too, or memory grows with every visitor.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder, is_in_or_equal

from ui.context import Services

log = logging.getLogger("seed_explorer")

EXPIRE_AFTER = 3600  # seconds; as long as Gradio holds a closed session's state
LONGEST_WAIT = 600  # seconds between two sweeps at most


def sweep(services: Services, blocks: gr.Blocks, age: float, now: float | None = None) -> int:
    """Deletes the served files older than `age` seconds that nobody is looking at; returns
    how many went."""
    cutoff = (time.time() if now is None else now) - age
    removed = 0
    for session, folder, is_open in services.sessions():
        if is_open or services.runs.going(session):
            continue
        try:
            files = list(folder.iterdir())
            old = [path for path in files if path.lstat().st_mtime < cutoff]
        except FileNotFoundError:  # its tab closed, or a live frame was replaced, meanwhile
            continue
        if len(old) == len(files):
            services.forget(session)  # all of it expired: the folder and what was kept
        else:
            for path in old:
                path.unlink(missing_ok=True)
        removed += len(old)
    return removed + _sweep_gradio_files(blocks, services.served, cutoff)


def _sweep_gradio_files(blocks: gr.Blocks, served: Path, cutoff: float) -> int:
    """Gradio's uploads and copies older than the cutoff go (aged by ctime, as Gradio's own
    `delete_cache` ages them); the names of files gone are let go from its sets."""
    kept = set().union(*(block.keep_in_cache for block in blocks.blocks.values()))
    upload_folder = Path(get_upload_folder())
    removed = 0
    for names in blocks.temp_file_sets:
        for name in list(names):
            path = Path(name)
            if is_in_or_equal(name, str(served)) or name in kept:
                if not path.exists():  # ours went with its session: forget its name
                    names.discard(name)
                continue
            try:
                if path.lstat().st_ctime >= cutoff:
                    continue
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            names.discard(name)
            if path.parent != upload_folder:  # Gradio keeps each file in a folder of its own
                with suppress(OSError):
                    path.parent.rmdir()
    return removed


def keep_sweeping(services: Services, blocks: gr.Blocks, age: float) -> threading.Thread:
    """Sweeps in the background every tenth of `age` (at most every LONGEST_WAIT seconds), so
    a file lives between `age` and 1.1 x `age`."""
    every = min(max(age / 10, 1.0), LONGEST_WAIT)

    def forever() -> None:
        while True:
            time.sleep(every)
            try:
                sweep(services, blocks, age)
            except Exception:  # a sweep that fails is tried again; the app keeps serving
                log.exception("Expiring served files failed")

    thread = threading.Thread(target=forever, name="expire-served-files", daemon=True)
    thread.start()
    return thread


def release_state(blocks: gr.Blocks, session: str) -> None:
    """Gradio's state of a session that has left: its page config and gr.State values. Gradio
    keeps it for an hour to reconnect to, but the session's files are gone by then, and the
    state object itself is only dropped at its 10,000-session capacity."""
    holder = getattr(blocks, "state_holder", None)  # set once the app is served
    if holder is None:
        return
    with holder.lock:
        holder.session_data.pop(session, None)
        holder.time_last_used.pop(session, None)
