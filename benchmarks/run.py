"""Seed Explorer against plain diffusers on the same pipeline, printed as markdown tables.

    python -m benchmarks.run                      # full suite, CPU: tiny and mid-size models
    python -m benchmarks.run --quick              # one round, tiny model, 20 steps (~4 min)
    python -m benchmarks.run --switches           # also each speed switch on and off
    python -m benchmarks.run --device cuda        # fp16 on a GPU: tiny and SD 1.5's architecture

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
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import diffusers
import torch
from gradio_client import Client
from PIL import Image

from benchmarks import models, report, server, switches
from benchmarks.probe import PROMPT, SCHEDULER
from benchmarks.report import ApiResult, Row
from benchmarks.timing import interleave, per_call_ms, seconds
from pipeline.engine import Engine, Tile
from pipeline.families import SD1
from pipeline.loading import LoadedModel
from pipeline.requests import (
    DEFAULT_SUFFIXES,
    CompareRequest,
    GridRequest,
    RefineRequest,
)

STEPS = (20, 50)
SEED = 8  # the scheduler guide's seed
GRID = 8


def generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """What the diffusers guides write: one CPU generator per image."""
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def images(tiles: list[Tile]) -> list[Image.Image]:
    """The engine's tiles as plain images, so both sides can be compared."""
    return [tile.image for tile in tiles]


@dataclass(frozen=True)
class Workload:
    """One row's two sides at a given step count."""

    name: str
    app: Callable[[int], list[Image.Image]]
    plain: Callable[[int], list[Image.Image]]


class Plain:
    """The diffusers guides' recipe on a pipeline of the app's own modules (same weights, same
    dtype: `from_pipe` without a dtype would cast them to float32 in place): swap the scheduler,
    call. The app's cached pipeline is never touched."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        pipe = engine.model.pipe
        self.pipe = type(pipe)(**pipe.components, **engine.renderer.view_options)
        self.pipe.set_progress_bar_config(disable=True)

    def __call__(
        self, scheduler: str, prompts: list[str], seeds: Sequence[int], steps: int
    ) -> list[Image.Image]:
        entry = self.engine.model.registry.resolve(scheduler)
        self.pipe.scheduler = getattr(diffusers, entry.class_name).from_config(
            self.engine.model.pipe.scheduler.config, **entry.overrides
        )
        return self.pipe(
            prompt=prompts, generator=generators(seeds), num_inference_steps=steps
        ).images


def workloads(engine: Engine, full: bool) -> list[Workload]:
    """A grid of 8 seeds; with `full` also refine (4 suffixes) and compare (6 schedulers,
    both sides at the row's step count, the plain side one call per scheduler)."""
    plain = Plain(engine)
    seeds = tuple(range(GRID))

    rows = [
        Workload(
            f"grid, {GRID} seeds",
            lambda steps: images(
                engine.run(GridRequest(PROMPT, seeds, scheduler=SCHEDULER, steps=steps))
            ),
            lambda steps: plain(SCHEDULER, [PROMPT] * GRID, seeds, steps),
        )
    ]
    if not full:
        return rows
    prompts = [PROMPT + suffix for suffix in DEFAULT_SUFFIXES]

    def refine(steps: int) -> list[Image.Image]:
        request = RefineRequest(PROMPT, SEED, DEFAULT_SUFFIXES, scheduler=SCHEDULER, steps=steps)
        return images(engine.run(request))

    def compare(steps: int) -> list[Image.Image]:
        request = CompareRequest(PROMPT, SEED, SD1.compare, steps=steps)
        return images(engine.run(request))

    def plain_compare(steps: int) -> list[Image.Image]:
        return [im for name in SD1.compare for im in plain(name, [PROMPT], [SEED], steps)]

    rows += [
        Workload(
            f"refine, {len(prompts)} suffixes",
            refine,
            lambda steps: plain(SCHEDULER, prompts, [SEED] * len(prompts), steps),
        ),
        Workload(f"compare, {len(SD1.compare)} schedulers", compare, plain_compare),
    ]
    return rows


def app_vs_plain(
    model: LoadedModel, repeats: int, steps: Sequence[int], full: bool = False
) -> list[Row]:
    """Every workload at every step count, after one untimed 2-step run of each side: the
    first call at a batch size pays one-off costs (allocations, autotuning)."""
    engine = Engine(model)
    loads = workloads(engine, full)
    for load in loads:
        load.app(2)
        load.plain(2)
    name = f"{model.model_id}, {model.native_size}px"
    return [
        Row(
            f"{load.name}, {n} steps",
            name,
            interleave(lambda: load.app(n), lambda: load.plain(n), repeats),  # noqa: B023
        )
        for n in steps
        for load in loads
    ]


def fixed_costs(model: LoadedModel) -> dict[str, float]:
    """Milliseconds per request view (Renderer.view) and per new scheduler (registry.make)."""
    engine = Engine(model)
    config = engine.model.registry.config(engine.model.registry.default.name)
    costs = {"Renderer.view(config)": per_call_ms(lambda: engine.renderer.view(config), 200)}
    for name in SD1.compare:
        costs[f"registry.make({name!r})"] = per_call_ms(
            lambda n=name: engine.model.registry.make(n), 200
        )
    return costs


def probe(*args: str) -> tuple[float, dict[str, float]]:
    """`python -m benchmarks.probe ARGS` in a fresh process: its wall seconds and its result."""
    command = [sys.executable, "-m", "benchmarks.probe", *args]
    took, done = seconds(
        lambda: subprocess.run(command, cwd=server.ROOT, capture_output=True, text=True, check=True)
    )
    return took, json.loads(done.stdout.strip().splitlines()[-1])


def served_model(model: LoadedModel, folder: Path) -> str:
    """What `app.py --model` gets: "tiny" for the built-in model, else the pipeline saved as
    a local diffusers folder (the app's own from_pretrained path)."""
    if model.is_tiny:
        return "tiny"
    model.pipe.save_pretrained(folder)
    return str(folder)


def api_round_trips(
    model: LoadedModel, device: str, repeats: int, launches: int, steps: int
) -> ApiResult:
    """A grid of 8 through gradio_client against the launched app (`python app.py`, defaults
    but for the model, the device and a temporary outputs folder), interleaved round by round
    with the plain diffusers call for the same 8 images. Every launch also times start-up."""
    plain = Plain(Engine(model))
    size = model.native_size
    seeds = tuple(range(GRID))
    args = (PROMPT, "", f"0-{GRID - 1}", SCHEDULER, steps, 7.5, size, size)
    startups: list[float] = []
    reported: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        app_args = [
            "--model", served_model(model, scratch_dir / "model"),
            "--outputs", str(scratch_dir / "outputs"),
        ]  # fmt: skip
        with server.launched(device, app_args) as app:
            startups.append(app.startup_s)
            client_s, client = seconds(
                lambda: Client(app.url, verbose=False, download_files=str(scratch_dir / "dl"))
            )
            first_s, _ = seconds(lambda: client.predict(*args, api_name="/grid"))

            def through_api() -> list[Image.Image]:
                gallery, summary = client.predict(*args, api_name="/grid")
                reported.append(server.render_seconds(summary))
                return [Image.open(item["image"]).convert("RGB") for item in gallery]

            plain(SCHEDULER, [PROMPT] * GRID, seeds, 2)  # warm-up, untimed
            pair = interleave(
                through_api, lambda: plain(SCHEDULER, [PROMPT] * GRID, seeds, steps), repeats
            )
        for _ in range(launches - 1):
            with server.launched(device, app_args) as app:
                startups.append(app.startup_s)
    return ApiResult(startups, client_s, first_s, pair, reported, steps)


def main(argv: Sequence[str] | None = None) -> None:
    """Run every measurement in turn, printing each table as soon as it is ready."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one round, the tiny model (on CUDA also sd15), 20 steps only (the end-to-end "
        "row stays at 50), one launch",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: fp16")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=models.NAMES,
        help="models for the app-versus-plain tables (CPU: tiny mid, --quick tiny; "
        "CUDA: tiny sd15); sd15 needs --device cuda",
    )
    parser.add_argument("--switches", action="store_true", help="each speed switch on and off")
    parser.add_argument("--repeats", type=int, help="timed rounds per workload (3; --quick 1)")
    parser.add_argument("--output", type=Path, help="also write the markdown to this file")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    names = args.models or (
        ["tiny", "sd15"] if cuda else ["tiny"] if args.quick else ["tiny", "mid"]
    )
    if "sd15" in names and not cuda:
        parser.error(models.SD15_NEEDS_CUDA)
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

    big = models.build(names[-1], args.device)
    api = api_round_trips(
        big, args.device, repeats, launches=1 if args.quick else 2, steps=max(STEPS)
    )
    emit(
        f"## End to end through the launched app, grid of {GRID} at {api.steps} steps, "
        f"{big.model_id}",
        report.api(api),
    )

    rows: list[Row] = []
    steps = (min(STEPS),) if args.quick else STEPS
    for index, name in enumerate(names):
        model = big if name == names[-1] else models.build(name, args.device)
        # Refine and compare on the first model; on CUDA on every model.
        rows += app_vs_plain(model, repeats, steps, full=index == 0 or cuda)
    emit(
        "## App against plain diffusers, same pipeline, interleaved",
        report.app_vs_plain(rows),
    )
    if cuda:
        emit("## GPU throughput, grid of 8 at 20 steps, DPM++ 2M, CFG 7.5", report.gpu(rows))
    emit("## Per-request fixed costs", report.fixed_costs(fixed_costs(big)))

    memory = {
        n: probe("rss", str(n), "--steps", "20", "--model", names[-1], "--device", args.device)[1]
        for n in (1, 4, GRID)
    }
    emit(
        f"## Peak memory of one grid at 20 steps, each in a fresh process, {big.model_id}",
        report.peak_memory(memory),
    )
    if args.switches:
        emit(
            f"## Speed switches on and off, one call of {GRID} images at 20 steps, {big.model_id}",
            report.switches(switches.measure(big, repeats, GRID, 20)),
        )
    emit(
        f"Whole suite: {time.perf_counter() - started:.0f} s; "
        f"load average at the end (1/5/15 min): {report.load_average()}."
    )
    if args.output:
        args.output.write_text("\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
