"""Images/s with 1, 4, 8 and 16 people at once on one GPU, step sharing on and off.

    python -m benchmarks.sharing_gpu                       # SD 1.5, 512x512, 20 steps, CUDA
    python -m benchmarks.sharing_gpu --model sd15          # its architecture, random weights
    python -m benchmarks.sharing_gpu --max-batch 16 --runs 4
    python -m benchmarks.sharing_gpu --model tiny --device cpu --size 32 --steps 2 --users 1 2

Each person is a thread sending 1-tile runs one after another (`--runs` each, different
seeds), as many people clicking Grid with one seed would. "on": the engine's shared loop in
calls of `--max-batch` rows (0: the device's default); "off": one run at a time under the
model lock, as `--no-share-steps` serves. One warm-up run per side first. Printed: images/s,
p50 seconds per run and denoiser calls per image, per side and number of people. On a GPU a
call of 8 images with CFG costs far less than 8 calls of one, which is where sharing pays.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # CPU threads wait without spinning

import argparse
import statistics
import threading
import time

from benchmarks import models, report
from pipeline.engine import Engine
from pipeline.loading import load_model
from pipeline.requests import GridRequest
from pipeline.sharing import default_rows

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
RANDOM = ("tiny", "mid", "sd15")  # built in memory (sd15: the real compute, CUDA only)


def people(engine: Engine, users: int, runs: int, size: int, steps: int) -> tuple[float, float]:
    """`users` threads of `runs` 1-tile runs each: images/s and the median run's seconds."""
    seconds: list[float] = []
    lock = threading.Lock()

    def person(index: int) -> None:
        for run in range(runs):
            request = GridRequest(
                "a lighthouse on a cliff at dusk, oil painting",
                str(index * runs + run),
                steps=steps,
                width=size,
                height=size,
            )
            started = time.perf_counter()
            engine.run(request)
            with lock:
                seconds.append(time.perf_counter() - started)

    threads = [threading.Thread(target=person, args=(index,)) for index in range(users)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return users * runs / (time.perf_counter() - started), statistics.median(seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sharing_gpu", description=__doc__)
    parser.add_argument("--model", default=SD15, help=f"a hub id or folder, or one of {RANDOM}")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--runs", type=int, default=3, help="1-tile runs per person")
    parser.add_argument("--max-batch", type=int, default=0, help="0: the device's default")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.model in RANDOM:  # benchmarks/models.py: no download
        model = models.build(args.model, args.device)
    else:
        model = load_model(args.model, device=args.device)
    rows = args.max_batch or default_rows(args.device)
    calls = [0]
    model.family.denoiser(model.pipe).register_forward_pre_hook(
        lambda module, inputs: calls.__setitem__(0, calls[0] + 1)
    )
    sides = {"on": Engine(model, max_batch=rows), "off": Engine(model)}
    for engine in sides.values():  # warm-up: kernels, allocator, the prompt's encoding
        people(engine, 1, 1, args.size, args.steps)
    table = []
    for users in args.users:
        for side, engine in sides.items():
            before = calls[0]
            rate, median = people(engine, users, args.runs, args.size, args.steps)
            per_image = (calls[0] - before) / (users * args.runs)
            table.append([users, side, f"{rate:.2f}", f"{median:.2f}", f"{per_image:.1f}"])
    print(
        f"\n{report.machine()}\n{args.model} on {args.device} ({model.dtype}), "
        f"{args.size}x{args.size}, {args.steps} steps, {rows} rows per shared call, "
        f"{args.runs} runs per person"
    )
    header = ["people", "sharing", "images/s", "p50 s per run", "calls per image"]
    print(report.table(header, table))
    print(report.whole_run(started))


if __name__ == "__main__":
    main()
