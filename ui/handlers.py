"""Plain functions between the widgets and the engine: UI values in, requests and captions out.

They parse what only the UI has (seed text, suffix lines, per-scheduler steps), build a typed
request, and turn every refusal into a gr.Error that names the field. No torch here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

from pipeline.engine import Engine, Tile
from pipeline.requests import (
    CompareRequest,
    GridRequest,
    RefineRequest,
    RenderSettings,
    RequestError,
)
from pipeline.seeds import MAX_SEED, SeedError, parse_seed, parse_seeds

F = TypeVar("F", bound=Callable[..., Any])

_STEPS_LINE = re.compile(r"^(?P<name>.+?)\s*:\s*(?P<steps>\S+)$")


def user_errors(fn: F) -> F:
    """A refused request becomes a toast naming the field; the app keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RequestError, SeedError) as error:
            raise gr.Error(str(error), print_exception=False) from None

    return wrapper  # type: ignore[return-value]


@user_errors
def grid_request(
    engine: Engine,
    prompt: str,
    negative_prompt: str,
    seeds: str,
    scheduler: str,
    steps: Any,
    guidance_scale: Any,
    width: Any,
    height: Any,
) -> GridRequest:
    try:
        seed_list = parse_seeds(seeds, engine.limits.max_tiles)
    except SeedError as error:
        raise RequestError("Seeds", str(error)) from None
    return GridRequest(
        prompt=prompt,
        seeds=tuple(seed_list),
        settings=settings(negative_prompt, scheduler, steps, guidance_scale, width, height),
    )


@user_errors
def refine_request(
    prompt: str,
    negative_prompt: str,
    seed: Any,
    suffixes: str,
    scheduler: str,
    steps: Any,
    guidance_scale: Any,
    width: Any,
    height: Any,
) -> RefineRequest:
    return RefineRequest(
        prompt=prompt,
        seed=pinned_seed(seed),
        suffixes=parse_suffixes(suffixes),
        settings=settings(negative_prompt, scheduler, steps, guidance_scale, width, height),
    )


@user_errors
def compare_request(
    prompt: str,
    negative_prompt: str,
    seed: Any,
    schedulers: list[str] | str,
    steps: Any,
    guidance_scale: Any,
    width: Any,
    height: Any,
    scheduler_steps: str = "",
) -> CompareRequest:
    names = [schedulers] if isinstance(schedulers, str) else list(schedulers or [])
    return CompareRequest(
        prompt=prompt,
        seed=pinned_seed(seed),
        schedulers=tuple(names),
        scheduler_steps=parse_scheduler_steps(scheduler_steps),
        settings=settings(negative_prompt, None, steps, guidance_scale, width, height),
    )


def settings(
    negative_prompt: str, scheduler: str | None, steps: Any, guidance: Any, width: Any, height: Any
) -> RenderSettings:
    """Widget values (floats from sliders, strings or None from API clients) as settings."""
    return RenderSettings(
        negative_prompt=negative_prompt or "",
        scheduler=scheduler or None,
        steps=whole_number("Steps", steps),
        guidance_scale=number("Guidance scale", guidance),
        width=whole_number("Width", width),
        height=whole_number("Height", height),
    )


def whole_number(field_name: str, value: Any) -> int | None:
    """None, "" and 0 mean "the default"; 20.0 is 20; 20.5 and "abc" are refused."""
    if value is None or value == "":
        return None
    number_value = number(field_name, value)
    if not number_value.is_integer():
        raise RequestError(field_name, f"must be a whole number, got {value!r}")
    return int(number_value) or None


def number(field_name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RequestError(field_name, f"must be a number, got {value!r}") from None


def pinned_seed(value: Any) -> int:
    """The pinned-seed field as a seed: exactly one whole number."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # API clients may send a number
    text = str(value if value is not None else "").strip()
    if not text:
        raise RequestError("Pinned seed", "no seed pinned yet: click a tile or type a seed")
    if not (text.isascii() and text.isdigit()):
        raise RequestError("Pinned seed", f"must be one whole number 0..{MAX_SEED}, got {text!r}")
    try:
        return parse_seed(text)
    except SeedError as error:
        raise RequestError("Pinned seed", str(error)) from None


def parse_suffixes(text: str) -> tuple[str, ...]:
    """One suffix per line; blank lines are skipped, the text of each line is kept as typed."""
    _check_text("Suffixes", text)
    suffixes = tuple(line for line in (text or "").splitlines() if line.strip())
    if not suffixes:
        raise RequestError("Suffixes", "write at least one suffix, one per line")
    return suffixes


def parse_scheduler_steps(text: str) -> tuple[tuple[str, int], ...]:
    """Lines of "Scheduler: steps"; blank lines skipped."""
    _check_text("Steps per scheduler", text)
    pairs = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        match = _STEPS_LINE.match(line.strip())
        if not match:
            raise RequestError("Steps per scheduler", f"write 'Name: steps', got {line!r}")
        name = match["name"]
        steps = whole_number(f"Steps for {name}", match["steps"])
        if steps is None:
            raise RequestError(f"Steps for {name}", "must be at least 1")
        pairs.append((name, steps))
    return tuple(pairs)


def _check_text(field_name: str, text: Any) -> None:
    """API callers can send any JSON value where the UI sends text."""
    if text is not None and not isinstance(text, str):
        raise RequestError(field_name, f"must be text, one entry per line, got {text!r}")


def scheduler_steps_text(engine: Engine, names: list[str], current: str = "") -> str:
    """The steps table for the chosen schedulers, keeping numbers the user already typed."""
    typed = {}
    for line in (current or "").splitlines():
        match = _STEPS_LINE.match(line.strip())
        if match:
            typed[match["name"]] = match["steps"]
    lines = []
    for name in names or []:
        entry = engine.registry.resolve(name)
        lines.append(f"{entry.name}: {typed.get(entry.name, entry.default_steps)}")
    return "\n".join(lines)


def grid_caption(tile: Tile) -> str:
    return _flag(tile, f"seed {tile.recipe.seed}")


def refine_caption(tile: Tile) -> str:
    suffix = (tile.recipe.suffix or "").strip(" ,") or "(no suffix)"
    return _flag(tile, f"{suffix} · seed {tile.recipe.seed}")


def compare_caption(tile: Tile) -> str:
    recipe = tile.recipe
    return _flag(tile, f"{recipe.sampler} · {recipe.steps} steps · {tile.seconds:.1f} s")


CAPTIONS = {"grid": grid_caption, "refine": refine_caption, "compare": compare_caption}


def summary(tiles: list[Tile]) -> str:
    """One line under a gallery: what was rendered and how long it took."""
    first = tiles[0].recipe
    seconds = sum(t.seconds for t in tiles)  # each tile's share of the call that rendered it
    seeds = ", ".join(str(s) for s in dict.fromkeys(t.recipe.seed for t in tiles))
    return (
        f"{len(tiles)} tiles · seeds {seeds} · {first.width}x{first.height} · "
        f"CFG {first.guidance_scale:g} · {seconds:.1f} s"
    )


def _flag(tile: Tile, caption: str) -> str:
    return f"filtered (safety checker) · {caption}" if tile.filtered else caption
