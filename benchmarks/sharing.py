"""Many people at once, end to end: step sharing against one lock, through launched apps.

    python -m benchmarks.sharing                     # both scenarios, 2 rounds
    python -m benchmarks.sharing --rounds 1 --max-batch 8

Two apps are launched as the README launches one (`python app.py --model tiny`), one with
its defaults (runs share denoiser calls) and one with `--no-share-steps` (one run at a time
under the model lock), and driven by gradio_client in rounds whose order alternates, so a
noisy neighbour slows both alike:

- **latency**: one client renders 16 tiles at 40 steps; once it has started, 8 clients each
  send 1-tile 8-step runs, one after another; p50 and p95 of those runs' seconds;
- **throughput**: 8 clients each send a grid of 4 tiles at 20 steps at once; images/s;
- **calls**: denoiser calls per image for the throughput workload, counted in this process
  on engines set up as the two apps are (a hook on the denoiser's forward).

Small on purpose: a 2-core machine shared with others (few rounds; see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as benchmarks/e2e.py: no spinning

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from gradio_client import Client

from benchmarks import report, server
from pipeline.engine import Engine
from pipeline.loading import load_model
from pipeline.requests import GridRequest
from pipeline.sharing import default_rows

SIDES = {"sharing": (), "one lock": ("--no-share-steps",)}
CLIENTS = 8
SIZE = {"width": 64, "height": 64}
BIG = {"prompt": "a city at night", "seeds": "0-15", "steps": 40, **SIZE}
SMALL = {"prompt": "a red kite", "steps": 8, **SIZE}
SMALL_RUNS = 2  # per client, one after another, while the big run renders
EACH = {"prompt": "a harbour", "steps": 20, **SIZE}  # the throughput grid: 4 tiles a client


def latency(url: str) -> list[float]:
    """Seconds of each small run sent while the big one renders."""
    big = Client(url, verbose=False).submit(**BIG, api_name="/grid")
    while big.status().code.name not in ("PROCESSING", "PROGRESS", "ITERATING"):
        time.sleep(0.05)

    def small(client_index: int) -> list[float]:
        client = Client(url, verbose=False)
        times = []
        for run in range(SMALL_RUNS):
            seed = str(100 + client_index * SMALL_RUNS + run)
            started = time.perf_counter()
            client.predict(seeds=seed, **SMALL, api_name="/grid")
            times.append(time.perf_counter() - started)
        return times

    with ThreadPoolExecutor(CLIENTS) as pool:
        runs = [t for times in pool.map(small, range(CLIENTS)) for t in times]
    big.result(timeout=600)
    return runs


def throughput(url: str) -> float:
    """Images per second for 8 clients sending a 4-tile grid each, at once."""
    start = threading.Barrier(CLIENTS)

    def one(index: int) -> int:
        client = Client(url, verbose=False)
        start.wait(timeout=120)
        gallery, _ = client.predict(seeds=f"{index * 4}-{index * 4 + 3}", **EACH, api_name="/grid")
        return len(gallery)

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        images = sum(pool.map(one, range(CLIENTS)))
    return images / (time.perf_counter() - started)


def calls_per_image(max_batch: int | None) -> float:
    """Denoiser calls per image for the throughput workload, on an engine in this process."""
    model = load_model("tiny", device="cpu")
    engine = Engine(model, max_batch=max_batch)
    calls = [0]
    hook = model.family.denoiser(model.pipe).register_forward_pre_hook(
        lambda module, args: calls.__setitem__(0, calls[0] + 1)
    )
    requests = [
        GridRequest(EACH["prompt"], f"{i * 4}-{i * 4 + 3}", steps=EACH["steps"], **SIZE)
        for i in range(CLIENTS)
    ]
    try:
        threads = [threading.Thread(target=engine.run, args=(r,)) for r in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        hook.remove()
    return calls[0] / (4 * CLIENTS)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sharing", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--max-batch", type=int, default=0, help="rows per shared call (0: the CPU's default)"
    )
    args = parser.parse_args(argv)
    rows = args.max_batch or default_rows("cpu")
    started = time.perf_counter()
    small: dict[str, list[float]] = {side: [] for side in SIDES}
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    with (
        server.launched(
            "cpu", ("--model", "tiny", "--no-save", "--max-batch", str(rows))
        ) as shared,
        server.launched("cpu", ("--model", "tiny", "--no-save", *SIDES["one lock"])) as one,
    ):
        urls = {"sharing": shared.url, "one lock": one.url}
        for side in SIDES:  # warm-up: the first runs load what later runs reuse
            Client(urls[side], verbose=False).predict(seeds="0", **SMALL, api_name="/grid")
        for number in range(args.rounds):
            order = list(SIDES) if number % 2 == 0 else list(reversed(SIDES))
            for side in order:
                small[side] += latency(urls[side])
                rates[side].append(throughput(urls[side]))
    calls = {"sharing": calls_per_image(rows), "one lock": calls_per_image(None)}
    table = [
        [
            side,
            f"{statistics.median(small[side]):.2f}",
            f"{percentile(small[side], 0.95):.2f}",
            f"{statistics.median(rates[side]):.2f}",
            f"{calls[side]:.2f}",
        ]
        for side in SIDES
    ]
    print(f"\n{report.machine()}; {args.rounds} rounds; {rows} rows per shared call")
    header = ["side", "small run p50 s", "p95 s", "8 x 4 tiles, images/s", "calls per image"]
    print(report.table(header, table))
    print(report.whole_run(started))


if __name__ == "__main__":
    main()
