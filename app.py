"""Seed Explorer: settings (command line and environment) -> engine -> page -> server.

python app.py                      # Stable Diffusion 1.5 (falls back to the tiny model offline)
python app.py --model tiny         # the built-in random-weight model, no download
python app.py --model ./my-model   # a local diffusers folder
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from pipeline.engine import Engine
from pipeline.loading import DEFAULT_MODEL_ID, ModelLoadError, load_model_or_tiny
from pipeline.requests import Limits
from ui import CSS, build_demo

log = logging.getLogger("seed_explorer")
_TRUE = {"1", "true", "yes", "on"}


def _env(name: str, *fallbacks: str, default: str | None = None) -> str | None:
    for key in (name, *fallbacks):
        if os.environ.get(key):
            return os.environ[key]
    return default


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Every flag can also come from an environment variable (for Hugging Face Spaces)."""
    limits = Limits()
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Seed Explorer: seeded grids, pinned seeds, prompt refinement and "
        "scheduler comparison on one cached diffusers pipeline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model",
        default=_env("SEED_EXPLORER_MODEL"),
        help="hub id, local diffusers folder, or 'tiny' (built in, offline, images are noise); "
        f"env SEED_EXPLORER_MODEL; default {DEFAULT_MODEL_ID}, falling back to tiny "
        "when it cannot be loaded",
    )
    parser.add_argument(
        "--host",
        default=_env("SEED_EXPLORER_HOST", "GRADIO_SERVER_NAME", default="127.0.0.1"),
        help="address to listen on; env SEED_EXPLORER_HOST or GRADIO_SERVER_NAME",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env("SEED_EXPLORER_PORT", "GRADIO_SERVER_PORT"),
        help="port; env SEED_EXPLORER_PORT or GRADIO_SERVER_PORT; default the first free from 7860",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        default=(_env("SEED_EXPLORER_SHARE") or "").lower() in _TRUE,
        help="also serve on a public gradio.live link; env SEED_EXPLORER_SHARE=1",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cuda", "mps", "cpu"],
        default=_env("SEED_EXPLORER_DEVICE", default="auto"),
        help="where the model runs (fp16 on CUDA, float32 elsewhere); env SEED_EXPLORER_DEVICE",
    )
    parser.add_argument(
        "--generator-device",
        choices=["cpu", "model"],
        default=_env("SEED_EXPLORER_GENERATOR_DEVICE", default="cpu"),
        help="where seeds make their noise: cpu gives the same image for a seed on any "
        "machine; model uses the model's device; env SEED_EXPLORER_GENERATOR_DEVICE",
    )
    parser.add_argument(
        "--max-tiles",
        type=int,
        default=_env("SEED_EXPLORER_MAX_TILES", default=str(limits.max_tiles)),
        help="most images one run may render; env SEED_EXPLORER_MAX_TILES",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=_env("SEED_EXPLORER_MAX_STEPS", default=str(limits.max_steps)),
        help="most denoising steps per image; env SEED_EXPLORER_MAX_STEPS",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=_env("SEED_EXPLORER_MAX_SIDE", default=str(limits.max_side)),
        help="largest width or height in pixels; env SEED_EXPLORER_MAX_SIDE",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=_env("SEED_EXPLORER_QUEUE_SIZE", default="32"),
        help="most requests waiting at once; env SEED_EXPLORER_QUEUE_SIZE",
    )
    return parser.parse_args(argv)


def create_engine(args: argparse.Namespace) -> Engine:
    """Load the model (or explain in one line why not) and wrap it in the engine."""
    model = load_model_or_tiny(
        args.model or DEFAULT_MODEL_ID, explicit=args.model is not None, device=args.device
    )
    limits = Limits(max_tiles=args.max_tiles, max_steps=args.max_steps, max_side=args.max_side)
    generator_device = "cpu" if args.generator_device == "cpu" else model.device
    return Engine(model, limits, generator_device=generator_device)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    try:
        engine = create_engine(args)
    except ModelLoadError as error:
        sys.exit(
            f"error: cannot load model {args.model!r}: {error}. Hint: check the hub id or "
            "folder, run once online to cache it, or try the app offline with --model tiny."
        )
    model = engine.model
    log.info(
        "Model %s on %s (%s), loaded in %.1f s",
        model.model_id,
        model.device,
        model.dtype,
        model.seconds,
    )
    if model.notice:
        log.warning(model.notice)
    demo = build_demo(engine)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=1)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, css=CSS)


if __name__ == "__main__":
    main()
