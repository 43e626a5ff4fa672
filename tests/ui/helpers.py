"""What the UI tests share."""

import threading
import time
from collections.abc import Callable
from typing import Any

from ui.context import Services
from ui.live import Frame


def live_frames(services: Services) -> list[Frame]:
    """Every live frame the runner draws, in order (the last is dropped when the run ends)."""
    frames: list[Frame] = []
    show = services.live.show
    services.live.show = lambda *args: frames.append(show(*args)) or frames[-1]  # type: ignore[method-assign]
    return frames


def live_lines(services: Services) -> list[str]:
    """Every progress line the runner keeps for the browser's poll, in order."""
    lines: list[str] = []
    say = services.live.say
    services.live.say = lambda session, line: lines.append(line) or say(session, line)  # type: ignore[method-assign]
    return lines


def in_the_background(run: Callable[[], Any]) -> Callable[[], Any]:
    """Starts `run` on a thread; the function returned waits for its result."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", run()))
    thread.start()

    def wait() -> Any:
        thread.join(timeout=300)
        return result["value"]

    return wait


def wait_for(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
