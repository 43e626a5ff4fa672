"""Every GPU in the box: one engine per device, each with its own copy of the model, behind one
object that answers as an engine does (pipeline/engine.py's API). Each run goes to the engine
with the fewest runs in flight; among equals, to the one idle longest.

All the engines load the same model with the same settings, so any of them plans: the plan is
the first engine's, and any engine renders it. With CPU generators (the default) a seed's noise
is the same wherever it is drawn, so a tile is the same on every device of one type.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from pipeline.card import ModelCard
from pipeline.engine import Engine
from pipeline.loading import LoadedModel
from pipeline.plan import Matrix, Plan, Request
from pipeline.recipe import Provenance, Recipe, Tile
from pipeline.rendering import Hooks
from pipeline.requests import Limits

_DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")


class DeviceError(ValueError):
    """A --devices list that cannot be served, with one line on why."""


def parse_devices(text: str) -> tuple[str, ...]:
    """'all' (every CUDA device) or a comma-separated list such as cuda:0,cuda:1; the CPU may
    be named more than once (each its own engine), a GPU once."""
    if text.strip() == "all":
        count = torch.cuda.device_count()
        if not count:
            raise DeviceError("'all' is every CUDA device, and this machine has none")
        return tuple(f"cuda:{index}" for index in range(count))
    devices: list[str] = []
    for number, entry in enumerate(text.split(","), start=1):
        device = entry.strip()
        if not _DEVICE.fullmatch(device):
            raise DeviceError(
                f"entry {number} ({device!r}) is not a device: cpu, mps, cuda or cuda:N, "
                "comma-separated, or all"
            )
        devices.append(_check_device("cuda:0" if device == "cuda" else device))
    twice = sorted({device for device in devices if devices.count(device) > 1} - {"cpu"})
    if twice:
        raise DeviceError(f"{twice[0]} is named twice: one engine per GPU")
    return tuple(devices)


def _check_device(device: str) -> str:
    """A device this machine has."""
    if device.startswith("cuda"):
        count = torch.cuda.device_count()
        if int(device.removeprefix("cuda:")) >= count:
            raise DeviceError(f"{device} is not on this machine, which has {count} CUDA devices")
    if device == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("mps is not available on this machine")
    return device


class Engines:
    """Several engines, one per device, answering as one engine; safe to share between
    threads."""

    def __init__(self, engines: Sequence[Engine]) -> None:
        if not engines:
            raise ValueError("no engines to serve with")
        self.engines = tuple(engines)
        self._lock = threading.Lock()
        self._in_flight = [0] * len(self.engines)
        self._last_started = [0] * len(self.engines)
        self._started = itertools.count(1)

    @property
    def _first(self) -> Engine:
        return self.engines[0]

    @property
    def model(self) -> LoadedModel:
        """The first device's model (every device loaded the same one)."""
        return self._first.model

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(engine.model.device for engine in self.engines)

    @property
    def in_flight(self) -> tuple[int, ...]:
        """How many runs each engine is rendering or waiting to render, in device order."""
        with self._lock:
            return tuple(self._in_flight)

    @property
    def provenance(self) -> Provenance:
        """The first device's; each tile's recipe names the device that rendered it."""
        return self._first.provenance

    @property
    def limits(self) -> Limits:
        return self._first.limits

    @property
    def micro_batch(self) -> int | None:
        return self._first.micro_batch

    @property
    def max_batch(self) -> int | None:
        return self._first.max_batch

    @property
    def runs_at_once(self) -> int:
        """Runs rendering at once without step sharing: one per engine."""
        return len(self.engines)

    @property
    def generator_device(self) -> str:
        return self._first.generator_device

    @property
    def schedulers(self) -> list[str]:
        return self._first.schedulers

    @property
    def card(self) -> ModelCard:
        return self._first.card

    def defaults(self) -> dict[str, Any]:
        return self._first.defaults()

    def scheduler_steps(self, names: Sequence[str]) -> dict[str, int]:
        return self._first.scheduler_steps(names)

    def plan(self, request: Request) -> Plan | Matrix:
        return self._first.plan(request)

    def replay_plan(self, recipe: Recipe) -> Plan:
        return self._first.replay_plan(recipe)

    def truncated(self, prompt: str) -> bool:
        return self._first.truncated(prompt)

    def run(self, request: Request, hooks: Hooks | None = None) -> list[Tile]:
        """Plan a run and render it on the least-loaded engine."""
        return self.render(self.plan(request), hooks)

    def replay(self, recipe: Recipe, hooks: Hooks | None = None) -> Tile:
        """One recipe again, in a call of the shape that rendered it, on the least-loaded
        engine."""
        return self.render(self.replay_plan(recipe), hooks)[recipe.batch_index]

    def render(self, plan: Plan | Matrix, hooks: Hooks | None = None) -> list[Tile]:
        """A plan's tiles from the engine with the fewest runs in flight."""
        with self._engine() as engine:
            return engine.render(plan, hooks)

    @contextmanager
    def _engine(self) -> Iterator[Engine]:
        """The least-loaded engine (the one idle longest among equals), counted busy while
        the caller holds it."""
        with self._lock:
            index = min(
                range(len(self.engines)),
                key=lambda i: (self._in_flight[i], self._last_started[i]),
            )
            self._in_flight[index] += 1
            self._last_started[index] = next(self._started)
        try:
            yield self.engines[index]
        finally:
            with self._lock:
                self._in_flight[index] -= 1
