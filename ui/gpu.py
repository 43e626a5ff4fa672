"""ZeroGPU: on a Hugging Face Space with ZeroGPU hardware, a GPU is attached per call.

`spaces.GPU` asks for the GPU while the wrapped function runs. Everywhere else (no `spaces`
package) the function is returned as it is, so the app runs unchanged on a laptop or in CI.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def _spaces() -> ModuleType | None:
    try:
        return importlib.import_module("spaces")
    except ImportError:
        return None


# ZeroGPU patches torch when `spaces` is imported, which must happen before CUDA starts: the
# app imports this module before it loads the model.
_spaces()


def gpu(fn: F, duration: int | None = None) -> F:
    """`fn` running on a ZeroGPU GPU (for at most `duration` seconds) where there is one."""
    spaces = _spaces()
    if spaces is None:
        return fn
    if duration is None:
        return spaces.GPU(fn)
    return spaces.GPU(duration=duration)(fn)
