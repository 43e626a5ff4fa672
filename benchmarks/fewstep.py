"""What a few-step model saves: a grid at the few-step defaults the app gives it, against the
same grid at 20 steps with CFG, through the engine.

    python -m benchmarks.fewstep              # mid-size model, grid of 4, CPU (~2 minutes)
    python -m benchmarks.fewstep --model tiny

Random weights (the images are noise), so only the compute counts: the few-step models are the
same architecture made LCM-style (LCM scheduler, a UNet with `time_cond_proj_dim`, so no
unconditional half) and named as SD-Turbo (1 step, CFG 0) and LCM-LoRA (4 steps, CFG 1, so
no unconditional half either), which is how the app recognises them (pipeline/fewstep.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
from diffusers import LCMScheduler, UNet2DConditionModel

from benchmarks import models
from benchmarks.probe import PROMPT
from benchmarks.timing import seconds
from pipeline.engine import Engine
from pipeline.loading import LoadedModel
from pipeline.requests import GridRequest


def lcm_distilled(model: LoadedModel) -> LoadedModel:
    """The same model with LCM's guidance embedding and scheduler (random weights)."""
    pipe = model.pipe
    config = {k: v for k, v in pipe.unet.config.items() if not k.startswith("_")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel.from_config({**config, "time_cond_proj_dim": 256}).eval()
    scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    view = type(pipe)(
        **{**pipe.components, "unet": unet, "scheduler": scheduler}, requires_safety_checker=False
    )
    return replace(model, pipe=view, model_id=f"{model.model_id}, LCM-distilled")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fewstep")
    parser.add_argument("--model", choices=("tiny", "mid"), default="mid")
    parser.add_argument("--tiles", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = models.build(args.model, "cpu")
    seeds = tuple(range(args.tiles))
    runs = {
        "20 steps, DPM++ 2M, CFG 7.5": (
            base,
            GridRequest(PROMPT, seeds, scheduler="DPM++ 2M", steps=20, guidance_scale=7.5),
        ),
        "LCM-distilled, its defaults": (lcm_distilled(base), GridRequest(PROMPT, seeds)),
        "LCM-LoRA, its defaults": (
            replace(base, model_id="lcm-lora-sdv1-5"),
            GridRequest(PROMPT, seeds),
        ),
        "SD-Turbo, its defaults": (replace(base, model_id="sd-turbo"), GridRequest(PROMPT, seeds)),
    }
    engines = {label: Engine(model) for label, (model, _) in runs.items()}
    plans = {label: engines[label].plan(request) for label, (_, request) in runs.items()}
    for label, (_, request) in runs.items():  # warm-up
        engines[label].render(engines[label].plan(replace(request, steps=1)))
    wall: dict[str, list[float]] = {label: [] for label in runs}
    cpu: dict[str, list[float]] = {label: [] for label in runs}
    labels = list(runs)
    for round_ in range(args.repeats):  # interleaved, the order rotating: load hits all alike
        for label in labels[round_ % len(labels) :] + labels[: round_ % len(labels)]:
            started = time.process_time()
            wall[label].append(seconds(lambda: engines[label].render(plans[label]))[0])  # noqa: B023
            cpu[label].append(time.process_time() - started)
    print(f"{args.model} model, grid of {args.tiles}, median of {args.repeats} interleaved "
          f"rounds, torch threads {torch.get_num_threads()}")  # fmt: skip
    print("| run | scheduler | steps | CFG | seconds per grid | CPU seconds per grid |")
    print("|---|---|---|---|---|---|")
    for label, plan in plans.items():
        sampler = plan.samplers[0]
        print(
            f"| {label} | {sampler.name} | {sampler.steps} | {plan.guidance_scale:g} | "
            f"{statistics.median(wall[label]):.2f} | {statistics.median(cpu[label]):.2f} |"
        )


if __name__ == "__main__":
    main()
