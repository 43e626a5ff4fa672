"""--compile: its warm-up, its recompiles (torch._dynamo's counters) and its gain.

    python -m benchmarks.compile                 # tiny model, CPU (inductor needs a C compiler)
    python -m benchmarks.compile --device cuda

Two engines on two copies of the tiny model, one compiled as the app compiles it
(`pipeline.accel.apply`). The compiled one first renders a grid of 8 (two calls of 4) at 2
steps: its warm-up, when inductor compiles. Then rounds alternate between both engines: a grid
of 6 with DPM++ 2M (its last call padded to 4), a grid of 1 with Euler (float timesteps), at
`--steps` each; any recompile in them shows in the counters.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import statistics

import torch
from torch._dynamo.utils import counters

from benchmarks import report
from benchmarks.probe import PROMPT
from benchmarks.timing import seconds
from pipeline import accel
from pipeline.engine import Engine
from pipeline.loading import LoadedModel
from pipeline.requests import GridRequest
from pipeline.tiny import build_tiny_pipeline


def engine(device: str, compiled: bool) -> Engine:
    pipe = build_tiny_pipeline().to(device)
    speedups = accel.Speedups.for_device(device, compile=compiled)
    accel.apply(pipe, speedups)
    return Engine(LoadedModel(pipe, "tiny", device, torch.float32, 0.0), speedups=speedups)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compile", description=__doc__)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(report.machine(), end="\n\n")
    plain, compiled = engine(args.device, False), engine(args.device, True)
    torch._dynamo.reset()
    counters.clear()
    warm_up, _ = seconds(lambda: compiled.run(GridRequest(PROMPT, tuple(range(8)), steps=2)))
    after_warm_up = counters["frames"]["total"]
    plain.run(GridRequest(PROMPT, tuple(range(8)), steps=2))
    work = [
        GridRequest(PROMPT, tuple(range(6)), steps=args.steps, scheduler="DPM++ 2M"),
        GridRequest(PROMPT, (7,), steps=args.steps, scheduler="Euler"),
    ]
    times: dict[str, list[float]] = {"compiled": [], "plain": []}
    for index in range(args.repeats):
        order = [("compiled", compiled), ("plain", plain)]
        for name, side in order if index % 2 == 0 else order[::-1]:
            times[name].append(seconds(lambda e=side: [e.run(r) for r in work])[0])
    ratio = statistics.median(c / p for c, p in zip(times["compiled"], times["plain"], strict=True))
    recompiles = counters["frames"]["total"] - after_warm_up
    on, off = (statistics.median(times[name]) for name in ("compiled", "plain"))
    rows = [
        ["warm-up: grid of 8 at 2 steps, compiling, s", f"{warm_up:.1f}"],
        ["compiles during the warm-up", after_warm_up],
        ["recompiles after it (grid of 6, its last call padded; grid of 1, Euler)", recompiles],
        [f"compiled, s (median: grid of 6 and grid of 1 at {args.steps} steps)", f"{on:.2f}"],
        ["not compiled, s (median)", f"{off:.2f}"],
        ["compiled / not (median of rounds)", f"{ratio:.3f}"],
    ]
    print(report.table(["what", "value"], rows))


if __name__ == "__main__":
    main()
