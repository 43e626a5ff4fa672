"""Measurements that need a fresh process: cold model load and peak memory of one grid.

`python -m benchmarks.probe load --device cpu` or `... rss N --model tiny --device cpu` prints
one JSON line. torch and diffusers are imported inside the functions, so the import itself
can be timed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# The app's placeholder. The tiny model's tokenizer has one token per character, so the
# scheduler guide's full prompt (87 characters) would lose every refine suffix to CLIP's
# 77-token limit there.
PROMPT = "A photograph of an astronaut riding a horse on Mars"
SCHEDULER = "DPM++ 2M"


def memory_mib() -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident set of this process, from Linux's /proc."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}


def reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux 4.0+), so a peak belongs to one step."""
    Path("/proc/self/clear_refs").write_text("5")


def load(device: str) -> dict[str, float]:
    """Seconds to import the app's pipeline package (torch, diffusers) and to build the model."""
    started = time.perf_counter()
    from pipeline.loading import load_model

    imported = time.perf_counter()
    load_model("tiny", device=device)
    return {"import_s": imported - started, "load_s": time.perf_counter() - imported}


def rss(tiles: int, steps: int, model: str, device: str) -> dict[str, float]:
    """Peak RSS while importing and loading the model, RSS once loaded, and the peak during
    one grid of `tiles` seeds through the engine (micro-batches as the app's default); on
    CUDA also the peak allocated by torch during the grid.

    VmHWM, not getrusage: a child's ru_maxrss starts at its parent's peak (fork copies it),
    so a small probe started by a big benchmark process would report the parent's figure.
    """
    import torch

    from benchmarks import models
    from pipeline.engine import Engine
    from pipeline.requests import GridRequest

    engine = Engine(models.build(model, device))
    loaded = memory_mib()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        loaded_cuda = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    reset_peak()
    engine.run(GridRequest(PROMPT, tuple(range(tiles)), scheduler=SCHEDULER, steps=steps))
    result = {
        "load_peak_mib": loaded["VmHWM"],
        "loaded_mib": loaded["VmRSS"],
        "grid_peak_mib": memory_mib()["VmHWM"],
    }
    if cuda:
        result["cuda_loaded_mib"] = loaded_cuda / 2**20
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe")
    parser.add_argument("what", choices=["load", "rss"])
    parser.add_argument("tiles", type=int, nargs="?", default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.what == "load":
        result = load(args.device)
    else:
        result = rss(args.tiles, args.steps, args.model, args.device)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
