"""The run each browser session has going, so that session's Stop button can reach it."""

from __future__ import annotations

import threading


class Runs:
    """Stop flags by session; Stop sets the flag the engine checks between steps."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        flag = threading.Event()
        with self._lock:
            self._flags[session] = flag
        return flag

    def stop(self, session: str) -> bool:
        """Stops the session's run; False when it has none going."""
        with self._lock:
            flag = self._flags.get(session)
        if flag is None:
            return False
        flag.set()
        return True

    def finish(self, session: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(session) is flag:
                del self._flags[session]
