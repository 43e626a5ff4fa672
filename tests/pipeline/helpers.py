"""Test helpers: watching a model's calls, stopping a run part way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pipeline.engine import Engine
from pipeline.rendering import Hooks
from pipeline.requests import GridRequest


def record_calls(
    monkeypatch: pytest.MonkeyPatch,
    model: object,
    measure: Callable[[Any], Any],
    method: str = "forward",
) -> list[Any]:
    """`measure(first argument)` of every call of `model`'s class's `method` from now on
    (a pipeline decodes through `vae.decode`, never the VAE's `forward`)."""
    seen: list[Any] = []
    cls = type(model)
    original = getattr(cls, method)

    def recording(self, first, *args, **kwargs):
        seen.append(measure(first))
        return original(self, first, *args, **kwargs)

    monkeypatch.setattr(cls, method, recording)
    return seen


def stopping_after(calls: int) -> tuple[Hooks, list[str]]:
    """Hooks that press Stop at the `calls`-th progress report, and the reports' texts."""
    hooks = Hooks()
    seen: list[str] = []

    def report(fraction: float, text: str) -> None:
        seen.append(text)
        if len(seen) == calls:
            hooks.stop.set()

    hooks.progress = report
    return hooks, seen


def assert_coloured_previews(engine: Engine, side: int) -> None:
    """The first live preview of a 4-step tile of `side` px is that size and in colour (the
    family's own preview factors, not the grey fallback)."""
    previews: list = []
    hooks = Hooks(preview=lambda first, images: previews.extend(images), preview_interval=0)
    request = GridRequest("a lighthouse at dusk", "1", steps=4, width=side, height=side)
    engine.render(engine.plan(request), hooks)
    assert previews and previews[0].size == (side, side)
    rgb = np.asarray(previews[0], dtype=np.int16)
    assert (rgb[..., 0] != rgb[..., 2]).any()
