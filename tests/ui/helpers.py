"""What the UI tests share."""

from ui.live import Frame
from ui.runner import Services


def live_frames(services: Services) -> list[Frame]:
    """Every live frame the runner draws, in order (the last is dropped when the run ends)."""
    frames: list[Frame] = []
    show = services.live.show
    services.live.show = lambda *args: frames.append(show(*args)) or frames[-1]  # type: ignore[method-assign]
    return frames
