"""Interleaved timing (A B, B A, A B, ...): drift, noisy neighbours and order hit both alike."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Pair:
    """Seconds of the app side and of the plain side, one entry per round."""

    app: list[float]
    plain: list[float]
    pixel_diff: int | None = None

    @property
    def ratio(self) -> float:
        """Median of the per-round ratios app/plain (paired, so robust to drift)."""
        return statistics.median(a / p for a, p in zip(self.app, self.plain, strict=True))


def process_counters(pid: int | str = "self") -> tuple[int, float]:
    """A process's minor page faults and CPU seconds (user + system, all threads) so far;
    Linux only (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seconds(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def interleave(
    app: Callable[[], list[Image.Image]],
    plain: Callable[[], list[Image.Image]],
    repeats: int,
) -> Pair:
    """`repeats` rounds of one app and one plain run, the order flipping every round (warm the
    model up first). Also compares the last images of both sides: same work, same pixels.
    """
    times: dict[str, list[float]] = {"app": [], "plain": []}
    last: dict[str, list[Image.Image]] = {"app": [], "plain": []}
    sides = {"app": app, "plain": plain}
    for round_index in range(repeats):
        order = ("app", "plain") if round_index % 2 == 0 else ("plain", "app")
        for side in order:
            took, last[side] = seconds(sides[side])
            times[side].append(took)
    return Pair(times["app"], times["plain"], max_pixel_diff(last["app"], last["plain"]))


def per_call_ms(fn: Callable[[], Any], calls: int) -> float:
    """Median of five batches of `calls` calls, in milliseconds per call."""
    batches = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        batches.append((time.perf_counter() - started) / calls * 1000)
    return statistics.median(batches)


def max_pixel_diff(left: list[Image.Image], right: list[Image.Image]) -> int | None:
    """Largest difference of any uint8 channel between two image lists; None if shapes differ."""
    if len(left) != len(right) or any(a.size != b.size for a, b in zip(left, right, strict=True)):
        return None
    return max(
        int(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max())
        for a, b in zip(left, right, strict=True)
    )
