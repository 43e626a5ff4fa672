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
    """Stop flags by session; Stop sets the flag the engine checks between steps."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder or Path(tempfile.mkdtemp(prefix="seed-explorer-stops-"))
        self._flags: dict[str, StopFlag] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> StopFlag:
        flag = StopFlag(self._folder / uuid.uuid4().hex)
        with self._lock:
            self._flags[session] = flag
        return flag

    def going(self, session: str) -> bool:
        """Whether the session has a run going (its files are being written)."""
        with self._lock:
            return session in self._flags

    def stop(self, session: str) -> bool:
        """Stops the session's run; False when it has none going."""
        with self._lock:
            flag = self._flags.get(session)
        if flag is None:
            return False
        flag.set()
        return True

    def finish(self, session: str, flag: StopFlag) -> None:
        with self._lock:
            if self._flags.get(session) is flag:
                del self._flags[session]
        flag.clear()
