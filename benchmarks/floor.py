"""Gradio's floor: a minimal app that hands ready PNG files to a client, nothing else.

    python -m benchmarks.floor --port N --files DIR

Its `/grid` and `/compare` take the app's parameters and return the PNGs in
`DIR/<width>x<height>-<count>/` as a gallery, plus a status line, like the app's final update:
what any Gradio app pays to hand a client N images through the same `gradio_client` call.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse
from pathlib import Path

import gradio as gr


def build(files: Path) -> gr.Blocks:
    def tiles(width: int, height: int, count: int) -> tuple[list[tuple[str, str]], str]:
        folder = files / f"{int(width)}x{int(height)}-{count}"
        paths = sorted(folder.glob("*.png"))
        return [(str(path), path.stem) for path in paths], f"{len(paths)} tiles"

    def grid(prompt, negative_prompt, seeds, scheduler, steps, guidance_scale, width, height):
        return tiles(width, height, count(seeds))

    def compare(
        prompt, negative_prompt, seed, schedulers, steps, guidance_scale, width, height, table
    ):
        return tiles(width, height, len(schedulers))

    with gr.Blocks() as demo:
        inputs = [gr.JSON() for _ in range(9)]  # any value, as the client sends it
        gallery, status = gr.Gallery(format="png"), gr.Markdown()
        button = gr.Button()
        button.click(grid, inputs[:8], [gallery, status], api_name="grid")
        button.click(compare, inputs, [gallery, status], api_name="compare")
    return demo


def count(seeds: str) -> int:
    """How many seeds "0-7" or "1, 2, 3" names."""
    total = 0
    for part in str(seeds).split(","):
        first, dash, last = part.strip().partition("-")
        total += int(last) - int(first) + 1 if dash else 1
    return total


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--files", type=Path, required=True)
    args = parser.parse_args()
    demo = build(args.files)
    demo.queue(default_concurrency_limit=1, api_open=False)
    demo.launch(server_port=args.port, allowed_paths=[str(args.files)], quiet=True)


if __name__ == "__main__":
    main()
