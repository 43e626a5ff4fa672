"""What live previews cost a run: the runner with previews on against off, in one process.

    python -m benchmarks.previews              # 6 rounds: tiny grid of 8, 512 stand-in grid of 4
    python -m benchmarks.previews --repeats 10

Both sides are the app's own run (ui/runner.py's `run_plan`: the render in its thread, progress,
the tiles written; no outputs folder), on one engine; the previews side also makes every live
frame the browser would fetch (latents to RGB on the previews' thread, the frame drawn and its
JPEG written by the runner). In one process, rounds alternating, so the two sides differ only
by the previews: the end-to-end rows (benchmarks/e2e.py) compare two launched apps, whose
round-to-round noise on a small CPU is larger than what is measured here.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as benchmarks/e2e.py, for the same reason

import argparse
import statistics
import time
from datetime import date

from benchmarks import models, report
from benchmarks.probe import PROMPT, SCHEDULER
from benchmarks.timing import seconds
from pipeline.engine import Engine
from pipeline.loading import LoadedModel
from pipeline.manifest import Manifest
from pipeline.requests import GridRequest
from ui import runner, specs
from ui.context import Services


def row(model: LoadedModel, count: int, steps: int, repeats: int) -> list[object]:
    """One grid, previews on and off, alternating; its medians, ratio and frames per run."""
    engine = Engine(model)
    size = model.native_size
    plan = engine.plan(
        GridRequest(
            PROMPT, tuple(range(count)), scheduler=SCHEDULER, steps=steps, width=size, height=size
        )
    )
    sides = {"on": Services(engine), "off": Services(engine, previews=False)}
    frames: list[int] = []
    show = sides["on"].live.show

    def counted(*args: object) -> object:
        frames.append(1)
        return show(*args)  # type: ignore[arg-type]

    sides["on"].live.show = counted  # type: ignore[method-assign]

    def render(services: Services) -> None:
        runner.run_plan(services, specs.GRID, plan, Manifest(model.model_id), None, "bench")

    for services in sides.values():  # warm-up, untimed
        render(services)
    times: dict[str, list[float]] = {side: [] for side in sides}
    frames.clear()
    for round_index in range(repeats):
        order = ("on", "off") if round_index % 2 == 0 else ("off", "on")
        for side in order:
            times[side].append(seconds(lambda s=sides[side]: render(s))[0])
    ratio = statistics.median(a / b for a, b in zip(times["on"], times["off"], strict=True))
    return [
        f"grid of {count}, {steps} steps",
        f"{model.model_id}, {size}px",
        f"{statistics.median(times['on']):.2f}",
        f"{statistics.median(times['off']):.2f}",
        f"{ratio:.3f}",
        f"{len(frames) / repeats:.1f}",
        "met" if ratio <= 1.05 else "**no**",
        repeats,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.previews",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    started = time.perf_counter()
    print(report.machine(), flush=True)
    print(f"\nCommand: `python -m benchmarks.previews --repeats {args.repeats}` on {date.today()}.")
    rows = [
        row(models.tiny("cpu"), 8, 20, args.repeats),
        row(models.stand_in("cpu"), 4, 20, args.repeats),
    ]
    header = [
        "work", "model", "previews on, s", "off, s", "on / off", "frames per run",
        "target: on / off ≤ 1.05", "rounds",
    ]  # fmt: skip
    print("\n" + report.table(header, rows))
    print("\n" + report.whole_run(started))


if __name__ == "__main__":
    main()
