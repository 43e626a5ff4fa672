"""Render saved tiles again from their recipes and say whether the pixels still match.

    python -m pipeline.replay PATH [PATH ...] --out DIR [--model M] [--device D]

PATH is one of our PNGs or a session manifest (JSON). Each tile is rendered again in a call of
the shape that first rendered it (`Engine.replay`; a comparison's tile with its whole lockstep
group), written to DIR with its recipe, and compared: `NAME: bit-exact` or
`NAME: differs — max pixel diff N, PSNR X dB`.
Exit status: 0 all bit-exact, 1 any differs, 2 an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.builder import EngineSettings, build_engine
from pipeline.determinism import enable_deterministic
from pipeline.engine import Engine
from pipeline.manifest import load_manifest
from pipeline.metadata import read_png, write_png
from pipeline.recipe import Recipe, Tile, pixels_sha256, replay_plan, setup_differences


@dataclass(frozen=True)
class Drift:
    """How far a replayed image is from the original."""

    bit_exact: bool
    max_diff: int  # largest difference of one 8-bit channel, 0..255
    psnr: float  # dB; infinite when bit-exact
    heatmap: Image.Image  # per-pixel difference, black where equal, every difference visible


def drift(original: Image.Image, replayed: Image.Image) -> Drift:
    """Compare two images pixel by pixel (the app's Verify button shows the same)."""
    if original.size != replayed.size:
        raise ValueError(f"sizes differ: {original.size} and {replayed.size}")
    first = np.asarray(original.convert("RGB"), dtype=np.int16)
    second = np.asarray(replayed.convert("RGB"), dtype=np.int16)
    diff = np.abs(first - second)
    max_diff = int(diff.max())
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = math.inf if mse == 0 else 10 * math.log10(255**2 / mse)
    return Drift(max_diff == 0, max_diff, psnr, _heatmap(diff.max(axis=2)))


def _heatmap(diff: np.ndarray) -> Image.Image:
    """A difference of 1 shows as dark grey (64), 255 as white, on a log scale between."""
    levels = np.where(diff > 0, 64 + 191 * np.log(np.maximum(diff, 1)) / math.log(255), 0)
    return Image.fromarray(levels.round().astype(np.uint8))


@dataclass(frozen=True)
class _Job:
    """One tile to replay and what to compare it with."""

    name: str
    out_name: str
    recipe: Recipe
    original: Path | None  # a PNG with the original pixels
    image_sha256: str | None  # else their hash


class ReplayError(Exception):
    """A file or model replay cannot use, said in one line."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        jobs = [job for path in args.paths for job in _jobs(Path(path))]
        if any(job.recipe.deterministic for job in jobs):
            enable_deterministic()  # as when they were rendered; before any model loads
        args.out.mkdir(parents=True, exist_ok=True)
        engines: dict[EngineSettings, Engine] = {}
        groups: dict[str, list[Tile]] = {}
        verdicts = [_replay(job, args, engines, groups) for job in jobs]
    except (ReplayError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0 if all(verdicts) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.replay",
        description="Render saved tiles again from their recipes and compare the pixels.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="our PNGs or session manifests")
    parser.add_argument("--out", type=Path, required=True, help="folder for the replayed PNGs")
    parser.add_argument("--model", help="model to render with (default: the recipe's)")
    parser.add_argument("--device", help="cuda, cpu, mps or auto (default: the recipe's)")
    return parser


def _jobs(path: Path) -> Iterator[_Job]:
    if path.suffix.lower() == ".json":
        for tile in load_manifest(path):
            yield _Job(
                name=f"{path.name} entry {tile.entry} tile {tile.index}",
                out_name=f"{path.stem}-{tile.entry}-{tile.index}-{tile.recipe.seed}.png",
                recipe=tile.recipe,
                original=tile.file if tile.file is not None and tile.file.is_file() else None,
                image_sha256=tile.image_sha256,
            )
        return
    _, recipe, infotext = read_png(path)
    if recipe is None:
        origin = "only A1111-style parameters" if infotext else "no recipe"
        raise ReplayError(
            f"{path.name}: {origin}, not a Seed Explorer PNG; replay needs the batch shape and "
            "noise our recipe records"
        )
    yield _Job(path.name, f"{path.stem}-replay.png", recipe, path, None)


def _replay(
    job: _Job,
    args: argparse.Namespace,
    engines: dict[EngineSettings, Engine],
    groups: dict[str, list[Tile]],
) -> bool:
    """Render one job, write it, print its verdict; True when bit-exact.

    The engine is set up as the recipe's was (pipeline/builder.py). A comparison's lockstep
    group is rendered once for all its tiles (`groups`, by group).
    """
    key = EngineSettings.for_recipe(job.recipe, args.model, args.device)
    if key not in engines:
        try:
            engines[key] = build_engine(key)
        except Exception as error:  # any failure to load (no CUDA, no files) is one line
            raise ReplayError(
                f"cannot load model {key.model} on {key.device}: {_line(error)}"
            ) from None
    engine = engines[key]
    for difference in setup_differences(job.recipe, engine.provenance):
        print(f"note: {job.name}: {difference}", file=sys.stderr)
    group = _group_key((key.model, key.device), job.recipe)
    try:
        if group is None:
            tile = engine.replay(job.recipe)
        else:
            if group not in groups:
                groups[group] = engine.render(replay_plan(job.recipe, engine.planner))
            tile = groups[group][job.recipe.batch_index]
    except Exception as error:  # a recipe this model cannot render, out of memory
        raise ReplayError(f"{job.name}: cannot replay: {_line(error)}") from None
    write_png(args.out / job.out_name, tile.image, tile.recipe)
    bit_exact, verdict = _verdict(job, tile.image)
    print(f"{job.name}: {verdict}")
    return bit_exact


def _group_key(model: tuple[str, str], recipe: Recipe) -> str | None:
    """What the tiles of one lockstep group share (None: not a comparison's tile)."""
    if recipe.lockstep is None:
        return None
    shared = {
        name: value
        for name, value in recipe.to_dict().items()
        if name not in ("sampler", "scheduler_class", "scheduler_config", "steps", "batch_index")
    }
    return json.dumps([model, shared], sort_keys=True)


def _verdict(job: _Job, replayed: Image.Image) -> tuple[bool, str]:
    if job.original is None:
        if pixels_sha256(replayed) == job.image_sha256:
            return True, "bit-exact"
        return False, "differs — pixel hash differs (PSNR needs the original file)"
    original, _, _ = read_png(job.original)
    try:
        result = drift(original, replayed)
    except ValueError as error:
        return False, f"differs — {error}"
    if result.bit_exact:
        return True, "bit-exact"
    return False, f"differs — max pixel diff {result.max_diff}, PSNR {result.psnr:.1f} dB"


def _line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
