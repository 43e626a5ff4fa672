"""Seed Explorer against plain diffusers on the same pipeline, printed as markdown tables.

    python -m benchmarks.run                  # the full suite, CPU (about 5 minutes on 2 cores)
    python -m benchmarks.run --quick          # one round each, no mid-size model (~2 min)
    python -m benchmarks.run --device cuda    # fp16 on a GPU (untested)

Every app-versus-plain figure comes from interleaved rounds in one process (app plain, plain
app, app plain, ...), so a noisy neighbour slows both sides alike and neither side always goes
first; ratios are medians of per-round ratios. Figures from different runs are not comparable
on a shared machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import diffusers
import torch
from gradio_client import Client
from PIL import Image

from benchmarks import models, report, server
from benchmarks.probe import PROMPT
from benchmarks.report import ApiResult, Row
from benchmarks.timing import Pair, interleave, max_pixel_diff, per_call_ms, seconds
from pipeline.engine import Engine, Tile
from pipeline.loading import LoadedModel
from pipeline.requests import (
    DEFAULT_SUFFIXES,
    CompareRequest,
    GridRequest,
    RefineRequest,
    RenderSettings,
)
from pipeline.schedulers import DEFAULT_COMPARE

STEPS = 20
SEED = 8  # the scheduler guide's seed


def generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """What the diffusers guides write: one CPU generator per image."""
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def images(render: Callable[[], list[Tile]]) -> Callable[[], list[Image.Image]]:
    """The engine's tiles as plain images, so both sides can be compared."""
    return lambda: [tile.image for tile in render()]


def grid_pair(engine: Engine, tiles: int, repeats: int) -> Pair:
    pipe, seeds = engine.model.pipe, tuple(range(tiles))
    request = GridRequest(PROMPT, seeds, RenderSettings(steps=STEPS))
    return interleave(
        images(lambda: engine.grid(request)),
        lambda: (
            pipe(
                prompt=[PROMPT] * tiles, generator=generators(seeds), num_inference_steps=STEPS
            ).images
        ),
        repeats,
    )


def refine_pair(engine: Engine, repeats: int) -> Pair:
    pipe = engine.model.pipe
    request = RefineRequest(PROMPT, SEED, DEFAULT_SUFFIXES, RenderSettings(steps=STEPS))
    prompts = [PROMPT + suffix for suffix in DEFAULT_SUFFIXES]
    return interleave(
        images(lambda: engine.refine(request)),
        lambda: (
            pipe(
                prompt=prompts,
                generator=generators([SEED] * len(prompts)),
                num_inference_steps=STEPS,
            ).images
        ),
        repeats,
    )


def compare_pair(engine: Engine, repeats: int) -> Pair:
    """The engine's compare against the guide's recipe: swap the scheduler, run, repeat.

    The plain side swaps schedulers on its own `from_pipe` copy (same weights), never on the
    app's cached pipeline.
    """
    cached = engine.model.pipe
    plain = type(cached).from_pipe(cached)
    plain.set_progress_bar_config(disable=True)
    entries = [engine.registry.resolve(name) for name in DEFAULT_COMPARE]

    def plain_compare() -> list[Image.Image]:
        out = []
        for entry in entries:
            scheduler_class = getattr(diffusers, entry.class_name)
            plain.scheduler = scheduler_class.from_config(
                cached.scheduler.config, **entry.overrides
            )
            out += plain(
                prompt=[PROMPT],
                generator=generators([SEED]),
                num_inference_steps=entry.default_steps,
            ).images
        return out

    request = CompareRequest(PROMPT, SEED, DEFAULT_COMPARE)
    return interleave(images(lambda: engine.compare(request)), plain_compare, repeats)


def app_vs_plain(
    model: LoadedModel, repeats: int, grids: Sequence[int], full: bool = False
) -> list[Row]:
    """A grid per size in `grids` (with `full` also refine and compare), after a warm-up grid
    at every batch size used, 2 steps each: the first call at a batch size pays one-off costs."""
    engine = Engine(model)
    for tiles in {1, len(DEFAULT_SUFFIXES), *grids}:
        engine.grid(GridRequest(PROMPT, tuple(range(tiles)), RenderSettings(steps=2)))
    name = f"{model.model_id}, {model.native_size}px"
    rows = [
        Row(f"grid, {n} seeds, {STEPS} steps", name, grid_pair(engine, n, repeats)) for n in grids
    ]
    if full:
        total = sum(engine.registry.resolve(n).default_steps for n in DEFAULT_COMPARE)
        suffixes, schedulers = len(DEFAULT_SUFFIXES), len(DEFAULT_COMPARE)
        rows += [
            Row(f"refine, {suffixes} suffixes, {STEPS} steps", name, refine_pair(engine, repeats)),
            Row(
                f"compare, {schedulers} schedulers at their own steps ({total} in all)",
                name,
                compare_pair(engine, repeats),
            ),
        ]
    return rows


def fixed_costs(model: LoadedModel) -> dict[str, float]:
    """Milliseconds per request view (Engine._view) and per new scheduler (registry.make)."""
    engine = Engine(model)
    scheduler = engine.registry.make(engine.registry.default.name)
    costs = {"Engine._view(scheduler)": per_call_ms(lambda: engine._view(scheduler), 200)}
    for name in DEFAULT_COMPARE:
        costs[f"registry.make({name!r})"] = per_call_ms(lambda n=name: engine.registry.make(n), 200)
    return costs


def probe(*args: str) -> tuple[float, dict[str, float]]:
    """`python -m benchmarks.probe ARGS` in a fresh process: its wall seconds and its result."""
    command = [sys.executable, "-m", "benchmarks.probe", *args]
    took, done = seconds(
        lambda: subprocess.run(command, cwd=server.ROOT, capture_output=True, text=True, check=True)
    )
    return took, json.loads(done.stdout.strip().splitlines()[-1])


def api_round_trips(model: LoadedModel, device: str, repeats: int, launches: int) -> ApiResult:
    """A grid of 8 through gradio_client against the launched app, interleaved round by round
    with the same grid through an in-process engine. Every launch also times the start-up."""
    engine = Engine(model)
    size = model.native_size
    request = GridRequest(PROMPT, tuple(range(8)), RenderSettings(scheduler="PNDM", steps=STEPS))
    args = (PROMPT, "", "0-7", "PNDM", STEPS, 7.5, size, size)
    tiles = engine.grid(request)  # warm-up, untimed
    startups: list[float] = []
    api: list[float] = []
    reported: list[float] = []
    in_process: list[float] = []
    with tempfile.TemporaryDirectory() as downloads:
        with server.launched(device) as app:
            startups.append(app.startup_s)
            client_s, client = seconds(
                lambda: Client(app.url, verbose=False, download_files=downloads)
            )
            gallery, _ = client.predict(*args, api_name="/grid")  # warm-up, untimed
            for _ in range(repeats):
                took, (gallery, summary) = seconds(lambda: client.predict(*args, api_name="/grid"))
                api.append(took)
                reported.append(server.render_seconds(summary))
                took, tiles = seconds(lambda: engine.grid(request))
                in_process.append(took)
            served = [Image.open(item["image"]).convert("RGB") for item in gallery]
        for _ in range(launches - 1):
            with server.launched(device) as app:
                startups.append(app.startup_s)
    diff = max_pixel_diff(served, [tile.image for tile in tiles])
    return ApiResult(startups, client_s, api, reported, in_process, diff)


def main(argv: Sequence[str] | None = None) -> None:
    """Run every measurement in turn, printing each table as soon as it is ready."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="one round each, no mid-size model, one launch"
    )
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda: fp16, untested"
    )
    parser.add_argument("--repeats", type=int, help="timed rounds per workload (3; --quick 1)")
    parser.add_argument("--output", type=Path, help="also write the markdown to this file")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    repeats = args.repeats or (1 if args.quick else 3)
    processes = 1 if args.quick else 3
    command = shlex.join(
        ["python", "-m", "benchmarks.run", *(argv if argv is not None else sys.argv[1:])]
    )
    started = time.perf_counter()
    sections: list[str] = []

    def emit(*parts: str) -> None:
        sections.extend(parts)
        print("\n\n".join(parts), end="\n\n", flush=True)

    emit(
        "## Machine and run",
        report.machine(),
        f"Command: `{command}` on {date.today().isoformat()}; {repeats} timed round(s) per "
        "workload, after untimed warm-ups.",
    )
    loads = [probe("load", "--device", args.device) for _ in range(processes)]
    emit("## Cold start of the tiny model, fresh processes", report.cold_start(loads))

    tiny = models.tiny(args.device)
    api = api_round_trips(tiny, args.device, repeats, launches=1 if args.quick else 2)
    emit(
        "## The launched app (python app.py --model tiny), grid of 8 seeds at 20 steps",
        report.api(api),
    )

    rows = app_vs_plain(tiny, repeats, grids=(4, 8), full=True)
    if not args.quick:
        rows += app_vs_plain(models.mid(args.device), repeats, grids=(4,))
    emit("## App against plain diffusers, same pipeline, interleaved", report.app_vs_plain(rows))
    emit("## Per-request fixed costs, tiny model", report.fixed_costs(fixed_costs(tiny)))

    rss = {
        n: probe("rss", str(n), "--steps", str(STEPS), "--device", args.device)[1]
        for n in (1, 4, 8)
    }
    emit(
        "## Peak memory of one grid at 20 steps, each in a fresh process, tiny model",
        report.peak_memory(rss),
    )
    emit(
        f"Whole suite: {time.perf_counter() - started:.0f} s; "
        f"load average at the end (1/5/15 min): {report.load_average()}."
    )
    if args.output:
        args.output.write_text("\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
