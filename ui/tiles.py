"""A run's finished tiles, written once: one PNG encoding per tile (with both recipe chunks)
whose bytes are served, saved to the outputs folder and later zipped; then the manifest entry
and the gallery's items.

The served copy is written straight into Gradio's file cache (ui/runner.py's Services), so
Gradio serves it as it is instead of hashing and copying every file again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from pipeline.manifest import Manifest
from pipeline.metadata import png_bytes
from pipeline.recipe import Tile
from ui.state import TileRef

if TYPE_CHECKING:
    from ui.runner import Services, Update
    from ui.tabs import TabSpec


def write_tiles(
    services: Services,
    spec: TabSpec,
    tiles: list[Tile],
    manifest: Manifest,
    parent: TileRef | None,
    folder: Path,
) -> Update:
    """Writes the tiles' PNGs (served from the session's `folder`), enters them in the
    manifest, and says what was rendered."""
    notes = []
    encoded = [png_bytes(tile.image, tile.recipe) for tile in tiles]  # once, for every copy
    saved: list[str | None] = [None] * len(tiles)
    if services.outputs is not None:
        try:
            for index, tile in enumerate(tiles):
                saved[index] = str(services.outputs.save(tile, encoded[index]))
        except OSError as error:
            done = sum(path is not None for path in saved)
            notes.append(f"saved {done} of {len(tiles)} to the outputs folder, then: {error}")
    entry = manifest.append(spec.kind, tiles, parent and (parent.entry, parent.index), saved)
    caption = spec.caption
    refs = []
    for index, tile in enumerate(tiles):
        path = folder / f"{entry:04d}-{index:02d}-{tile.recipe.seed}.png"
        path.write_bytes(encoded[index])  # a temporary copy: no fsync, unlike a saved tile
        refs.append(TileRef(tile.recipe, str(path), caption(tile), entry, index, saved[index]))
    if any(services.engine.truncated(prompt) for prompt in {t.recipe.prompt for t in tiles}):
        notes.append("the prompt is longer than the model reads (77 tokens): the tail is ignored")
        gr.Warning("Prompt truncated: the model reads the first 77 tokens; the tail is ignored.")
    if saved[0] is not None:
        notes.append(f"saved to {Path(saved[0]).parent}")
    items = [(ref.file, ref.caption) for ref in refs]
    return items, refs, " · ".join([summary(tiles), *notes]), manifest


def summary(tiles: list[Tile]) -> str:
    """One line under a gallery: what was rendered and how long it took."""
    first = tiles[0].recipe
    seconds = sum(t.seconds for t in tiles)  # each tile's share of the call that rendered it
    seeds = ", ".join(str(s) for s in dict.fromkeys(t.recipe.seed for t in tiles))
    return (
        f"{len(tiles)} tiles · seeds {seeds} · {first.width}x{first.height} · "
        f"CFG {first.guidance_scale:g} · {seconds:.1f} s"
    )
