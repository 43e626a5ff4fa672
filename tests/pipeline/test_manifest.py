"""The session manifest: order, lineage, small, and read back as replayable tiles."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.manifest import Manifest, ManifestError, ManifestTile, load_manifest
from pipeline.recipe import pixels_sha256
from tests.pipeline.test_metadata import sample_image, sample_recipe


def tiles(kind: str, *seeds: int) -> list[SimpleNamespace]:
    return [
        SimpleNamespace(image=sample_image(seed), recipe=sample_recipe(kind=kind, seed=seed))
        for seed in seeds
    ]


def session() -> Manifest:
    manifest = Manifest("tiny", "0.3.0")
    grid = manifest.append("grid", tiles("grid", 0, 1, 2), files=[Path("/out/a.png"), None, None])
    refine = manifest.append("refine", tiles("refine", 1, 1), parent=(grid, 1))
    manifest.append("compare", tiles("compare", 1), parent=(refine, 0))
    return manifest


def test_entries_keep_order_lineage_and_hashes() -> None:
    data = json.loads(session().to_json())
    assert {key: data[key] for key in ("format", "app_version", "model")} == {
        "format": "seed-explorer-session",
        "app_version": "0.3.0",
        "model": "tiny",
    }
    entries = data["entries"]
    assert [(e["id"], e["kind"], e["parent"]) for e in entries] == [
        (1, "grid", None),
        (2, "refine", {"entry": 1, "tile": 1}),
        (3, "compare", {"entry": 2, "tile": 0}),
    ]
    first = entries[0]["tiles"][0]
    assert first["recipe"] == sample_recipe(kind="grid", seed=0).to_dict()
    assert first["image_sha256"] == pixels_sha256(sample_image(0))
    assert [t["file"] for t in entries[0]["tiles"]] == ["/out/a.png", None, None]
    assert datetime.fromisoformat(entries[0]["time"]).tzinfo is not None


def test_it_stays_small_and_deep_copyable() -> None:
    manifest = session()
    assert len(manifest.to_json()) < 12_000  # six recipes, no pixels
    clone = copy.deepcopy(manifest)
    clone.append("grid", tiles("grid", 9))
    assert len(manifest.entries) == 3


@pytest.mark.parametrize(
    ("kind", "parent", "message"),
    [
        ("grid", (7, 0), "parent entry 7 is not in this session"),
        ("refine", (1, 3), "entry 1 has 3 tiles, no tile 3"),
        ("upscale", None, "kind must be one of grid, refine, compare"),
    ],
)
def test_a_lineage_that_points_nowhere_is_refused(
    kind: str, parent: tuple[int, int] | None, message: str
) -> None:
    manifest = session()
    with pytest.raises(ManifestError, match=message):
        manifest.append(kind, tiles("grid", 1), parent=parent)
    assert len(manifest.entries) == 3


def test_load_manifest_lists_every_tile(tmp_path: Path) -> None:
    manifest = Manifest("tiny")
    manifest.append("grid", tiles("grid", 4, 5), files=["4.png", None])
    loaded = load_manifest(manifest.write(tmp_path / "session.json"))
    assert loaded == [
        ManifestTile(
            1,
            0,
            sample_recipe(kind="grid", seed=4),
            pixels_sha256(sample_image(4)),
            tmp_path / "4.png",
        ),
        ManifestTile(
            1, 1, sample_recipe(kind="grid", seed=5), pixels_sha256(sample_image(5)), None
        ),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "cannot read the manifest"),
        ('{"entries": []}', "not a seed-explorer-session manifest"),
        (
            '{"format": "seed-explorer-session", "entries": [{"id": 1}]}',
            "entry 1 has no known kind",
        ),
    ],
)
def test_unreadable_manifests_say_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "session.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message):
        load_manifest(path)


def test_a_pin_is_an_entry_between_the_run_it_came_from_and_the_run_it_starts() -> None:
    manifest = Manifest("tiny", "0.3.0")
    grid = manifest.append("grid", tiles("grid", 0, 1, 2))
    pin = manifest.pin(grid, 2)
    assert manifest.pin(grid, 2) == pin  # clicking the pinned tile again adds nothing
    manifest.append("refine", tiles("refine", 2), parent=(grid, 2))
    assert manifest.pin(grid, 0) == 4
    with pytest.raises(ManifestError, match="no tile 5"):
        manifest.pin(grid, 5)

    entries = json.loads(manifest.to_json())["entries"]
    assert [(e["id"], e["kind"], e["parent"], len(e["tiles"])) for e in entries] == [
        (1, "grid", None, 3),
        (2, "pin", {"entry": 1, "tile": 2}, 0),
        (3, "refine", {"entry": 1, "tile": 2}, 1),
        (4, "pin", {"entry": 1, "tile": 0}, 0),
    ]


def test_replay_reads_past_the_pins(tmp_path: Path) -> None:
    manifest = Manifest("tiny", "0.3.0")
    grid = manifest.append("grid", tiles("grid", 0, 1))
    manifest.pin(grid, 1)
    manifest.append("refine", tiles("refine", 1), parent=(grid, 1))
    listed = load_manifest(manifest.write(tmp_path / "session.json"))
    assert [(t.entry, t.index, t.recipe.kind) for t in listed] == [
        (1, 0, "grid"),
        (1, 1, "grid"),
        (3, 0, "refine"),
    ]


def test_the_tree_hangs_runs_under_their_pins_and_comes_back_from_json() -> None:
    manifest = session()  # grid 1, refine 2 from (1, 1), compare 3 from (2, 0)
    pin = manifest.pin(1, 1)
    vary = manifest.append("vary", tiles("vary", 1, 1), parent=(1, 1))
    manifest.pin(vary, 0)
    manifest.append("matrix", tiles("matrix", 1), parent=(vary, 0))
    tree = [(depth, entry["id"], entry["kind"]) for depth, entry in manifest.tree()]
    assert tree == [
        (0, 1, "grid"),
        (1, 2, "refine"),  # grown from tile 1 before it was pinned
        (2, 3, "compare"),
        (1, pin, "pin"),
        (2, vary, "vary"),
        (3, 6, "pin"),
        (4, 7, "matrix"),
    ]
    again = Manifest.from_json(manifest.to_json())
    assert again.entries == manifest.entries and again.tree() == manifest.tree()
    assert again.append("grid", tiles("grid", 3)) == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda data: data.update(format="other"), "not a seed-explorer-session"),
        (lambda data: data["entries"][1].update(id=7), "entry 2 is missing or out of order"),
        (lambda data: data["entries"][1].update(parent={"entry": 9, "tile": 0}), "entry 9"),
        (lambda data: data["entries"][0].update(kind="film"), "no known kind"),
    ],
)
def test_an_imported_manifest_is_checked(change, message: str) -> None:
    data = json.loads(session().to_json())
    change(data)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(json.dumps(data))
