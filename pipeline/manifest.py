"""The session manifest: every tile rendered in a browser session, in order, with its lineage:
which tile was pinned (a "pin" entry) and what grew from it (an entry's "parent").

Recipes and pixel hashes only, never images, so it stays small enough to live in gr.State
(deep-copied per session) and to download. `python -m pipeline.replay session.json` renders
it all again and says what still matches.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.metadata import APP_VERSION, MetadataError, recipe_from_dict, write_atomic
from pipeline.recipe import Recipe, pixels_sha256

if TYPE_CHECKING:
    from pipeline.recipe import Tile

FORMAT = "seed-explorer-session"
KINDS = ("grid", "refine", "compare", "vary", "travel", "matrix")
# An imported manifest is client text: caps on what reading it may cost, each named when hit.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # a long session's manifest is well under 1 MB
MAX_ENTRIES = 2000
MAX_TILES_PER_ENTRY = 256
MAX_DEPTH = 32  # nesting of JSON objects and lists; an exported manifest nests about 10 deep
MAX_PATH_CHARS = 4096


class ManifestError(ValueError):
    """A manifest that cannot be read, or a lineage that points nowhere."""


@dataclass(frozen=True)
class ManifestTile:
    """One tile of a manifest, as replay needs it."""

    entry: int
    index: int
    recipe: Recipe
    image_sha256: str
    file: Path | None  # the saved PNG, when there is one


class Manifest:
    """Append-only record of a session: which request made which tiles, from which pin."""

    def __init__(self, model: str, app_version: str = APP_VERSION) -> None:
        self.header: dict[str, Any] = {
            "format": FORMAT,
            "app_version": app_version,
            "model": model,
        }
        self.entries: list[dict[str, Any]] = []

    def append(
        self,
        kind: str,
        tiles: Sequence[Tile],
        parent: tuple[int, int] | None = None,
        files: Sequence[str | Path | None] | None = None,
    ) -> int:
        """Record one run; `parent` is (entry id, tile index) of the pinned tile. Returns its id."""
        if kind not in KINDS:
            raise ManifestError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if parent is not None:
            self._check_tile(*parent)
        files = files if files is not None else [None] * len(tiles)
        if len(files) != len(tiles):
            raise ManifestError(f"{len(tiles)} tiles but {len(files)} files")
        entry_id = len(self.entries) + 1
        self.entries.append(
            {
                "id": entry_id,
                "kind": kind,
                **self._now(),
                "parent": None if parent is None else {"entry": parent[0], "tile": parent[1]},
                "tiles": [
                    {
                        "recipe": tile.recipe.to_dict(),
                        "image_sha256": pixels_sha256(tile.image),
                        "file": None if file is None else str(file),
                    }
                    for tile, file in zip(tiles, files, strict=True)
                ],
            }
        )
        return entry_id

    def pin(self, entry_id: int, index: int) -> int:
        """Record that a tile was pinned (an entry with no tiles; its parent is the tile).

        Pinning the tile that is already the last pin records nothing. Returns the pin's id.
        """
        self._check_tile(entry_id, index)
        tile = {"entry": entry_id, "tile": index}
        last = next((e for e in reversed(self.entries) if e["kind"] == "pin"), None)
        if last is not None and last["parent"] == tile:
            return last["id"]
        pin_id = len(self.entries) + 1
        self.entries.append(
            {"id": pin_id, "kind": "pin", **self._now(), "parent": tile, "tiles": []}
        )
        return pin_id

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """A manifest written by `to_json` (an exported session), checked entry by entry so
        that its lineage points only at what it holds and every value is of its kind; a
        session goes on from it. Over a cap (size, entries, tiles, nesting) it is refused by
        name, before it costs more than reading it."""
        if len(text) > MAX_MANIFEST_BYTES:
            raise ManifestError(
                f"{len(text):,} characters is over the {MAX_MANIFEST_BYTES:,} a manifest may have"
            )
        try:
            data = json.loads(text)
        except RecursionError:
            raise ManifestError(f"nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as error:
            raise ManifestError(f"cannot read the manifest: {error}") from None
        _check_depth(data)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ManifestError(f"not a {FORMAT} manifest")
        entries = data.get("entries")
        if not isinstance(entries, list):
            raise ManifestError("the manifest has no list of entries")
        if len(entries) > MAX_ENTRIES:
            raise ManifestError(
                f"{len(entries):,} entries is over the {MAX_ENTRIES:,} a manifest may have"
            )
        model, version = data.get("model", ""), data.get("app_version", APP_VERSION)
        if not isinstance(model, str) or not isinstance(version, str):
            raise ManifestError("model and app_version must be text")
        manifest = cls(model[:MAX_PATH_CHARS], version[:100])
        for number, entry in enumerate(entries, start=1):
            manifest.entries.append(manifest._checked_entry(number, entry))
        return manifest

    def _checked_entry(self, number: int, entry: Any) -> dict[str, Any]:
        """Entry `number` as `append` and `pin` write one, from what a client sent."""
        if not isinstance(entry, dict) or entry.get("id") != number:
            raise ManifestError(f"entry {number} is missing or out of order")
        kind, tiles = entry.get("kind"), entry.get("tiles")
        if kind not in (*KINDS, "pin") or not isinstance(tiles, list):
            raise ManifestError(f"entry {number} has no known kind or no tiles")
        if not tiles and kind != "pin":
            raise ManifestError(f"entry {number}: a {kind} has tiles")
        if len(tiles) > MAX_TILES_PER_ENTRY:
            raise ManifestError(
                f"entry {number}: {len(tiles):,} tiles is over the {MAX_TILES_PER_ENTRY} an "
                "entry may have"
            )
        parent = entry.get("parent")
        if parent is not None:
            if not isinstance(parent, dict) or not all(
                _is_whole(parent.get(key)) for key in ("entry", "tile")
            ):
                raise ManifestError(f"entry {number} has a malformed parent")
            self._check_tile(parent["entry"], parent["tile"])
            parent = {"entry": parent["entry"], "tile": parent["tile"]}
        time = entry.get("time")
        return {
            "id": number,
            "kind": kind,
            "time": time[:40] if isinstance(time, str) else "",
            "parent": parent,
            "tiles": [_checked_tile(f"entry {number} tile {i}", t) for i, t in enumerate(tiles)],
        }

    def tree(self) -> list[tuple[int, dict[str, Any]]]:
        """The session as its lineage, depth first: (depth, entry) for every entry.

        A pin hangs under the run whose tile it pinned; a run grown from a tile hangs under
        the last pin of that tile before it (under the tile's run if it was never pinned).
        Walked with a stack, not recursion: a lineage may be thousands deep.
        """
        children: dict[int | None, list[dict[str, Any]]] = {}
        pins: dict[tuple[int, int], int] = {}
        for entry in self.entries:
            parent = entry["parent"]
            owner = None
            if parent is not None:
                tile = (parent["entry"], parent["tile"])
                owner = parent["entry"] if entry["kind"] == "pin" else pins.get(tile, tile[0])
                if entry["kind"] == "pin":
                    pins[tile] = entry["id"]
            children.setdefault(owner, []).append(entry)
        ordered: list[tuple[int, dict[str, Any]]] = []
        stack = [(0, entry) for entry in reversed(children.get(None, []))]
        while stack:
            depth, entry = stack.pop()
            ordered.append((depth, entry))
            stack += [(depth + 1, child) for child in reversed(children.get(entry["id"], []))]
        return ordered

    def to_json(self) -> str:
        return json.dumps({**self.header, "entries": self.entries}, indent=1, ensure_ascii=False)

    def write(self, path: str | Path) -> Path:
        """Write the manifest atomically (for download, or for replay)."""
        path = Path(path)
        write_atomic(path, self.to_json().encode())
        return path

    @staticmethod
    def _now() -> dict[str, str]:
        return {"time": datetime.now(UTC).isoformat(timespec="seconds")}

    def _check_tile(self, entry_id: int, index: int) -> None:
        if not 1 <= entry_id <= len(self.entries):
            raise ManifestError(f"parent entry {entry_id} is not in this session")
        count = len(self.entries[entry_id - 1]["tiles"])
        if not 0 <= index < count:
            raise ManifestError(f"entry {entry_id} has {count} tiles, no tile {index}")


def load_manifest(path: str | Path) -> list[ManifestTile]:
    """Every tile of a manifest file, in order; relative file paths are from its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path.name}: cannot read the manifest: {error}") from None
    try:
        manifest = Manifest.from_json(text)
    except ManifestError as error:
        raise ManifestError(f"{path.name}: {error}") from None
    return [
        ManifestTile(
            entry=entry["id"],
            index=index,
            recipe=Recipe.from_dict(tile["recipe"]),
            image_sha256=tile["image_sha256"],
            file=None if tile["file"] is None else path.parent / tile["file"],
        )
        for entry in manifest.entries
        for index, tile in enumerate(entry["tiles"])
    ]


def inside(file: str | None, roots: Sequence[Path | None]) -> Path | None:
    """`file` resolved (symlinks too), if it lies inside one of `roots`; else None.

    What a manifest or recipe names is a client's path: only the app's own folders (the
    outputs folder, the session's served folder) are read from. Whether the file exists plays
    no part, so a refused path and a missing one look the same.
    """
    if not file:
        return None
    resolved = Path(file).resolve()
    for root in roots:
        if root is not None and resolved.is_relative_to(root.resolve()):
            return resolved
    return None


def _checked_tile(where: str, tile: Any) -> dict[str, Any]:
    """A manifest tile from a client: a recipe of the right types, a hash, a file path."""
    if not isinstance(tile, dict):
        raise ManifestError(f"{where} is not an object")
    sha = tile.get("image_sha256")
    if not isinstance(sha, str) or len(sha) > 64:
        raise ManifestError(f"{where}: image_sha256 must be a sha256 in hex")
    file = tile.get("file")
    if file is not None and (not isinstance(file, str) or not 0 < len(file) <= MAX_PATH_CHARS):
        raise ManifestError(f"{where}: file must be a path (text) or null, got {_kind(file)}")
    try:
        recipe = recipe_from_dict(tile.get("recipe"), where)
    except MetadataError as error:
        raise ManifestError(str(error)) from None
    return {"recipe": recipe.to_dict(), "image_sha256": sha, "file": file}


def _check_depth(data: Any) -> None:
    """Nesting within MAX_DEPTH, walked with a stack (JSON nested deeper than Python's
    recursion limit is already refused by the reader)."""
    stack = [(data, 1)] if isinstance(data, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ManifestError(f"nested deeper than {MAX_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value
        stack += [(child, depth + 1) for child in children if isinstance(child, dict | list)]


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return repr(value)[:40] if isinstance(value, int | float | bool) else type(value).__name__
