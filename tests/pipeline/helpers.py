"""Test helpers: watching a model's calls, stopping a run part way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pipeline.rendering import Hooks


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
