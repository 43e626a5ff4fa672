"""Step-level sharing: one denoising loop per engine, where every run's lanes meet.

A run (a grid, a refinement, a comparison, a variation, a travel, a matrix) hands its lanes
(pipeline/lockstep.py: one image each, with its own scheduler, timestep, guidance, generator
and step count) to the engine's `StepScheduler` and waits. The scheduler's one thread makes
denoiser calls: at every step boundary lanes that can share a call (the same `Key`: call
shape, size, the family's extras, the scale the denoiser itself reads, dtype and device) go
through one call; each lane steps with its own slice and leaves when it is done. A run that
arrives while another denoises joins at the next call, so continuous batching, as vLLM does
for text, serves images.

**Fair by call, not by run.** Each call is filled run by run, least recently served run first,
one lane per run per pass (a run's least advanced lane), until its rows are full: a one-tile
run that arrives during a 16-tile run takes part in every call and finishes in about its own
steps' time, while the big run's lanes take turns in the rows left.

**Fixed call shapes: a tile never depends on who shared its calls.** Pixels depend on the
shape of the call that made them (batched matrix products round differently), so every call is
padded to exactly `rows` rows (copies of its last row). Measured on the CPU (tests/pipeline/
test_sharing.py): in a call of a fixed shape a row's output is bit-identical whatever the
other rows hold and wherever it sits, for the UNets and the flow transformers. A lane
rendered alone goes through the same loop, in calls of the same shape, so a tile rendered
while sharing is bit-identical to the tile rendered alone, and its recipe (`call_rows`)
replays it bit-exact. Each tile is decoded alone, by its own run, for the same reason. The
price is the padding: a lone one-tile run pays for `rows` rows (docs/PERFORMANCE.md).

**A run's failure is its own.** A call that fails is made again run by run (the same shape,
so the same pixels): the run whose lanes fail it ends with that error, the others go on. Stop
is heard at every step boundary, and a stopped run's lanes leave the loop at once.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline import lockstep
from pipeline.families import Embedding
from pipeline.lockstep import Guidance, Lane

# Rows per denoiser call by device type when `--max-batch` is not given: a GPU does a batch of
# 8 images with CFG for far less than 8 batches of 1; a CPU's call costs about its rows, so
# there a call holds two images with CFG (padding a lone tile costs one image more).
DEFAULT_ROWS = {"cuda": 16, "mps": 8, "cpu": 4}


def default_rows(device: str) -> int:
    """The rows of a shared call on this device (`--max-batch`'s default)."""
    return DEFAULT_ROWS.get(device.split(":")[0], DEFAULT_ROWS["cpu"])


Key = tuple[Any, ...]


@dataclass(eq=False)
class _Entry:
    """A lane in the loop: its guidance, the rows it takes in a call, what it may share."""

    lane: Lane
    guidance: Guidance
    run: _Run
    rows: int
    key: Key


@dataclass(eq=False)
class _Run:
    """One run's lanes, how it hears of its calls, and how it ended."""

    rows: int
    stop: Any  # anything with is_set(), as Hooks.stop
    on_call: Callable[[], None]
    arrival: int
    entries: list[_Entry] = field(default_factory=list)
    served: int = -1  # the last call it took part in
    error: BaseException | None = None
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def pending(self) -> list[_Entry]:
        return [entry for entry in self.entries if not entry.lane.finished]


class StepScheduler:
    """The engine's denoising loop: runs submit lanes, calls are shared and fair.

    `calls` counts the denoiser calls made and `rows_used` the rows in them that were real
    (not padding): what the benchmarks report.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._runs: list[_Run] = []
        self._arrivals = itertools.count()
        self._worker: threading.Thread | None = None
        self.calls = 0
        self.rows_used = 0
        self.rows_made = 0

    def denoise(
        self,
        lanes: Sequence[tuple[Lane, Guidance]],
        rows: int,
        stop: Any,
        on_call: Callable[[], None],
    ) -> None:
        """Every lane denoised to its end (or until `stop` is set) in calls of `rows` rows
        shared with other runs' lanes; `on_call` after each call the run took part in, on the
        loop's thread. Raises what failed the run's own lanes."""
        with self._lock:
            run = _Run(rows, stop, on_call, next(self._arrivals))
            for lane, guidance in lanes:
                need = _rows_of(lane, guidance)
                if need > rows:
                    raise ValueError(
                        f"an image takes {need} rows, more than a call's {rows} (--max-batch)"
                    )
                run.entries.append(_Entry(lane, guidance, run, need, _key(lane, guidance, rows)))
            if not run.pending:
                return
            self._runs.append(run)
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, name="denoise", daemon=True)
                self._worker.start()
            self._lock.notify_all()
        run.ended.wait()
        if run.error is not None:
            raise run.error

    def _loop(self) -> None:
        """Calls until no run is left; then the thread ends (a new run starts another)."""
        while True:
            with self._lock:
                for run in [run for run in self._runs if run.stop.is_set()]:
                    self._end(run)
                if not self._runs:
                    self._worker = None
                    return
                chosen = self._choose()
            self._call(chosen)

    def _choose(self) -> list[_Entry]:
        """The next call's lanes: the least recently served run's kind of call, filled run by
        run (least recently served first), one lane per run per pass, each run's least
        advanced lane first, until its rows are full."""
        runs = sorted(self._runs, key=lambda run: (run.served, run.arrival))
        key = min(runs[0].pending, key=lambda entry: entry.lane.done).key
        queues = [
            sorted((e for e in run.pending if e.key == key), key=lambda e: e.lane.done)
            for run in runs
        ]
        rows = key[0]
        chosen: list[_Entry] = []
        used = 0
        while any(queues):
            for queue in queues:
                if queue and used + queue[0].rows <= rows:
                    used += queue[0].rows
                    chosen.append(queue.pop(0))
            if all(not queue or used + queue[0].rows > rows for queue in queues):
                break
        return chosen

    def _call(self, chosen: list[_Entry]) -> None:
        """One shared call, each lane stepped; a failure ends only the run it belongs to."""
        runs = list(dict.fromkeys(entry.run for entry in chosen))
        rows = chosen[0].key[0]
        try:
            predictions = lockstep.predict([(e.lane, e.guidance) for e in chosen], rows)
            made = list(zip(chosen, predictions, strict=True))
        except Exception as error:
            made = []
            if len(runs) == 1:
                self._fail(runs[0], error)
                runs = []
            for run in runs:  # again run by run, in calls of the same shape
                own = [entry for entry in chosen if entry.run is run]
                try:
                    own_predictions = lockstep.predict([(e.lane, e.guidance) for e in own], rows)
                except Exception as own_error:
                    self._fail(run, own_error)
                    continue
                made += zip(own, own_predictions, strict=True)
        self.calls += 1
        self.rows_made += rows
        self.rows_used += sum(entry.rows for entry, _ in made)
        for run in dict.fromkeys(entry.run for entry, _ in made):
            try:
                for entry, prediction in made:
                    if entry.run is run:
                        lockstep.advance(entry.lane, prediction)
                run.on_call()
            except Exception as error:
                self._fail(run, error)
                continue
            with self._lock:
                run.served = self.calls
                if not run.pending:
                    self._end(run)

    def _fail(self, run: _Run, error: BaseException) -> None:
        with self._lock:
            run.error = error
            self._end(run)

    def _end(self, run: _Run) -> None:
        """The run leaves the loop (the caller holds the lock)."""
        if run in self._runs:
            self._runs.remove(run)
        run.ended.set()


def _rows_of(lane: Lane, guidance: Guidance) -> int:
    """The rows a lane's next evaluation takes: its images, twice under CFG."""
    cfg = guidance.family.cfg_scale(lane.view, guidance.scale, guidance.true_cfg)
    return lane.latents.shape[0] * (1 if cfg is None else 2)


def _key(lane: Lane, guidance: Guidance, rows: int) -> Key:
    """What lanes sharing a call must have in common: the call's rows first."""
    latents = lane.latents
    return (
        rows,
        lane.size,
        json.dumps(guidance.extras, sort_keys=True, default=str),
        guidance.family.call_scale(lane.view, guidance.scale),
        tuple(latents.shape[1:]),
        latents.dtype,
        str(latents.device),
        # Texts of their own lengths (Chroma, Z-Image, Qwen-Image) are padded to the longest in
        # a call: only texts of the same lengths share one, so its shape is the lane's own.
        _tokens(lane.prompt),
        _tokens(lane.negative),
    )


def _tokens(text: Embedding) -> int | None:
    """A masked text's token count (its call's shape depends on it); None: a fixed length."""
    return None if text.mask is None else text.hidden.shape[1]
