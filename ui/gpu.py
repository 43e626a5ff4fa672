"""ZeroGPU: on a Hugging Face Space with ZeroGPU hardware, a GPU is attached per call.

`spaces.GPU` runs the wrapped function in a forked worker process that holds the GPU while it
runs. So only the render itself is wrapped (ui/runner.py's `render_stream`): its arguments and
what it yields cross between the processes (pickled), and whatever it changes in memory stays
in the worker. Stop reaches it through a file (ui/runs.py's StopFlag); the manifest, the files
and the tiles' PNGs are written in the main process, which never touches CUDA itself.

Everywhere else (no `spaces` package) the function is returned as it is, so the app runs
unchanged on a laptop or in CI.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from pipeline.plan import Matrix, Plan

F = TypeVar("F", bound=Callable)

# What a ZeroGPU call is granted: a fixed start-up allowance plus a share per image-step, for
# SD 1.5-sized work (about 40 image-steps a second on a shared H200 slice, with CFG), at
# most ZeroGPU's longest call.
SECONDS_AT_START = 10
SECONDS_PER_IMAGE_STEP = 0.025
LONGEST_CALL = 300


def _spaces() -> ModuleType | None:
    try:
        return importlib.import_module("spaces")
    except ImportError:
        return None


# ZeroGPU patches torch when `spaces` is imported, which must happen before CUDA starts: the
# app imports this module before it loads the model.
_spaces()


def zerogpu() -> bool:
    """Whether renders may run in ZeroGPU's forked processes, where runs cannot share a
    denoising loop (the `spaces` package is there)."""
    return _spaces() is not None


def gpu(fn: F, duration: int | Callable[..., int] | None = None) -> F:
    """`fn` running on a ZeroGPU GPU (for at most `duration` seconds, or what `duration`
    returns for the call's arguments) where there is one."""
    spaces = _spaces()
    if spaces is None:
        return fn
    if duration is None:
        return spaces.GPU(fn)
    return spaces.GPU(duration=duration)(fn)


def render_duration(plan: Plan | Matrix, *_: Any) -> int:
    """Seconds to ask ZeroGPU for: sized from the plan's work (every tile's steps)."""
    pixels = plan.width * plan.height / 512**2  # cost grows with the image's area
    seconds = SECONDS_AT_START + plan.image_steps * SECONDS_PER_IMAGE_STEP * pixels
    return min(LONGEST_CALL, round(seconds))
