"""A soak: many people using a launched app for a long time. Memory and disk must stay flat.

    python -m benchmarks.soak --runs 1000 --clients 8
    python -m benchmarks.soak --runs 1000 --clients 8 --session-runs 1000 --expire-after 60
                                     # visitors who never leave: only expiry frees their files

`python app.py --model tiny` (saving to a scratch folder, Gradio's cache in a scratch folder of
its own) is driven by `--clients` gradio_client threads sending mixed runs (grid, refine,
compare, vary, matrix) at 32 px and 2 steps. Each client is a visitor: it opens a session,
sends `--session-runs` runs and leaves (its session closes, as a tab does). Every tenth run
repeats an earlier one and counts the tiles whose pixels differ.

Every `--every` seconds the app's RSS and the disk it serves from (its session folders and
Gradio's cache; not the outputs folder, which is the user's) are sampled. **Flat** means the
least-squares line through the last quarter of the samples, against runs done, rises by less
than `--flat` (2 %) of its level, or less than `--flat-mb` (1 MB: the saw-tooth of files
written and expired), per 1000 runs.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gradio_client import Client
from PIL import Image

from benchmarks import report, server

SMALL = {"steps": 2, "width": 32, "height": 32}
REPEAT_EVERY = 10
REPEAT_AGO = 45  # runs: long done when its repeat comes


def request(number: int) -> tuple[str, dict[str, Any]]:
    """Run `number` of the soak: the endpoint and its arguments, a different kind each time."""
    seed = number % 97
    prompt = f"a lighthouse, number {number % 13}"
    kinds = [
        ("/grid", {"seeds": f"{seed}-{seed + 3}", "scheduler": "Euler", **SMALL}),
        ("/refine", {"seed": str(seed), "suffixes": ", oil\n, ink", "scheduler": "DDIM", **SMALL}),
        ("/compare", {"seed": str(seed), "schedulers": ["Euler", "DDIM"], **SMALL}),
        ("/vary", {"seed": str(seed), "variation_seeds": "1, 2", "strength": 0.3, **SMALL}),
        (
            "/matrix",
            {
                "seed": str(seed),
                "x_axis": "Seed",
                "x_values": f"{seed}, {seed + 1}",
                "y_axis": "CFG scale",
                "y_values": "5, 9",
                **SMALL,
            },
        ),
    ]
    endpoint, arguments = kinds[number % len(kinds)]
    return endpoint, {"prompt": prompt, **arguments}


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    done: int = 0
    errors: list[str] = field(default_factory=list)
    repeated: int = 0  # tiles rendered again
    differing: int = 0  # of them, tiles whose pixels differ
    first: dict[int, list[np.ndarray]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def pixels(gallery: list[dict]) -> list[np.ndarray]:
    out = []
    for tile in gallery:
        with Image.open(tile["image"]) as image:
            out.append(np.asarray(image.convert("RGB")))
    return out


def visitor(url: str, numbers: Iterator[int], tally: Tally, session_runs: int, folder: str) -> None:
    """One client after another, each sending `session_runs` runs, until the runs run out."""
    while True:
        batch = list(itertools.islice(numbers, session_runs))
        if not batch:
            return
        client = Client(url, verbose=False, download_files=folder)
        try:
            for number in batch:
                one_run(client, number, tally)
        finally:
            client.close()  # the session ends, as a closed tab's does


def one_run(client: Client, number: int, tally: Tally) -> None:
    """Run `number`; every tenth repeats the one REPEAT_AGO runs before it (kept for that)."""
    original = number - REPEAT_AGO if number % REPEAT_EVERY == REPEAT_EVERY - 1 else number
    endpoint, arguments = request(max(original, 0))
    try:
        gallery, _ = client.predict(**arguments, api_name=endpoint)
        tiles = pixels(gallery)
    except Exception as error:  # counted and shown: the soak keeps going
        with tally.lock:
            tally.errors.append(f"run {number} {endpoint}: {type(error).__name__}: {error}")
            tally.done += 1
        return
    for tile in gallery:
        Path(tile["image"]).unlink(missing_ok=True)  # the client's copy; only the app's counts
    with tally.lock:
        tally.done += 1
        if (number + REPEAT_AGO) % REPEAT_EVERY == REPEAT_EVERY - 1:
            tally.first[number] = tiles  # to be repeated
        elif original in tally.first:
            before = tally.first.pop(original)
            tally.repeated += len(tiles)
            tally.differing += sum(
                not np.array_equal(a, b) for a, b in zip(before, tiles, strict=True)
            )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def disk_mb(folder: Path) -> tuple[float, int]:
    """Bytes and files under `folder` (vanishing files, as the app deletes them, are skipped)."""
    size = count = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
                count += 1
            except FileNotFoundError:
                pass
    return size / 2**20, count


def slope_per_1000(samples: list[tuple[int, float]]) -> float:
    """The least-squares slope of value against runs done, per 1000 runs."""
    runs = [float(r) for r, _ in samples]
    values = [v for _, v in samples]
    if len(set(runs)) < 2:
        return 0.0
    return statistics.linear_regression(runs, values).slope * 1000


def verdict(
    samples: list[tuple[int, float]], flat: float, floor: float
) -> tuple[str, float, float]:
    """'flat' or 'rising' over the last quarter, its slope per 1000 runs and its level."""
    quarter = samples[len(samples) * 3 // 4 :]
    slope = slope_per_1000(quarter)
    level = statistics.fmean(value for _, value in quarter)
    return ("flat" if slope < max(flat * level, floor) else "rising"), slope, level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--session-runs", type=int, default=10, help="runs per visitor")
    parser.add_argument("--expire-after", type=float, help="the app's flag (its default)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument(
        "--settle", type=float, default=40.0, help="seconds sampled after the last run"
    )
    parser.add_argument("--minutes", type=float, default=0, help="stop sending after this")
    parser.add_argument("--flat", type=float, default=0.02, help="flat: rise per 1000 runs")
    parser.add_argument(
        "--flat-mb", type=float, default=1.0, help="flat: or a rise under this many MB"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    print(report.machine(), "\n")
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        cache = Path(scratch, "gradio")
        cache.mkdir()
        os.environ["GRADIO_TEMP_DIR"] = str(cache)  # the launched app's cache, and only its
        app_args = ["--model", "tiny", "--outputs", str(Path(scratch, "outputs"))]
        if args.expire_after is not None:
            app_args += ["--expire-after", str(args.expire_after)]
        with server.launched("cpu", app_args) as app:
            samples, running, tally = soak(app, args, cache, Path(scratch, "downloads"))
    print_results(samples, running, tally, args, started)


Sample = tuple[float, int, float, float, int]  # seconds, runs done, RSS MB, disk MB, files


def soak(
    app: server.App, args: argparse.Namespace, cache: Path, downloads: Path
) -> tuple[list[Sample], int, Tally]:
    """The clients sending their runs while the app is sampled: the samples, how many of them
    were taken while runs were going, and the tally."""
    tally = Tally()
    numbers = iter(range(args.runs))
    lock = threading.Lock()

    def next_numbers() -> Iterator[int]:
        deadline = time.perf_counter() + args.minutes * 60 if args.minutes else None
        while deadline is None or time.perf_counter() < deadline:
            with lock:
                number = next(numbers, None)
            if number is None:
                return
            yield number

    threads = [
        threading.Thread(
            target=visitor,
            args=(app.url, next_numbers(), tally, args.session_runs, str(downloads / str(i))),
        )
        for i in range(args.clients)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    samples: list[Sample] = []
    settled = None  # when the last visitor left; sampling goes on while their sessions close
    running = 0
    while settled is None or time.perf_counter() - settled < args.settle:
        if settled is None and not any(thread.is_alive() for thread in threads):
            settled, running = time.perf_counter(), len(samples)
        disk, files = disk_mb(cache)
        samples.append((time.perf_counter() - began, tally.done, rss_mb(app.pid), disk, files))
        seconds, done, rss = samples[-1][:3]
        print(
            f"{seconds:7.0f} s  {done:5d} runs  RSS {rss:7.1f} MB  served {disk:6.2f} MB in "
            f"{files} files  errors {len(tally.errors)}",
            flush=True,
        )
        time.sleep(args.every)
    return samples, running, tally


def print_results(
    samples: list[Sample], running: int, tally: Tally, args: argparse.Namespace, started: float
) -> None:
    print()
    step = max(1, len(samples) // 12)
    shown = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    print(
        report.table(
            ["seconds", "runs done", "app RSS (MB)", "served disk (MB)", "served files"],
            [(f"{s:.0f}", r, f"{m:.1f}", f"{d:.2f}", f) for s, r, m, d, f in shown],
        )
    )
    print()
    rows = []
    for name, index in (("RSS", 2), ("served disk", 3)):
        said, slope, level = verdict(
            [(s[1], s[index]) for s in samples[:running]], args.flat, args.flat_mb
        )
        rows.append((name, f"{level:.1f} MB", f"{slope:+.2f} MB", said))
    print(report.table(["last quarter", "mean", "slope per 1000 runs", "verdict"], rows))
    last = samples[-1]
    print(
        f"\n{args.settle:g} s after the last visitor left: RSS {last[2]:.1f} MB, served "
        f"{last[3]:.2f} MB in {last[4]} files."
    )
    print()
    print(
        f"{tally.done} of {args.runs} runs from {args.clients} clients, {args.session_runs} per "
        f"session, --expire-after {args.expire_after or 'default'}; errors {len(tally.errors)}; "
        f"repeated tiles {tally.repeated}, differing {tally.differing}."
    )
    for error in tally.errors[:10]:
        print(f"  {error}")
    print(report.whole_run(started))


if __name__ == "__main__":
    main()
