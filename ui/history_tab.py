"""History: the session as its lineage, grid → pin → refine / compare / vary / travel /
matrix: an indented outline with every run's full label and the pin it grew from, and one
thumbnail per node; clicking a thumbnail restores its settings and its pin. Importing an
exported session manifest brings the tree back after a reload."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image, ImageDraw

from pipeline.manifest import THUMBNAIL_SIDE, Entry, Manifest, ManifestError, TileAt, inside
from pipeline.recipe import Recipe
from pipeline.requests import RequestError
from ui.context import Services
from ui.state import Pin, TileRef
from ui.widgets import SharedInputs, Updates

PLACEHOLDER = (64, 64)
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~])")


@dataclass(frozen=True)
class Shown:
    """A manifest tile with the PNG it can be shown from (None: this session has none)."""

    at: TileAt
    recipe: Recipe
    file: str | None


@dataclass(frozen=True)
class Node:
    """What a click on a node restores: a run's settings with the tile it grew from as the
    pin; a pin's tile, pinned again."""

    entry: int
    shown: Shown  # its thumbnail's tile, whose settings it restores
    pinned: Shown | None
    detail: str


def build(services: Services, shared: SharedInputs) -> None:
    engine = services.engine
    with gr.Tab("History", id="history") as tab:
        gr.Markdown(
            "Every run of this session under the pin it grew from. Click a thumbnail to bring "
            "back its settings and its pin.",
            elem_id="history-note",
        )
        outline = gr.Markdown(elem_id="history-outline")
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

    def show(manifest: Manifest, request: gr.Request) -> Updates:
        session = request.session_hash
        found = [
            (depth, entry, node(services, session, manifest, entry))
            for depth, entry in manifest.lineage()
        ]
        gallery = [
            (
                n.shown.file or _placeholder(entry.kind, services.folder(session)),
                f"#{n.entry} {entry.kind}",
            )
            for _, entry, n in found
        ]
        lines = [f"{'  ' * depth}- {label(manifest, entry)}" for depth, entry, _ in found]
        return {
            # A line before the list: Gradio dedents a Markdown value by its lines' common
            # indent, which the list's first item would otherwise set.
            outline: "\n".join(["Runs, each under the pin it grew from:", "", *lines])
            if lines
            else "Nothing rendered yet.",
            tree: gallery,
            nodes: [n for _, _, n in found],
        }

    def restore(shown: list[Node], evt: gr.SelectData) -> Updates:
        if not isinstance(evt.index, int) or not 0 <= evt.index < len(shown):
            return gr.skip()
        chosen = shown[evt.index]
        recipe = chosen.shown.recipe
        updates = shared.restore(recipe, None)
        if recipe.sampler not in engine.schedulers:
            gr.Warning(
                f"History: #{chosen.entry} used {recipe.sampler}, which this model does "
                "not offer: the scheduler stays as it is"
            )
            del updates[shared.scheduler]
        pinned = chosen.pinned
        if pinned is None:
            return updates | {detail: chosen.detail}
        tile = None
        try:
            engine.replay_plan(pinned.recipe)
        except RequestError as error:
            gr.Warning(f"History: #{chosen.entry}'s pinned tile cannot be verified here: {error}")
        else:
            if pinned.file is not None:
                caption = f"seed {pinned.recipe.seed}"
                tile = TileRef(pinned.recipe, pinned.file, caption, pinned.at.entry, pinned.at.tile)
        pin = Pin.of_recipe(pinned.recipe, tile)
        return updates | shared.show_pin(pin) | {detail: chosen.detail}

    def load(path: str | None, request: gr.Request) -> Updates:
        if not path:
            return gr.skip()
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
        made_with, running = manifest.header["model"], engine.card.model_id
        if made_with != running:
            gr.Warning(
                f"Import a session manifest: made with {made_with}, and this app runs "
                f"{running}: its settings come back, its images will differ"
            )
        return {shared.manifest: manifest} | show(manifest, request)

    shown_parts = [tree, nodes, outline]
    tab.select(show, shared.manifest, shown_parts, api_visibility="private")
    refresh.click(show, shared.manifest, shown_parts, api_visibility="private")
    tree.select(restore, nodes, [*shared.restore_outputs(), detail], api_visibility="private")
    manifest_file.upload(
        load, manifest_file, [shared.manifest, *shown_parts], api_visibility="private"
    )


def node(services: Services, session: str, manifest: Manifest, entry: Entry) -> Node:
    """What clicking the entry's node restores. Files are looked for only in the folders
    this session may read."""
    pinned = None if entry.parent is None else tile_of(services, session, manifest, entry.parent)
    if entry.kind == "pin" and pinned is not None:
        shown = pinned
    else:
        shown = tile_of(services, session, manifest, TileAt(entry.id, 0))
    recipe = shown.recipe
    detail = (
        f"**#{entry.id} {entry.kind}** · {_text(recipe.prompt)} · {recipe.sampler}, "
        f"{recipe.steps} steps, {recipe.guidance_name} {recipe.guidance_scale:g}, "
        f"{recipe.width}x{recipe.height}"
    )
    return Node(entry.id, shown, pinned, detail)


def label(manifest: Manifest, entry: Entry) -> str:
    """A node's line in the outline: its number and kind, what it was, and the pin it grew
    from."""
    if entry.kind == "pin" and entry.parent is not None:
        at = entry.parent
        recipe = manifest.entry(at.entry).tiles[at.tile].recipe
        variation = Pin.of_recipe(recipe).note().replace("**", "")
        more = f" {variation}" if variation else ""
        return f"**#{entry.id} pin** · seed {recipe.seed}{more} (tile {at.tile + 1} of #{at.entry})"
    recipe = entry.tiles[0].recipe
    grew = ""
    if entry.parent is not None:
        at = entry.parent
        grew = f" · from seed {manifest.entry(at.entry).tiles[at.tile].recipe.seed} (#{at.entry})"
    settings = (
        f"{recipe.sampler}, {recipe.steps} steps, "
        f"{recipe.guidance_name} {recipe.guidance_scale:g}, {recipe.width}x{recipe.height}"
    )
    return (
        f"**#{entry.id} {entry.kind}** · {_what(entry)}{grew} · "
        f"“{_text(recipe.prompt)}” · {settings}"
    )


def _what(entry: Entry) -> str:
    """What the run was, in a few words."""
    tiles = [tile.recipe for tile in entry.tiles]
    first = tiles[0]
    if entry.kind == "matrix" and first.cell:
        return f"{first.cell.get('x_axis')} by {first.cell.get('y_axis')}, {len(tiles)} cells"
    if entry.kind == "travel":
        return f"seed {first.seed} to {first.variation_seed} in {len(tiles)} frames"
    if entry.kind == "vary":
        return f"{len(tiles)} variation seeds at {tiles[-1].variation_strength:g}"
    if entry.kind == "compare":
        return ", ".join(f"{tile.sampler} {tile.steps} steps" for tile in tiles)
    seeds = ", ".join(dict.fromkeys(str(tile.seed) for tile in tiles))
    return f"{len(tiles)} tiles, seed {seeds}"


def tile_of(services: Services, session: str, manifest: Manifest, at: TileAt) -> Shown:
    """A manifest tile with the PNG it can be shown from: this session's served copy, else its
    saved copy if that lies in the session's readable folders, else None (a refused file and
    a missing one look the same)."""
    tile = manifest.entry(at.entry).tiles[at.tile]
    served = services.tile_path(session, at.entry, at.tile, tile.recipe.seed)
    saved = inside(tile.file, services.readable(session))
    file = served if served.is_file() else saved if saved and saved.is_file() else None
    if file is None and tile.thumbnail:
        file = _from_thumbnail(tile.thumbnail, services.folder(session))
    return Shown(at, tile.recipe, file and str(file))


def thumbnails(services: Services, session: str, manifest: Manifest) -> dict[tuple[int, int], str]:
    """Small PNGs (base64) of the tiles History shows, by (entry, tile), from the files this
    session has: an exported manifest brings its pictures back after a reload, saved or not."""
    found: dict[tuple[int, int], str] = {}
    for _, entry in manifest.lineage():
        at = entry.parent if entry.kind == "pin" else TileAt(entry.id, 0)
        shown = at and tile_of(services, session, manifest, at)
        if shown is not None and shown.file and (at.entry, at.tile) not in found:
            with Image.open(shown.file) as image:
                image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, format="PNG", optimize=True)
            found[(at.entry, at.tile)] = base64.b64encode(buffer.getvalue()).decode()
    return found


def _from_thumbnail(text: str, folder: Path) -> Path | None:
    """An imported thumbnail drawn again by the app into the session's folder (never the
    client's bytes served as they came); None for one that is not a small picture."""
    try:
        with Image.open(io.BytesIO(base64.b64decode(text, validate=True))) as image:
            if image.format != "PNG" or max(image.size) > THUMBNAIL_SIDE:
                return None
            picture = image.convert("RGB")
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError):
        return None
    path = folder / f"thumbnail-{hashlib.sha256(text.encode()).hexdigest()[:16]}.png"
    picture.save(path)
    return path


def outside(manifest: Manifest, roots: tuple[Path, ...]) -> list[str]:
    """ "entry N tile I" for every tile whose file lies outside `roots` (whether or not it
    exists: the answer must not tell)."""
    return [
        f"entry {entry['id']} tile {index}"
        for entry in manifest.entries
        for index, tile in enumerate(entry["tiles"])
        if tile["file"] is not None and inside(tile["file"], roots) is None
    ]


def _text(text: str) -> str:
    """Client text shown as itself in Markdown."""
    return _MARKDOWN.sub(r"\\\1", text)


def _placeholder(kind: str, folder: Path) -> str:
    """A grey square naming the run, for a tile whose PNG this session no longer has."""
    path = folder / f"history-{kind}.png"
    if not path.is_file():
        image = Image.new("RGB", PLACEHOLDER, (200, 200, 200))
        ImageDraw.Draw(image).text((6, 26), kind, fill=(60, 60, 60))
        image.save(path)
    return str(path)
