"""Where the time goes between the engine's last step and an API client holding the tiles.

    python -m benchmarks.response            # grid of 8 at 20 steps, tiny model, 3 rounds

The app runs in this process (the same page `app.py` builds, saving to a temporary folder) so
that each stage can be timed where it runs: the app's own work (PNG encoding, the served
copies, the outputs folder), Gradio's (postprocessing, its file cache) and the client's (the
event stream, downloading each file). Then PNG encoding alone at 64 and 512 pixels and each
zlib level, which is what the app chose its level from.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import functools
import inspect
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import gradio_client.client
import numpy as np
from gradio import processing_utils
from gradio_client import Client
from PIL import Image

from benchmarks import models, report
from benchmarks.probe import PROMPT, SCHEDULER
from pipeline.engine import Engine
from pipeline.outputs import OutputFolder
from pipeline.requests import GridRequest
from ui import build_demo, runner

Marks = list[tuple[str, float, float]]
STAGES = {
    "app: encode 8 PNGs with their recipe": "png_bytes",
    "app: save to the outputs folder (fsync)": "OutputFolder.save",
    "app: whole write_tiles() (encode, save, served copies, manifest)": "write_tiles",
    "Gradio: gallery postprocess": "Gallery.postprocess",
    "Gradio: copy files into its cache": "async_move_files_to_cache",
    "client: download the 8 files": "process_predictions",
}


def timed(owner: Any, name: str, label: str, marks: Marks) -> None:
    """Replace `owner.name` by a wrapper that notes (label, start, end) of every call."""
    original = getattr(owner, name)
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                marks.append((label, started, time.perf_counter()))
    else:

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                marks.append((label, started, time.perf_counter()))

    setattr(owner, name, wrapper)


def after_engine(repeats: int, steps: int) -> list[list[object]]:
    """Milliseconds per stage after the engine returned, medians of `repeats` API calls."""
    marks: Marks = []
    for owner, name in (
        (Engine, "render"),
        (runner, "write_tiles"),  # the name the runner calls
        (runner, "png_bytes"),
        (OutputFolder, "save"),
        (gr.Gallery, "postprocess"),
        (processing_utils, "async_move_files_to_cache"),
        (gradio_client.client.Endpoint, "process_predictions"),
    ):
        timed(owner, name, f"{getattr(owner, '__name__', '')}.{name}".lstrip("."), marks)
    engine = Engine(models.tiny("cpu"))
    size = engine.card.native_size
    args = (PROMPT, "", "0-7", SCHEDULER, steps, 7.5, size, size)
    per_stage: dict[str, list[float]] = {label: [] for label in [*STAGES, "total"]}
    with tempfile.TemporaryDirectory() as scratch:
        demo = build_demo(engine, outputs=Path(scratch, "outputs"))
        demo.queue(default_concurrency_limit=1, api_open=False)
        _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True)
        try:
            client = Client(url, verbose=False, download_files=str(Path(scratch, "dl")))
            client.predict(*args, api_name="/grid")  # warm-up
            for _ in range(repeats):
                marks.clear()
                client.predict(*args, api_name="/grid")
                received = time.perf_counter()
                engine_end = max(end for label, _, end in marks if label == "Engine.render")
                for stage, suffix in STAGES.items():
                    after = [(a, b) for label, a, b in marks if label.endswith(suffix)]
                    after = [(a, b) for a, b in after if b >= engine_end]
                    if suffix == "process_predictions":
                        after = after[-1:]  # the final result; earlier ones were previews
                    per_stage[stage].append(sum(b - a for a, b in after) * 1000)
                per_stage["total"].append((received - engine_end) * 1000)
        finally:
            demo.close()
    rows = [[stage, f"{statistics.median(ms):.0f}"] for stage, ms in per_stage.items()]
    rows[-1][0] = "**engine returned -> client holds the files**"
    return rows


def encoding() -> list[list[object]]:
    """8 images at each size and zlib level: milliseconds and megabytes (best of 3)."""
    rng = np.random.default_rng(0)
    grid = GridRequest(PROMPT, tuple(range(8)), steps=2)
    smooth = [tile.image for tile in Engine(models.tiny("cpu")).run(grid)]
    rows = []
    for side in (64, 512):
        kinds = {
            "smooth (tiny tiles, upscaled)": [
                im.resize((side, side), Image.Resampling.BICUBIC) for im in smooth
            ],
            "noise (worst case)": [
                Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
                for _ in range(8)
            ],
        }
        for kind, images in kinds.items():
            for level in (6, 1, 0):
                took, sizes = best_of(3, lambda ims=images, lv=level: encode(ims, lv))
                rows.append([f"{side}x{side}", kind, level, f"{took * 1000:.0f}", f"{sizes:.2f}"])
    return rows


def encode(images: list[Image.Image], level: int) -> float:
    total = 0
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=level)
        total += buffer.tell()
    return total / 1e6


def best_of(times: int, fn: Callable[[], float]) -> tuple[float, float]:
    results = []
    for _ in range(times):
        started = time.perf_counter()
        value = fn()
        results.append((time.perf_counter() - started, value))
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.response",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(report.machine(), end="\n\n")
    print(
        f"Grid of 8 through the API, tiny model, {args.steps} steps, {args.repeats} rounds: "
        "milliseconds after the engine returned (medians)\n"
    )
    print(report.table(["stage", "ms"], after_engine(args.repeats, args.steps)), end="\n\n")
    print("PNG encoding of 8 images (PIL; the app encodes at level 1, PIL's default is 6)\n")
    print(report.table(["size", "pixels", "zlib level", "ms", "MB"], encoding()))


if __name__ == "__main__":
    main()
