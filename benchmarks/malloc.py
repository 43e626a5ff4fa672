"""Plain diffusers on the CPU with glibc's malloc as it comes, and as the app sets it.

    python -m benchmarks.malloc                  # 4 pairs of fresh processes, 3 renders each
    python -m benchmarks.malloc --pairs 6 --renders 4 --steps 50

Each side is a fresh process (the setting is for a whole process) that renders the tiny
model's grid of 8 with the diffusers guides' call, after a warm-up; the pairs alternate
which side starts. Per render: wall seconds, CPU seconds and minor page faults (fresh pages
the kernel zeroes and maps), from /proc/self/stat. Linux with glibc only, as the setting
(pipeline/malloc.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as benchmarks/e2e.py, for the same reason

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import date

from benchmarks import report, server
from benchmarks.probe import PROMPT, SCHEDULER
from benchmarks.timing import process_counters

SIDES = ("as it comes", "as the app sets it")


def worker(tuned: bool, renders: int, steps: int) -> list[dict[str, float]]:
    """In this process: the setting (or not), then `renders` timed grids of 8."""
    from benchmarks import models
    from benchmarks.run import Plain
    from pipeline.engine import Engine
    from pipeline.malloc import keep_freed_memory

    if tuned and not keep_freed_memory():
        raise SystemExit("glibc's malloc could not be set here")
    plain = Plain(Engine(models.tiny("cpu")))
    seeds = list(range(8))
    plain(SCHEDULER, [PROMPT] * 8, seeds, 2)
    results = []
    for _ in range(renders):
        faults, cpu = process_counters()
        started = time.perf_counter()
        plain(SCHEDULER, [PROMPT] * 8, seeds, steps)
        wall = time.perf_counter() - started
        after_faults, after_cpu = process_counters()
        results.append({"wall": wall, "cpu": after_cpu - cpu, "faults": after_faults - faults})
    return results


def side(tuned: bool, renders: int, steps: int) -> list[dict[str, float]]:
    command = [sys.executable, "-m", "benchmarks.malloc", "--worker", str(int(tuned))]
    command += ["--renders", str(renders), "--steps", str(steps)]
    done = subprocess.run(command, cwd=server.ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.malloc",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--renders", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--worker", type=int, choices=[0, 1], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(bool(args.worker), args.renders, args.steps)))
        return
    started = time.perf_counter()
    print(report.machine(), flush=True)
    command = f"python -m benchmarks.malloc --pairs {args.pairs} --renders {args.renders}"
    print(f"\nCommand: `{command} --steps {args.steps}` on {date.today()}.", flush=True)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SIDES}
    for pair in range(args.pairs):
        order = SIDES if pair % 2 == 0 else SIDES[::-1]
        for name in order:
            results[name] += side(name == SIDES[1], args.renders, args.steps)
    rows = []
    for name, renders in results.items():
        faults = [r["faults"] for r in renders]
        rows.append(
            [
                f"glibc's malloc {name}",
                *(f"{statistics.median(r[key] for r in renders):.2f}" for key in ("wall", "cpu")),
                f"{statistics.median(faults):,.0f}",
                f"{min(faults):,.0f} to {max(faults):,.0f}",
                len(renders),
            ]
        )
    header = [
        f"plain diffusers, tiny, grid of 8, {args.steps} steps", "wall s (median)",
        "CPU s (median)", "minor page faults (median)", "faults (range)", "renders",
    ]  # fmt: skip
    print("\n" + report.table(header, rows))
    print("\n" + report.whole_run(started))


if __name__ == "__main__":
    main()
