"""One run, from a click's values to the tiles: the request planned (a refusal names the
field), the render streamed (progress and live frames kept for the browser's poll, Stop
heard), then each tile's PNG written once, entered in the manifest, and summed up.

The tiles are the run's one response: an API caller downloads each tile once (gradio_client
fetches the files of every streamed update, and a generator's last update twice) and is sent
nothing it cannot show. The served copy is written straight into Gradio's file cache
(ui/context.py), so Gradio serves it as it is instead of hashing and copying it again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from pipeline.manifest import Manifest
from pipeline.metadata import png_bytes
from pipeline.plan import Matrix, Plan
from pipeline.recipe import Tile
from pipeline.rendering import RenderError, Stopped
from pipeline.requests import RequestError
from ui.context import Services
from ui.render import Failed, Preview, Progress, Rendered
from ui.specs import TabSpec, first_seed
from ui.state import Pin, TileRef

log = logging.getLogger("seed_explorer")

WAITING = "Waiting for the model…"


@dataclass(frozen=True)
class Outcome:
    """What a run shows: the gallery's items, the tiles behind them, the line under them."""

    items: list[tuple[str, str]]  # (served PNG, caption)
    tiles: list[TileRef]
    status: str


def run(
    services: Services,
    spec: TabSpec,
    values: dict[str, Any],
    pin: Pin | None,
    manifest: Manifest,
    session: str,
) -> Outcome:
    """The tab's values (by input name) planned, rendered and written; the manifest gains the
    run, grown from the pinned tile where the tab's runs grow from the pin. A refusal or a
    fault becomes a toast."""
    engine = services.engine
    try:
        plan = engine.plan(spec.request_of(values, pin and pin.variation()))
    except RequestError as error:
        raise gr.Error(str(error), print_exception=False) from None
    parent = pin.parent(first_seed(plan)) if pin and spec.grows_from_pin else None
    return run_plan(services, spec, plan, manifest, parent, session)


def run_plan(
    services: Services,
    spec: TabSpec,
    plan: Plan | Matrix,
    manifest: Manifest,
    parent: TileRef | None,
    session: str,
) -> Outcome:
    """A checked plan rendered for the session and its tiles written, entered in the
    manifest as grown from `parent` (None: from nothing)."""
    notes = _warnings(services, plan)
    outcome = _render(services, spec, plan, session)
    if isinstance(outcome, Exception):
        return refusal(outcome)
    return write_tiles(services, spec, outcome, manifest, parent, session, notes)


def _warnings(services: Services, plan: Plan | Matrix) -> list[str]:
    """What the user should know before the run: a prompt the model reads only part of."""
    plans = plan.plans if isinstance(plan, Matrix) else [plan]
    prompts = {item.prompt for each in plans for item in each.items}
    if not any(services.engine.truncated(prompt) for prompt in prompts):
        return []
    gr.Warning("Prompt truncated: the model reads the first 77 tokens; the tail is ignored.")
    return ["the prompt is longer than the model reads (77 tokens): the tail is ignored"]


def _render(
    services: Services, spec: TabSpec, plan: Plan | Matrix, session: str
) -> list[Tile] | Exception:
    """The plan rendered, its progress and live frame kept for the browser's poll."""
    labels = [spec.label(plan, index) for index in range(plan.tiles)]
    return render(services, plan, session, labels if services.previews else None)


def render(
    services: Services, plan: Plan | Matrix, session: str, labels: list[str] | None
) -> list[Tile] | Exception:
    """A plan rendered for the session: its progress line (and, with `labels` for its
    tiles, its live frame) kept for the browser's poll, Stop heard; the tiles, or what
    stopped or refused them."""
    stop = services.runs.start(session)
    started = time.monotonic()
    interval = None if labels is None else services.preview_interval
    shown: list[Any] = [None] * plan.tiles
    outcome: list[Tile] | Exception = RenderError("The render ended without its tiles")
    try:
        with services.admission.enter(
            session, stop, lambda ahead: services.live.say(session, waiting_line(ahead))
        ):
            services.live.say(session, WAITING)
            for event in services.render(plan, stop, interval):
                match event:
                    case Progress(fraction, text):
                        services.live.say(session, progress_line(fraction, text, started))
                    case Preview(first, images) if labels is not None:
                        shown[first : first + len(images)] = images
                        folder = services.folder(session)
                        services.live.show(session, folder, shown, labels, plan.seeds)
                    case Rendered(tiles):
                        outcome = tiles
                    case Failed(error):
                        outcome = error
    except Exception as error:  # over the cap; or it could not start (ZeroGPU: no GPU)
        outcome = error
    finally:
        services.runs.finish(session, stop)
        services.live.end(session)
    return outcome


def write_tiles(
    services: Services,
    spec: TabSpec,
    tiles: list[Tile],
    manifest: Manifest,
    parent: TileRef | None,
    session: str,
    notes: list[str],
) -> Outcome:
    """Each tile's PNG encoded once (both recipe chunks), saved to the outputs folder when
    saving is on, served from the session's folder; the run entered in the manifest."""
    encoded = [png_bytes(tile.image, tile.recipe) for tile in tiles]
    saved: list[str | None] = [None] * len(tiles)
    if services.outputs is not None:
        try:
            for index, tile in enumerate(tiles):
                saved[index] = str(services.outputs.save(tile, encoded[index]))
        except OSError as error:
            done = sum(path is not None for path in saved)
            notes.append(f"saved {done} of {len(tiles)} to the outputs folder, then: {error}")
    entry = manifest.append(spec.kind, tiles, parent and (parent.entry, parent.index), saved)
    refs = []
    for index, tile in enumerate(tiles):
        path = services.tile_path(session, entry, index, tile.recipe.seed)
        path.write_bytes(encoded[index])  # a temporary copy: no fsync, unlike a saved tile
        refs.append(TileRef(tile.recipe, str(path), spec.caption(tile), entry, index, saved[index]))
    if saved[0] is not None:
        notes.append(f"saved to {Path(saved[0]).parent}")
    items = [(ref.file, ref.caption) for ref in refs]
    return Outcome(items, refs, " · ".join([summary(tiles), *notes]))


def waiting_line(ahead: int) -> str:
    """ "Waiting for the model: 3 runs ahead": a run's place in line."""
    if ahead == 0:
        return WAITING
    return f"Waiting for the model: {ahead} run{'s' if ahead != 1 else ''} ahead"


def progress_line(fraction: float, text: str, started: float) -> str:
    """ "DDIM: step 12/50 · 24% · about 9 s left": the run's progress as the status line."""
    line = f"{text} · {fraction:.0%}"
    elapsed = time.monotonic() - started
    if 0 < fraction < 1 and elapsed > 1:
        line += f" · about {elapsed * (1 - fraction) / fraction:.0f} s left"
    return line


def summary(tiles: list[Tile]) -> str:
    """One line under a gallery: what was rendered and how long it took. A setting that
    differs between tiles (a matrix's axis) is given as its range."""
    recipes = [tile.recipe for tile in tiles]
    seconds = sum(t.seconds for t in tiles)  # each tile's share of the call that rendered it
    seeds = ", ".join(str(s) for s in dict.fromkeys(r.seed for r in recipes))
    sizes = " or ".join(dict.fromkeys(f"{r.width}x{r.height}" for r in recipes))
    return (
        f"{len(tiles)} tiles · seeds {seeds} · {sizes} · "
        f"{recipes[0].guidance_name} {_span([r.guidance_scale for r in recipes])} · "
        f"{seconds:.1f} s"
    )


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:g}" if low == high else f"{low:g} to {high:g}"


def refusal(error: Exception) -> Outcome:
    """A refused, stopped or failed run: Stop says so under an empty gallery; anything else
    is a toast, and the app keeps serving."""
    if isinstance(error, Stopped):
        gr.Info(str(error))
        return Outcome([], [], f"{error}.")
    if isinstance(error, (RequestError, RenderError)):
        raise gr.Error(str(error), print_exception=False)
    log.error("Render failed", exc_info=error)
    raise gr.Error(f"Render failed ({type(error).__name__}: {error}). The app is still running.")
