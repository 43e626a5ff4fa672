"""Fair admission: runs reach the engine in arrival order, and no one person fills the line.

At most `slots` runs render at once (with step sharing, many: their lanes share the loop's
calls; with one lock, one). A run beyond them waits its turn, told how many runs are ahead
of it; a person (a browser session, or an API client's) may have at most `per_session` runs
rendering or waiting, so one person's runs cannot starve everyone else's.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.rendering import RenderError, Stopped

DEFAULT_PER_SESSION = 2
SHARED_SLOTS = 16  # runs rendering at once with step sharing
WAIT_POLL_S = 0.25  # how often a waiting run looks at its Stop and its place in line


class Busy(RenderError):
    """The person already has as many runs going or waiting as one may."""


class Admission:
    """The line in front of the engine; safe to share between threads."""

    def __init__(self, slots: int, per_session: int = DEFAULT_PER_SESSION) -> None:
        if slots < 1 or per_session < 1:
            raise ValueError("slots and runs per session must be at least 1")
        self.slots = slots
        self.per_session = per_session
        self._line: list[int] = []  # tickets waiting, in arrival order
        self._rendering = 0
        self._held: Counter[str] = Counter()
        self._tickets = itertools.count()
        self._changed = threading.Condition()

    @contextmanager
    def enter(self, session: str, stop: Any, waiting: Callable[[int], None]) -> Iterator[None]:
        """Hold a slot for one run of `session` while the block runs; until one is free,
        wait in line, `waiting(runs ahead)` told each time that count changes (the runs
        waiting before it, and a render that must end first when every slot is taken).
        Raises Busy over the per-session cap and Stopped when `stop` is set while waiting."""
        with self._changed:
            if self._held[session] >= self.per_session:
                raise Busy(
                    f"You already have {self._held[session]} runs going or waiting, the most "
                    f"one person may (--max-runs-per-session {self.per_session}): wait for "
                    "one to finish, or Stop it"
                )
            self._held[session] += 1
            ticket = next(self._tickets)
            self._line.append(ticket)
        rendering = False
        try:
            told = None
            while True:
                with self._changed:
                    ahead = self._line.index(ticket) + max(0, self._rendering - self.slots + 1)
                    if self._line[0] == ticket and self._rendering < self.slots:
                        self._line.pop(0)
                        self._rendering += 1
                        rendering = True
                        break
                if stop.is_set():
                    raise Stopped("Stopped while waiting for the model")
                if ahead != told:
                    waiting(ahead)
                    told = ahead
                with self._changed:
                    self._changed.wait(WAIT_POLL_S)
            yield
        finally:
            with self._changed:
                if rendering:
                    self._rendering -= 1
                else:
                    self._line.remove(ticket)
                self._held[session] -= 1
                if not self._held[session]:
                    del self._held[session]
                self._changed.notify_all()
