"""The run each browser session has going, so that session's Stop button can reach it.

On a ZeroGPU Space the render runs in a forked process, where a flag set in this process's
memory would never arrive. A `StopFlag` is a file: Stop creates it, the render (in whichever
process) checks that it exists between steps, a stat call that costs microseconds.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path


class StopFlag:
    """A stop flag any process on this machine can see; picklable (it is a path)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self) -> None:
        self.path.touch()

    def is_set(self) -> bool:
        return self.path.exists()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class Runs:
    """Stop flags by session (a session may have several runs going or waiting); Stop sets
    every one of the session's flags, which the engine checks between steps."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder or Path(tempfile.mkdtemp(prefix="seed-explorer-stops-"))
        self._flags: dict[str, list[StopFlag]] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> StopFlag:
        flag = StopFlag(self._folder / uuid.uuid4().hex)
        with self._lock:
            self._flags.setdefault(session, []).append(flag)
        return flag

    def going(self, session: str) -> bool:
        """Whether the session has a run going (its files are being written)."""
        with self._lock:
            return session in self._flags

    def stop(self, session: str) -> bool:
        """Stops the session's runs; False when it has none going."""
        with self._lock:
            flags = list(self._flags.get(session, ()))
        for flag in flags:
            flag.set()
        return bool(flags)

    def finish(self, session: str, flag: StopFlag) -> None:
        with self._lock:
            flags = self._flags.get(session, [])
            if flag in flags:
                flags.remove(flag)
            if not flags:
                self._flags.pop(session, None)
        flag.clear()
