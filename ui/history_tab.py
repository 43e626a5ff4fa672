"""History: the session as its lineage, grid → pin → refine / compare / vary / travel /
matrix, one thumbnail per node; clicking a node restores its settings and its pin. Importing
an exported session manifest brings the tree back after a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image, ImageDraw

from pipeline.manifest import Manifest, ManifestError, inside
from pipeline.recipe import Recipe
from pipeline.requests import RequestError
from ui.runner import Services
from ui.shared import SharedInputs, pin_values, variation_of
from ui.state import TileRef

PLACEHOLDER = (64, 64)


def build(services: Services, shared: SharedInputs) -> None:
    with gr.Tab("History", id="history") as tab:
        gr.Markdown(
            "Every run of this session under the tile it grew from. Click a node to bring "
            "back its settings and its pin.",
            elem_id="history-note",
        )
        nodes = gr.State([])
        tree = gr.Gallery(
            label="Session tree",
            elem_id="history-tree",
            columns=8,
            object_fit="contain",
            height="auto",
            fit_columns=False,
            allow_preview=False,
        )
        detail = gr.Markdown(elem_id="history-detail")
        with gr.Row():
            refresh = gr.Button("Refresh", elem_id="history-refresh", size="sm", scale=0)
            manifest_file = gr.File(
                label="Import a session manifest (exported from Reproduce)",
                file_types=[".json"],
                elem_id="history-import",
                height=100,
            )

    def show(manifest: Manifest, request: gr.Request) -> tuple[Any, Any]:
        session = request.session_hash
        folder, roots = services.folder(session), services.readable(session)
        found = [node(manifest, depth, entry, folder, roots) for depth, entry in manifest.tree()]
        return [(thumb, caption) for thumb, caption, _ in found], [n for _, _, n in found]

    def restore(shown: list[dict[str, Any]], evt: gr.SelectData) -> tuple[Any, ...]:
        if not isinstance(evt.index, int) or not 0 <= evt.index < len(shown):
            return (gr.skip(),) * (len(shared.restore_outputs()) + 1)
        chosen = shown[evt.index]
        recipe = Recipe.from_dict(chosen["recipe"])
        prompt = recipe.prompt.removesuffix(recipe.suffix or "")
        settings = (recipe.sampler, recipe.steps, recipe.guidance_scale, recipe.width)
        values = (prompt, recipe.negative_prompt, *settings, recipe.height)
        pin = chosen["pin"]
        if pin is None:
            return *values, *(gr.skip(),) * len(shared.pin_outputs()), chosen["detail"]
        pinned = Recipe.from_dict(pin["recipe"])
        tile = None
        try:
            services.engine.planner.replay(pinned)
        except RequestError as error:
            gr.Warning(f"History: #{chosen['id']}'s pinned tile cannot be verified here: {error}")
        else:
            if pin["file"] is not None:
                tile = TileRef(
                    pinned, pin["file"], f"seed {pinned.seed}", pin["entry"], pin["tile"]
                )
        return *values, *pin_values(pinned.seed, tile, variation_of(pinned)), chosen["detail"]

    def load(path: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not path:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            manifest = Manifest.from_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ManifestError) as error:
            raise gr.Error(f"Import a session manifest: {error}", print_exception=False) from None
        refused = outside(manifest, services.readable(request.session_hash))
        if refused:
            more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
            gr.Warning(
                f"Import a session manifest: file of {', '.join(refused[:5])}{more} is outside "
                "the app's folders: ignored"
            )
        return manifest, *show(manifest, request)

    tab.select(show, shared.manifest, [tree, nodes], api_visibility="private")
    refresh.click(show, shared.manifest, [tree, nodes], api_visibility="private")
    tree.select(restore, nodes, [*shared.restore_outputs(), detail], api_visibility="private")
    manifest_file.upload(
        load, manifest_file, [shared.manifest, tree, nodes], api_visibility="private"
    )


def node(
    manifest: Manifest,
    depth: int,
    entry: dict[str, Any],
    folder: Path,
    roots: tuple[Path, ...],
) -> tuple[Any, str, dict[str, Any]]:
    """One node: its thumbnail, its caption, and what clicking it restores (plain values).

    A run shows its first tile and restores its settings with the tile it grew from as the
    pin; a pin shows and restores its tile. Files are looked for only in `roots`.
    """
    parent = entry["parent"]
    pin = None
    if parent is not None:
        pin = _tile(manifest, parent["entry"], parent["tile"], folder, roots)
    shown = pin if entry["kind"] == "pin" else _tile(manifest, entry["id"], 0, folder, roots)
    recipe = Recipe.from_dict(shown["recipe"])
    caption = f"{'↳ ' * depth}#{entry['id']} {_what(entry, recipe)}"
    detail = (
        f"**#{entry['id']} {entry['kind']}** · {recipe.prompt} · {recipe.sampler}, "
        f"{recipe.steps} steps, CFG {recipe.guidance_scale:g}, {recipe.width}x{recipe.height}"
    )
    thumb = shown["file"] or _placeholder(entry["kind"], folder)
    return (
        thumb,
        caption,
        {"id": entry["id"], "recipe": shown["recipe"], "pin": pin, "detail": detail},
    )


def _what(entry: dict[str, Any], recipe: Recipe) -> str:
    """A node's caption after its number: what the run was."""
    tiles = entry["tiles"]
    kind = entry["kind"]
    if kind == "pin":
        variation = variation_of(recipe)
        more = f" → {recipe.variation_seed} at {recipe.variation_strength:g}" if variation else ""
        return f"pin · seed {recipe.seed}{more}"
    if kind == "matrix" and recipe.cell:
        return f"matrix · {recipe.cell.get('x_axis')} by {recipe.cell.get('y_axis')}"
    if kind == "travel":
        return f"travel · {recipe.seed} → {recipe.variation_seed}, {len(tiles)} frames"
    if kind == "vary":
        return f"vary · {len(tiles)} seeds at {tiles[-1]['recipe']['variation_strength']:g}"
    seeds = ", ".join(dict.fromkeys(str(tile["recipe"]["seed"]) for tile in tiles))
    return f"{kind} · {len(tiles)} tiles · seed {seeds}"


def _tile(
    manifest: Manifest, entry: int, index: int, folder: Path, roots: tuple[Path, ...]
) -> dict[str, Any]:
    """A manifest tile with the PNG it can be shown from: this session's served copy (the
    runner names it by entry, place and seed), else its saved copy if that lies in `roots`,
    else None (a refused file and a missing one look the same)."""
    tile = manifest.entries[entry - 1]["tiles"][index]
    served = folder / f"{entry:04d}-{index:02d}-{tile['recipe']['seed']}.png"
    saved = inside(tile["file"], roots)
    file = served if served.is_file() else saved if saved and saved.is_file() else None
    return {"recipe": tile["recipe"], "file": file and str(file), "entry": entry, "tile": index}


def outside(manifest: Manifest, roots: tuple[Path, ...]) -> list[str]:
    """ "entry N tile I" for every tile whose file lies outside `roots` (whether or not it
    exists: the answer must not tell)."""
    return [
        f"entry {entry['id']} tile {index}"
        for entry in manifest.entries
        for index, tile in enumerate(entry["tiles"])
        if tile["file"] is not None and inside(tile["file"], roots) is None
    ]


def _placeholder(kind: str, folder: Path) -> str:
    """A grey square naming the run, for a tile whose PNG this session no longer has."""
    path = folder / f"history-{kind}.png"
    if not path.is_file():
        image = Image.new("RGB", PLACEHOLDER, (200, 200, 200))
        ImageDraw.Draw(image).text((6, 26), kind, fill=(60, 60, 60))
        image.save(path)
    return str(path)
