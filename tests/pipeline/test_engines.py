"""Every device in the box: one engine per device, each run to the least-loaded one, and a
tile the same on every device of one type."""

import threading

import numpy as np

import app
from pipeline.engines import Engines
from pipeline.rendering import Hooks
from pipeline.requests import GridRequest

REQUEST = GridRequest("a lighthouse", (3, 8), steps=2, width=32, height=32)


def test_devices_cpu_cpu_serve_two_runs_at_once_with_identical_tiles() -> None:
    """The first run holds its engine until the second has finished: the second can only
    finish on the other engine, with its own copy of the model."""
    engines = app.create_engine(app.parse_args(["--model", "tiny", "--devices", "cpu,cpu"]))
    assert isinstance(engines, Engines) and engines.runs_at_once == 2
    first, second = engines.engines
    assert first.model.pipe is not second.model.pipe
    second_done = threading.Event()
    held: list[bool] = []
    results: dict[str, list] = {}

    def hold(fraction: float, text: str) -> None:
        if not held:
            held.append(second_done.wait(timeout=20))

    def first_run() -> None:
        results["first"] = engines.run(REQUEST, Hooks(progress=hold, preview=None))

    worker = threading.Thread(target=first_run)
    worker.start()
    while engines.in_flight == (0, 0):
        threading.Event().wait(0.01)
    results["second"] = engines.run(REQUEST)
    second_done.set()
    worker.join(timeout=60)
    assert held == [True], "the second run waited for the first one's engine"
    assert engines.in_flight == (0, 0)
    for a, b in zip(results["first"], results["second"], strict=True):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
        assert a.recipe == b.recipe
