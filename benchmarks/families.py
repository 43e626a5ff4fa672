"""Each model family through the engine against its plain diffusers pipeline, same process.

    python -m benchmarks.families                       # tiny, tiny-sdxl; float32 on the CPU
    python -m benchmarks.families --dtype float16       # the fp16 code paths (slow on a CPU)
    python -m benchmarks.families --device cuda --models tiny tiny-sdxl

A grid of 4 seeds and a comparison of 5 schedulers (in lockstep; the plain side one call per
scheduler), interleaved rounds, medians and the largest pixel difference of the last round.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import statistics

import torch
from PIL import Image

from benchmarks.timing import Pair, interleave
from pipeline.builder import EngineSettings, build_engine
from pipeline.engine import Engine
from pipeline.requests import CompareRequest, GridRequest

PROMPT = "a lighthouse at dusk, oil painting"
SEEDS = (0, 1, 2, 3)
SCHEDULERS = ("Euler", "Euler a", "DDIM", "DPM++ 2M", "UniPC")


def plain(engine: Engine, scheduler: str, seeds: tuple[int, ...], steps: int) -> list[Image.Image]:
    """The diffusers guide's recipe on the family's own pipeline class and the same modules."""
    pipe = engine.model.pipe
    view = type(pipe)(
        **{**pipe.components, "scheduler": engine.model.registry.make(scheduler)},
        **engine.renderer.view_options,
    )
    view.set_progress_bar_config(disable=True)
    return view(
        [PROMPT] * len(seeds),
        generator=[torch.Generator().manual_seed(seed) for seed in seeds],
        num_inference_steps=steps,
        guidance_scale=engine.planner.defaults()["guidance_scale"],
    ).images


def rows(engine: Engine, steps: int, repeats: int) -> dict[str, Pair]:
    grid = GridRequest(PROMPT, SEEDS, scheduler="Euler", steps=steps)
    compare = CompareRequest(PROMPT, SEEDS[0], SCHEDULERS, steps=steps)
    work = {
        f"grid of {len(SEEDS)}": (
            lambda: [tile.image for tile in engine.run(grid)],
            lambda: plain(engine, "Euler", SEEDS, steps),
        ),
        f"compare of {len(SCHEDULERS)}": (
            lambda: [tile.image for tile in engine.run(compare)],
            lambda: [im for name in SCHEDULERS for im in plain(engine, name, SEEDS[:1], steps)],
        ),
    }
    for app, reference in work.values():  # warm up: first calls at a shape pay once
        app()
        reference()
    return {name: interleave(app, reference, repeats) for name, (app, reference) in work.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.families")
    parser.add_argument("--models", nargs="+", default=["tiny", "tiny-sdxl"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.steps} steps, {args.repeats} rounds, device {args.device}, dtype {args.dtype}\n")
    print("| model | family | work | app s (median) | plain s (median) | app/plain | max px diff |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        engine = build_engine(EngineSettings(name, device=args.device, dtype=args.dtype))
        for work, pair in rows(engine, args.steps, args.repeats).items():
            print(
                f"| {name} | {engine.model.family.label} | {work} | "
                f"{statistics.median(pair.app):.2f} | {statistics.median(pair.plain):.2f} | "
                f"{pair.ratio:.2f} | {pair.pixel_diff} |"
            )


if __name__ == "__main__":
    main()
