"""Hostile input: forged manifests and recipes, text built to be slow, images built to burst.

Beside tests/test_bad_input.py (a user's mistakes), these are an attacker's probes: each must
be refused by name, fast, before the model lock, with nothing read outside the app's folders.
The launched app is spoken to as its page speaks to it, through Gradio's queue (the handlers
are private to the API, but a client can still call them by their fn_index).
"""

from __future__ import annotations

import json
import re
import struct
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin

from pipeline.engine import Engine
from pipeline.manifest import MAX_DEPTH, MAX_ENTRIES, Manifest, ManifestError
from pipeline.metadata import (
    A1111_PARAM,
    MAX_INFOTEXT_CHARS,
    MetadataError,
    fields_from_infotext,
    read_png,
    settings_pairs,
    write_png,
)
from pipeline.recipe import Recipe, Tile, replay_plan
from pipeline.requests import GridRequest, MatrixRequest, RequestError
from tests.conftest import ROOT

SMALL = {"steps": 2, "width": 32, "height": 32}


@pytest.fixture(scope="module")
def tile(engine: Engine) -> Tile:
    return engine.run(GridRequest("a kite", "3", **SMALL))[0]


def with_config(recipe: Recipe, **config: Any) -> Recipe:
    return Recipe.from_dict(
        {**recipe.to_dict(), "scheduler_config": {**recipe.scheduler_config, **config}}
    )


# Recipes: a scheduler config is checked against what the app writes, before the lock.


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"num_train_timesteps": 100_000_000}, "Scheduler config: num_train_timesteps: must be"),
        ({"steps_offset": 10**9}, "Scheduler config: steps_offset: must be"),
        ({"beta_end": float("inf")}, "Scheduler config: beta_end: must be"),
        ({"timestep_spacing": True}, "Scheduler config: timestep_spacing: must be"),
        ({"sigma_max": 1e9}, "Scheduler config: sigma_max: not a setting of"),
        ({"_class_name": "FlowMatchEulerDiscreteScheduler"}, "Scheduler config: _class_name"),
    ],
)
def test_a_recipes_scheduler_config_is_refused_by_name_before_anything_renders(
    engine: Engine, tile: Tile, monkeypatch: pytest.MonkeyPatch, config: dict, message: str
) -> None:
    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("rendered"))
    started = time.monotonic()
    with pytest.raises(RequestError, match=message):
        engine.replay(with_config(tile.recipe, **config))
    assert time.monotonic() - started < 2


def test_a_lockstep_lane_is_checked_as_the_tile_is(engine: Engine, tile: Tile) -> None:
    lane = {"sampler": "X", "scheduler_config": {**tile.recipe.scheduler_config, "bad": 1}}
    own = {k: tile.recipe.to_dict()[k] for k in ("sampler", "scheduler_config", "steps")}
    recipe = Recipe.from_dict(
        {
            **tile.recipe.to_dict(),
            "batch_size": 2,
            "lockstep": {"schedulers": [own, {**lane, "steps": 2}], "per_call": 2},
        }
    )
    with pytest.raises(RequestError, match="Lockstep scheduler 2 config: bad: not a setting"):
        replay_plan(recipe, engine.planner)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("1-" + "9" * 4300 + " [3]", "X values: 999999999999999999999999... is out of range"),
        ("nan, 2", "X values: 'nan' is not a finite number"),
        ("inf", "X values: 'inf' is not a finite number"),
    ],
    ids=["wide", "nan", "inf"],
)
def test_a_matrix_range_of_no_usable_number_is_refused_naming_the_axis(
    engine: Engine, values: str, message: str
) -> None:
    axis = "Steps" if values.startswith("1-") else "CFG scale"
    request = MatrixRequest("a kite", "1", axis, values, "Seed", "1")
    with pytest.raises(RequestError, match=re.escape(message)):
        engine.plan(request)


# Infotext: one pass, under a named cap.


def seconds(text: str) -> float:
    """Seconds one reading of `text` takes: the best of five runs, each of as many readings as
    fill 50 ms, in this process's CPU time (other processes on a shared machine do not count)."""
    best = float("inf")
    for _ in range(5):
        count, started = 0, time.process_time()
        while (elapsed := time.process_time() - started) < 0.05:
            fields_from_infotext(text, ["Euler"], "sd1")
            count += 1
        best = min(best, elapsed / count)
    return best


@pytest.mark.parametrize(
    "unit",
    [
        "a",  # a key that never meets its colon: quadratic in A1111's own pattern
        'Steps: "x, ',  # quoted values that never close
        " ",  # spaces before no LoRA tag: quadratic in a plain `\s*<lora:` pattern
    ],
)
def test_infotext_is_read_in_linear_time(unit: str) -> None:
    def text(size: int) -> str:
        return "a prompt " + unit * (size // len(unit)) + " end"

    # Four times the text: linear is 4x the time, quadratic 16x; 8x between them leaves room
    # for a busy machine's noise that 2x against 4x did not.
    assert seconds(text(40_000)) < 8 * seconds(text(10_000))


@pytest.mark.parametrize(
    "line",
    [
        'Steps: 20, Sampler: "DPM++, 2M", CFG scale: 7, Seed: 1',
        'a: 1, bb: "open, cc: "x\\"y", dd: "", ee:  spaced , -- /ff/: 2, g h-i/j: 3',
        'Lora hashes: "a: 1, b: 2", x, y: "z" tail, Size: 64x64, :, Model: ',
    ],
)
def test_settings_are_read_as_a1111s_own_pattern_reads_them(line: str) -> None:
    assert settings_pairs(line) == A1111_PARAM.findall(line)


def test_infotext_over_the_cap_is_refused_naming_it() -> None:
    started = time.monotonic()
    with pytest.raises(MetadataError, match=f"over the {MAX_INFOTEXT_CHARS:,} it may have"):
        fields_from_infotext("x" * 1_000_000, ["Euler"], "sd1")
    assert time.monotonic() - started < 1


# Manifests: caps on size, entries and depth; every value of its kind.


def exported(tile: Tile, **tile_fields: Any) -> dict:
    manifest = Manifest("tiny")
    manifest.append("grid", [tile])
    data = json.loads(manifest.to_json())
    data["entries"][0]["tiles"][0].update(tile_fields)
    return data


def test_a_deep_lineage_is_walked_without_recursion(tile: Tile) -> None:
    manifest = Manifest("tiny")
    run = manifest.append("grid", [tile])
    while len(manifest.entries) < MAX_ENTRIES - 1:  # pin a tile, refine it, pin that, ...
        manifest.pin(run, 0)
        run = manifest.append("refine", [tile], parent=(run, 0))
    read = Manifest.from_json(manifest.to_json())
    assert [depth for depth, _ in read.tree()][-1] == len(read.entries) - 1


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 200_000 + "]" * 200_000, f"nested deeper than {MAX_DEPTH} levels"),
        (json.dumps({"format": "x", "deep": nested(MAX_DEPTH)}), "nested deeper than"),
        (
            json.dumps({"format": "seed-explorer-session", "entries": [{}] * (MAX_ENTRIES + 1)}),
            f"{MAX_ENTRIES + 1:,} entries is over the {MAX_ENTRIES:,}",
        ),
        (" " * (5 * 1024 * 1024), "characters is over the"),
    ],
    ids=["deep", "nested", "wide", "large"],
)
def test_a_manifest_over_a_cap_is_refused_naming_it(text: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(text)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"file": 5}, "entry 1 tile 0: file must be a path"),
        ({"recipe": "x"}, "entry 1 tile 0: the recipe must be an object"),
        ({"image_sha256": None}, "entry 1 tile 0: image_sha256"),
    ],
)
def test_a_manifest_tile_of_the_wrong_kind_is_refused_naming_the_field(
    tile: Tile, change: dict, message: str
) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(json.dumps(exported(tile, **change)))


@pytest.mark.parametrize(
    ("field", "value"),
    [("guidance_scale", "abc"), ("seed", "../../x"), ("steps", None), ("width", float("nan"))],
)
def test_a_recipe_field_of_the_wrong_kind_is_refused_naming_it(
    tile: Tile, field: str, value: Any
) -> None:
    data = exported(tile)
    data["entries"][0]["tiles"][0]["recipe"][field] = value
    with pytest.raises(ManifestError, match=f"recipe field {field} cannot be"):
        Manifest.from_json(json.dumps(data))


# PNGs: bombs and oversized images refused from what they say, before they are decoded.


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` over a few bytes of pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def text_bomb() -> bytes:
    """A PNG whose compressed text chunk inflates past what Pillow reads (3 MB from 3 kB)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a" * 3_000_000, zip=True)
    path = Path(f"/tmp/bomb-{uuid.uuid4().hex}.png")
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (png_claiming(100_000, 100_000), "refused as a PNG bomb: Image size"),
        (text_bomb(), "refused as a PNG bomb: Decompressed data too large"),
        (png_claiming(5000, 5000), "the image is 5000x5000, over the 16,777,216 pixels"),
    ],
    ids=["pixels", "text", "oversized"],
)
def test_a_png_bomb_is_refused_saying_so(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(MetadataError, match=message):
        read_png(path)


# Through the launched app, as the page calls it.


class Session:
    """One browser session of the launched app, spoken to as its page speaks: the queue."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = uuid.uuid4().hex
        self.config = httpx.get(f"{url}config", timeout=30).json()

    def upload(self, name: str, data: bytes) -> dict:
        files = {"files": (name, data, "application/octet-stream")}
        served = httpx.post(f"{self.url}gradio_api/upload", files=files, timeout=60).json()[0]
        return {"path": served, "orig_name": name, "meta": {"_type": "gradio.FileData"}}

    def call(
        self, elem_id: str, event: str, data: list, event_data: dict | None = None
    ) -> tuple[dict, list[str]]:
        """The event's last message (its output, or its error) and the warnings it raised."""
        ids = {c["id"] for c in self.config["components"] if c["props"].get("elem_id") == elem_id}
        fn, trigger = next(
            (dep["id"], target)
            for dep in self.config["dependencies"]
            for target, name in dep["targets"]
            if target in ids and name == event
        )
        body = {
            "data": data,
            "fn_index": fn,
            "trigger_id": trigger,
            "session_hash": self.session,
            "event_data": event_data,
        }
        event_id = httpx.post(f"{self.url}gradio_api/queue/join", json=body, timeout=30).json()[
            "event_id"
        ]
        warnings = []
        route = f"{self.url}gradio_api/queue/data"
        params = {"session_hash": self.session}
        with httpx.stream("GET", route, params=params, timeout=120) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("event_id") != event_id:
                    continue
                if message["msg"] == "log":
                    warnings.append(message["log"])
                if message["msg"] == "process_completed":
                    return message, warnings
        raise AssertionError("the stream ended before the event completed")

    def error(self, elem_id: str, event: str, data: list) -> str:
        started = time.monotonic()
        message, _ = self.call(elem_id, event, data)
        assert time.monotonic() - started < 20
        assert not message["success"]
        return message["output"]["error"]


@pytest.fixture
def targets(tmp_path: Path) -> dict[str, bytes]:
    """Files outside the app's folders, as a forged manifest names them: their contents."""
    secret = tmp_path / "secret.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(secret)
    svg = tmp_path / "x.svg"
    svg.write_text(f'<svg xmlns="http://www.w3.org/2000/svg"><!-- {uuid.uuid4()} --></svg>')
    (tmp_path / "app-link.png").symlink_to(ROOT / "app.py")
    outputs = ROOT / "outputs"
    outputs.mkdir(exist_ok=True)
    link = outputs / f"forged-{uuid.uuid4().hex}.png"
    link.symlink_to(secret)
    app = (ROOT / "app.py").read_bytes()
    yield {
        "app.py": app,  # relative to the app's working folder
        str(ROOT / "app.py"): app,
        "outputs/../app.py": app,
        str(link): secret.read_bytes(),  # a symlink inside the outputs folder, out of it
        str(tmp_path / "app-link.png"): app,
        str(svg): svg.read_bytes(),
        str(secret): secret.read_bytes(),
        str(tmp_path / "missing.png"): b"",
    }
    link.unlink()


def forged_manifest(tile: Tile, files: list[str | None]) -> bytes:
    """One grid entry per forged file, and the last one pinned."""
    manifest = Manifest("tiny")
    for file in files:
        manifest.append("grid", [tile], files=[file])
    manifest.pin(len(files), 0)
    return manifest.to_json().encode()


def test_a_forged_manifest_shows_no_byte_of_a_file_outside_and_verify_reads_none(
    app_url: str, tile: Tile, targets: dict[str, bytes]
) -> None:
    page = Session(app_url)
    upload = page.upload("session.json", forged_manifest(tile, list(targets)))
    message, warnings = page.call("history-import", "upload", [upload])
    assert message["success"], message
    _, gallery, *_ = message["output"]["data"]
    refused = [f"entry {n} tile 0" for n in range(1, len(targets) + 1)]
    assert warnings == [
        f"Import a session manifest: file of {', '.join(refused[:5])} and 3 more is outside "
        "the app's folders: ignored"
    ]
    shown = [httpx.get(item["image"]["url"], timeout=30).content for item in gallery]
    for content in targets.values():
        assert not any(content and content[:64] in body for body in shown)
    grids = [body for item, body in zip(gallery, shown, strict=True) if "grid" in item["caption"]]
    assert len(set(grids)) == 1  # refused, missing or absent: the same placeholder

    pin = next(i for i, item in enumerate(gallery) if "pin" in item["caption"])
    message, _ = page.call("history-tree", "select", [None], {"index": pin, "value": None})
    assert message["success"], message
    text = page.error("verify-run", "click", [None])
    assert text.startswith("Verify: pin a tile first")


def test_restoring_a_node_whose_pin_has_a_forged_scheduler_warns_and_verifies_nothing(
    app_url: str, tile: Tile
) -> None:
    page = Session(app_url)
    forged = Tile(tile.image, with_config(tile.recipe, num_train_timesteps=10**9), 0.0)
    upload = page.upload("session.json", forged_manifest(forged, [None]))
    message, _ = page.call("history-import", "upload", [upload])
    pin = next(i for i, item in enumerate(message["output"]["data"][1]) if "pin" in item["caption"])
    message, warnings = page.call("history-tree", "select", [None], {"index": pin, "value": None})
    assert message["success"], message
    assert warnings == [
        "History: #2's pinned tile cannot be verified here: Scheduler config: "
        f"num_train_timesteps: must be 1000 for {tile.recipe.scheduler_class} on this model, "
        "got 1000000000"
    ]
    assert page.error("verify-run", "click", [None]).startswith("Verify: pin a tile first")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda t: png_claiming(5000, 5000),
            "Load a recipe: the image is 5000x5000, over the 16,777,216 pixels",
        ),
        (lambda t: text_bomb(), "Load a recipe: refused as a PNG bomb"),
        (
            lambda t: recipe_png(t, num_train_timesteps=10**9),
            "Load a recipe: Scheduler config: num_train_timesteps: must be 1000",
        ),
        (
            lambda t: recipe_png(t, trained_betas=[0.5] * 10**5),
            "Load a recipe: Scheduler config: trained_betas: must be null",
        ),
        (
            lambda t: infotext_png("x" * 1_000_000),
            "Load a recipe: the parameters text is 1,000,000 characters, over the 65,536",
        ),
    ],
    ids=["oversized", "text-bomb", "timesteps", "betas", "infotext"],
)
def test_a_hostile_png_is_refused_by_load_a_recipe_naming_why(
    app_url: str, tile: Tile, tmp_path: Path, make: Any, message: str
) -> None:
    page = Session(app_url)
    upload = page.upload("recipe.png", make(tile))
    assert message in page.error("recipe-file", "upload", [upload])


def recipe_png(tile: Tile, **config: Any) -> bytes:
    path = Path(f"/tmp/recipe-{uuid.uuid4().hex}.png")
    write_png(path, tile.image, with_config(tile.recipe, **config))
    data = path.read_bytes()
    path.unlink()
    return data


def infotext_png(text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    path = Path(f"/tmp/infotext-{uuid.uuid4().hex}.png")
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    data = path.read_bytes()
    path.unlink()
    return data


def test_a_deep_manifest_is_refused_by_the_import_naming_the_cap(app_url: str) -> None:
    page = Session(app_url)
    upload = page.upload("session.json", b"[" * 200_000 + b"]" * 200_000)
    text = page.error("history-import", "upload", [upload])
    assert text == f"Import a session manifest: nested deeper than {MAX_DEPTH} levels"


def test_an_exported_manifest_lives_in_the_sessions_folder(app_url: str) -> None:
    before = set(Path("/tmp").glob("seed-explorer-manifest-*"))
    page = Session(app_url)
    message, _ = page.call("manifest-export", "click", [None])
    assert message["success"], message
    path = message["output"]["data"][0]["value"]["path"]
    assert Path(path).parent.parent.name.startswith("seed-explorer-")
    assert set(Path("/tmp").glob("seed-explorer-manifest-*")) == before
