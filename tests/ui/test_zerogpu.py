"""ZeroGPU for real: the render runs in a forked process, as `spaces.GPU` runs it on a Space.

The stand-in below does what ZeroGPU does with a generator function: asks for a duration
computed from the call's arguments, pickles the arguments, runs the function in a process
forked from this one and pickles back everything it yields. Whatever the render changes in
its own memory is lost with that process, so grid, previews, Stop and the manifest must work
through files and yielded values alone.
"""

import multiprocessing
import os
import pickle
import types
from pathlib import Path

import pytest

from pipeline.engine import Engine
from pipeline.manifest import Manifest
from pipeline.metadata import read_png
from pipeline.outputs import OutputFolder
from pipeline.planner import Planner
from pipeline.requests import CompareRequest, GridRequest, Limits, MatrixRequest
from tests.ui.helpers import in_the_background, live_frames, live_lines, wait_for
from ui import gpu, runner, specs
from ui.context import Services


class ForkedGPU:
    """`spaces.GPU` as ZeroGPU runs it, for generator functions."""

    def __init__(self) -> None:
        self.durations: list[int] = []
        self.pids: list[int] = []

    def GPU(self, fn=None, duration=None):  # spaces.GPU
        if fn is None:
            return lambda inner: self.GPU(inner, duration)

        def in_a_fork(*args):
            self.durations.append(duration(*args) if callable(duration) else duration)
            sent = pickle.dumps(args)  # ZeroGPU sends the arguments through a queue
            context = multiprocessing.get_context("fork")
            results = context.Queue()

            def child() -> None:
                results.put(("pid", os.getpid()))
                try:
                    for item in fn(*pickle.loads(sent)):
                        results.put(("item", item))
                    results.put(("done", None))
                except BaseException as error:
                    results.put(("raise", error))

            process = context.Process(target=child, daemon=True)
            process.start()
            try:
                while True:
                    kind, value = results.get(timeout=300)
                    if kind == "pid":
                        self.pids.append(value)
                    elif kind == "item":
                        yield value
                    elif kind == "raise":
                        raise value
                    else:
                        return
            finally:
                process.join(timeout=60)

        return in_a_fork


@pytest.fixture
def zerogpu(monkeypatch: pytest.MonkeyPatch) -> ForkedGPU:
    forked = ForkedGPU()
    monkeypatch.setattr(gpu, "_spaces", lambda: types.SimpleNamespace(GPU=forked.GPU))
    return forked


def test_a_grid_streams_live_frames_and_tiles_from_the_forked_render(
    engine: Engine, zerogpu: ForkedGPU, tmp_path: Path
) -> None:
    services = Services(engine, OutputFolder(tmp_path / "outputs"), preview_interval=0)
    frames = live_frames(services)
    manifest = Manifest("tiny")
    plan = engine.plan(GridRequest("a lighthouse", (3, 4), steps=8))
    outcome = runner.run_plan(services, specs.GRID, plan, manifest, None, "session")
    items, refs, status = outcome.items, outcome.tiles, outcome.status

    assert zerogpu.pids and os.getpid() not in zerogpu.pids
    assert zerogpu.durations == [10]  # asked once, for this plan: 16 small image-steps
    # The previews came from the fork; the live frame is drawn here, where the browser polls.
    assert frames and frames[-1].seeds == (3, 4)
    assert status.startswith("2 tiles · seeds 3, 4") and "saved to" in status
    # The manifest and the files are this process's: written here from the yielded tiles.
    assert [e["kind"] for e in manifest.entries] == ["grid"]
    assert [read_png(file)[1].seed for file, _ in items] == [3, 4]
    assert all(Path(ref.saved).is_file() for ref in refs)


SD15 = {"width": 512, "height": 512}


@pytest.mark.parametrize(
    ("request_", "seconds"),
    [
        (GridRequest("a", "0-3", steps=20, **SD15), 12),  # 80 image-steps: 10 + 80 / 40
        (GridRequest("a", "0, 1", steps=8), 10),  # the tiny model's 64 px: start-up only
        (GridRequest("a", "0-3", steps=50, width=1024, height=1024), 30),  # 4x the area
        (  # in lockstep: each scheduler its own steps, 40 + 80
            CompareRequest(
                "a", 1, ("Euler", "DDIM"), scheduler_steps="Euler: 40\nDDIM: 80", **SD15
            ),
            13,
        ),
        (  # every cell: 3 seeds at 20 and at 40 steps, at 2.25x the area
            MatrixRequest("a", 1, "Seed", "1, 2, 3", "Steps", "20, 40", width=768, height=768),
            20,
        ),
    ],
    ids=["grid", "tiny", "large", "compare", "matrix"],
)
def test_a_render_asks_zerogpu_for_start_up_plus_its_image_steps_by_area(
    engine: Engine, request_: object, seconds: int
) -> None:
    """10 s to start, then 1 s per 40 image-steps at 512x512 (an H200 slice, with CFG)."""
    assert gpu.render_duration(engine.plan(request_)) == seconds


def test_a_render_asks_zerogpu_for_at_most_its_longest_call(engine: Engine) -> None:
    planner = Planner(engine.model, Limits(max_steps=1000))
    plan = planner.plan(GridRequest("a", "0-15", steps=1000, **SD15))  # 16,000 image-steps
    assert gpu.render_duration(plan) == 300


def test_stop_reaches_the_forked_render(engine: Engine, zerogpu: ForkedGPU) -> None:
    services = Services(engine, previews=False)
    plan = engine.plan(CompareRequest("a lighthouse", 1, ("Euler", "DDIM"), steps=150))
    lines = live_lines(services)
    result = in_the_background(
        lambda: runner.run_plan(services, specs.COMPARE, plan, Manifest("tiny"), None, "session")
    )
    wait_for(lambda: bool(lines) and "step" in lines[-1])  # the forked render is denoising
    assert services.runs.stop("session")
    outcome = result()
    items, refs, status = outcome.items, outcome.tiles, outcome.status
    assert (items, refs) == ([], [])
    assert status.startswith("Stopped at step") and status.endswith("of 150.")
    assert zerogpu.pids and not services.runs.stop("session")  # over, in both processes
