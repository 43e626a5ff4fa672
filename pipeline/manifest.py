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

from pipeline.metadata import APP_VERSION, write_atomic
from pipeline.recipe import Recipe, pixels_sha256

if TYPE_CHECKING:
    from pipeline.recipe import Tile

FORMAT = "seed-explorer-session"
KINDS = ("grid", "refine", "compare", "vary", "travel", "matrix")


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
        that its lineage points only at what it holds; a session goes on from it."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ManifestError(f"cannot read the manifest: {error}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ManifestError(f"not a {FORMAT} manifest")
        entries = data.get("entries")
        if not isinstance(entries, list):
            raise ManifestError("the manifest has no list of entries")
        manifest = cls(str(data.get("model", "")), str(data.get("app_version", APP_VERSION)))
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or entry.get("id") != number:
                raise ManifestError(f"entry {number} is missing or out of order")
            if entry.get("kind") not in (*KINDS, "pin") or not isinstance(entry.get("tiles"), list):
                raise ManifestError(f"entry {number} has no known kind or no tiles")
            parent = entry.get("parent")
            if parent is not None:
                try:
                    manifest._check_tile(parent["entry"], parent["tile"])
                except (KeyError, TypeError):
                    raise ManifestError(f"entry {number} has a malformed parent") from None
            for tile in entry["tiles"]:
                try:
                    Recipe.from_dict(tile["recipe"])
                except (KeyError, TypeError) as error:
                    raise ManifestError(f"entry {number} has a malformed tile: {error!r}") from None
            manifest.entries.append(entry)
        return manifest

    def tree(self) -> list[tuple[int, dict[str, Any]]]:
        """The session as its lineage, depth first: (depth, entry) for every entry.

        A pin hangs under the run whose tile it pinned; a run grown from a tile hangs under
        the last pin of that tile before it (under the tile's run if it was never pinned).
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

        def visit(owner: int | None, depth: int) -> None:
            for entry in children.get(owner, []):
                ordered.append((depth, entry))
                visit(entry["id"], depth + 1)

        visit(None, 0)
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
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path.name}: cannot read the manifest: {error}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{path.name}: not a {FORMAT} manifest")
    try:
        return [
            ManifestTile(
                entry=entry["id"],
                index=index,
                recipe=Recipe.from_dict(tile["recipe"]),
                image_sha256=tile["image_sha256"],
                file=None if tile["file"] is None else path.parent / tile["file"],
            )
            for entry in data["entries"]
            for index, tile in enumerate(entry["tiles"])
        ]
    except (KeyError, TypeError) as error:
        raise ManifestError(f"{path.name}: a malformed entry: {error!r}") from None
