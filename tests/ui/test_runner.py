"""A run without a server: previews make live frames, tiles arrive as PNGs with their recipe,
Stop works."""

import threading
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from pipeline.engine import Engine, Hooks, OutOfMemory
from pipeline.manifest import Manifest
from pipeline.metadata import read_png
from pipeline.outputs import OutputFolder
from pipeline.requests import GridRequest, RefineRequest
from tests.ui.helpers import live_frames
from ui import runner, tabs
from ui.bundle import bundle
from ui.runner import Services


def grid_run(
    services: Services, manifest: Manifest, request: GridRequest, session: str = "session"
) -> list:
    plan = services.engine.plan(request)
    return list(runner.run(services, tabs.GRID, plan, manifest, None, session))


def test_a_run_draws_live_frames_then_streams_tiles_with_their_recipes(
    engine: Engine, tmp_path: Path
) -> None:
    services = Services(engine, OutputFolder(tmp_path / "outputs"), preview_interval=0)
    frames = live_frames(services)
    manifest = Manifest("tiny")
    request = GridRequest("a lighthouse", (3, 4), steps=10, scheduler="Euler")
    updates = grid_run(services, manifest, request)

    assert updates[0][:3] == ([], [], "Waiting for the model…")  # the old tiles go at once
    assert frames  # at least one, made while the run denoised
    # An API caller is sent progress lines only; the previews are the browser's live frame.
    assert all(u[:2] == (gr.skip(), gr.skip()) for u in updates[1:-1])
    lines = [u[2] for u in updates[1:-1]]
    assert lines[-1] == "Euler: step 10/10 · 100%"
    last = frames[-1]
    assert last.seeds == (3, 4) and last.columns == 2 and last.cell == (192, 192)
    with Image.open(last.path) as jpeg:  # one small lossy file for both tiles
        assert (jpeg.format, jpeg.size) == ("JPEG", (384, 192))
    assert [last.seed_at(20, 20), last.seed_at(300, 100), last.seed_at(400, 20)] == [3, 4, None]
    assert services.live.latest("session") is None  # over: the tiles replace it
    items, refs, status, returned = updates[-1]
    assert [caption for _, caption in items] == ["seed 3", "seed 4"]
    assert status.startswith("2 tiles · seeds 3, 4") and "saved to" in status
    assert returned is manifest and [e["kind"] for e in manifest.entries] == ["grid"]
    for (file, _), ref in zip(items, refs, strict=True):
        image, recipe, infotext = read_png(file)
        assert recipe == ref.recipe and f"Seed: {ref.seed}" in infotext
        with Image.open(ref.saved) as saved:
            assert np.array_equal(np.asarray(saved), np.asarray(image))


def test_a_refinement_records_the_tile_it_grew_from(engine: Engine) -> None:
    services = Services(engine, previews=False)
    manifest = Manifest("tiny")
    *_, (_, refs, _, _) = grid_run(services, manifest, GridRequest("a", (7, 8), steps=2))
    pinned = refs[1]
    plan = engine.plan(RefineRequest("a", 8, (", artsy",), steps=2))
    list(runner.run(services, tabs.REFINE, plan, manifest, runner.parent(pinned, 8), "session"))
    assert manifest.entries[1]["parent"] == {"entry": 1, "tile": 1}
    assert runner.parent(pinned, 9) is None  # a seed typed since is not the pinned tile


def test_stop_ends_the_run_and_says_so(engine: Engine) -> None:
    services = Services(engine, previews=False)
    plan = engine.plan(GridRequest("a lighthouse", (0, 1), steps=150))
    updates = runner.run(services, tabs.GRID, plan, Manifest("tiny"), None, "session")
    next(updates)  # "Waiting for the model…"
    assert "step" in next(updates)[2]  # a progress line: the run is denoising
    assert services.runs.stop("session")
    updates = list(updates)
    items, refs, status, _ = updates[-1]
    assert (items, refs) == ([], [])
    assert status.startswith("Stopped at step") and status.endswith("of 150.")
    assert not services.runs.stop("session")  # the run is over


def test_a_failed_run_is_a_toast(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    services = Services(engine, previews=False)
    monkeypatch.setattr(Engine, "render", lambda *_: (_ for _ in ()).throw(OutOfMemory("full")))
    with pytest.raises(gr.Error, match="full"):
        grid_run(services, Manifest("tiny"), GridRequest("a", (1,), steps=2))


def test_sessions_never_share_served_files_and_a_closed_one_leaves_none(
    engine: Engine, tmp_path: Path
) -> None:
    services = Services(engine, served=tmp_path / "served")
    (tmp_path / "served").mkdir()
    request = GridRequest("a lighthouse", (0, 1), steps=2)
    other = GridRequest("a kite", (0, 1), steps=2)  # same entry, index, seeds
    mine = grid_run(services, Manifest("tiny"), request, "../../mine")[-1][1]
    theirs = grid_run(services, Manifest("tiny"), other, "theirs")[-1][1]

    assert {ref.file for ref in mine}.isdisjoint(ref.file for ref in theirs)
    for ref in mine:
        assert read_png(ref.file)[1].prompt == "a lighthouse"
        assert Path(ref.file).parent.parent == tmp_path / "served"  # the id is never a path
    zipped = Path(bundle(mine, services.folder("../../mine")))
    services.forget("../../mine")
    assert not zipped.exists() and not any(Path(ref.file).exists() for ref in mine)
    assert all(Path(ref.file).exists() for ref in theirs)


def test_updates_that_pile_up_go_out_as_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser that reads slowly gets the latest progress and live frame in one update,
    then the tiles, instead of every stale one first."""
    services = Services(engine)
    frames = live_frames(services)
    plan = engine.plan(GridRequest("a", (0, 1), steps=2))
    done = threading.Event()
    real_render = Engine.render

    def render(self: Engine, plan: object, hooks: Hooks) -> list:
        for step in range(20):
            preview = Image.new("RGB", (8, 8), (step, 0, 0))
            hooks.preview(0, [preview, preview])
            hooks.progress((step + 1) / 20, f"step {step + 1}/20")
        tiles = real_render(self, plan)
        done.set()
        return tiles

    monkeypatch.setattr(Engine, "render", render)
    updates = runner.run(services, tabs.GRID, plan, Manifest("tiny"), None, "s")
    assert next(updates)[2] == "Waiting for the model…"
    assert done.wait(60)  # the render ends before the browser reads again
    rest = list(updates)
    assert len(rest) == 2 and len(frames) == 1
    (_, _, line, _), (items, *_) = rest
    with Image.open(frames[0].path) as frame:
        assert frame.getpixel((0, 0))[0] in range(17, 22)  # step 19's red, through JPEG
    assert line == "step 20/20 · 100%"
    assert [caption for _, caption in items] == ["seed 0", "seed 1"]
