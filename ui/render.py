"""The render as a stream of events: progress, previews, then the tiles or what went wrong.

On a ZeroGPU Space the render runs in a forked process (ui/gpu.py), so its arguments and its
events are plain, picklable values: dataclasses of numbers, text, PIL images and tiles. The
engine is that process's copy (inherited, never sent). Elsewhere it runs here, in a thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PIL import Image

from pipeline.engine import Engine
from pipeline.plan import Matrix, Plan
from pipeline.recipe import Tile
from pipeline.rendering import Hooks
from ui.gpu import gpu, render_duration
from ui.runs import StopFlag


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1 of the run's work
    text: str  # "DDIM: step 12/50"


@dataclass(frozen=True)
class Preview:
    first: int  # the index of the first tile shown
    images: list[Image.Image]


@dataclass(frozen=True)
class Rendered:
    tiles: list[Tile]


@dataclass(frozen=True)
class Failed:
    error: Exception  # a refusal, Stop, or a fault: the runner says which


Event = Progress | Preview | Rendered | Failed
Render = Callable[[Plan | Matrix, StopFlag, float | None], Iterator[Event]]


def render_stream(engine: Engine) -> Render:
    """The engine's render as a generator of events, asking ZeroGPU for a GPU sized from the
    plan; `preview_interval` None: no previews."""

    def render(
        plan: Plan | Matrix, stop: StopFlag, preview_interval: float | None
    ) -> Iterator[Event]:
        events: queue.Queue[Event | None] = queue.Queue()
        hooks = Hooks(
            progress=lambda fraction, text: events.put(Progress(fraction, text)),
            preview=None
            if preview_interval is None
            else lambda first, images: events.put(Preview(first, images)),
            preview_interval=preview_interval or 0.0,
            stop=stop,
        )

        def work() -> None:
            try:
                events.put(Rendered(engine.render(plan, hooks)))
            except Exception as error:  # reported to the user by the runner
                events.put(Failed(error))
            finally:
                events.put(None)

        threading.Thread(target=work, name="render", daemon=True).start()
        while (event := events.get()) is not None:
            yield event

    return gpu(render, duration=render_duration)
