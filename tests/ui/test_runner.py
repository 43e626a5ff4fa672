"""A run without a server: progress lines and live frames for the browser's poll, then the
tiles as PNGs with their recipe; Stop works."""

from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from pipeline.engine import Engine
from pipeline.manifest import Manifest
from pipeline.metadata import read_png
from pipeline.outputs import OutputFolder
from pipeline.rendering import OutOfMemory
from pipeline.requests import GridRequest
from tests.ui.helpers import in_the_background, live_frames, live_lines, wait_for
from ui import runner, specs
from ui.bundle import bundle
from ui.context import Services
from ui.state import Pin


def grid_run(
    services: Services, manifest: Manifest, request: GridRequest, session: str = "session"
) -> runner.Outcome:
    plan = services.engine.plan(request)
    return runner.run_plan(services, specs.GRID, plan, manifest, None, session)


def test_a_run_keeps_progress_and_live_frames_for_the_browser_then_returns_the_tiles(
    engine: Engine, tmp_path: Path
) -> None:
    services = Services(engine, OutputFolder(tmp_path / "outputs"), preview_interval=0)
    frames, lines = live_frames(services), live_lines(services)
    manifest = Manifest("tiny")
    request = GridRequest("a lighthouse", (3, 4), steps=10, scheduler="Euler")
    outcome = grid_run(services, manifest, request)
    items, refs, status = outcome.items, outcome.tiles, outcome.status

    # The one response is the tiles; progress and previews were the browser's poll's.
    assert lines[0] == "Waiting for the model…" and lines[-1] == "Euler: step 10/10 · 100%"
    assert frames  # at least one, made while the run denoised
    last = frames[-1]
    assert last.seeds == (3, 4) and last.columns == 2 and last.cell == (192, 192)
    with Image.open(last.path) as jpeg:  # one small lossy file for both tiles
        assert (jpeg.format, jpeg.size) == ("JPEG", (384, 192))
    assert [last.seed_at(20, 20), last.seed_at(300, 100), last.seed_at(400, 20)] == [3, 4, None]
    assert services.live.latest("session") is None  # over: the tiles replace it
    assert [caption for _, caption in items] == ["seed 3", "seed 4"]
    assert status.startswith("2 tiles · seeds 3, 4") and "saved to" in status
    assert [e["kind"] for e in manifest.entries] == ["grid"]
    for (file, _), ref in zip(items, refs, strict=True):
        image, recipe, infotext = read_png(file)
        assert recipe == ref.recipe and f"Seed: {ref.seed}" in infotext
        with Image.open(ref.saved) as saved:
            assert np.array_equal(np.asarray(saved), np.asarray(image))


def test_a_refinement_records_the_pinned_tile_it_grew_from(engine: Engine) -> None:
    services = Services(engine, previews=False)
    manifest = Manifest("tiny")
    pinned = grid_run(services, manifest, GridRequest("a", (7, 8), steps=2)).tiles[1]
    values = {"prompt": "a", "negative_prompt": "", "seed": "8", "suffixes": ", artsy"}
    values |= {"scheduler": None, "steps": 2, "guidance_scale": None, "width": None, "height": None}
    values |= {"true_cfg_scale": None, "shift": None, "seed_variance": None}
    runner.run(services, specs.REFINE, values, Pin.of_tile(pinned), manifest, "session")
    assert manifest.entries[1]["parent"] == {"entry": 1, "tile": 1}
    assert Pin.of_tile(pinned).parent(9) is None  # a seed typed since is not the pinned tile


def test_stop_ends_the_run_and_says_so(engine: Engine) -> None:
    services = Services(engine, previews=False)
    plan = engine.plan(GridRequest("a lighthouse", (0, 1), steps=150))
    lines = live_lines(services)
    result = in_the_background(
        lambda: runner.run_plan(services, specs.GRID, plan, Manifest("tiny"), None, "session")
    )
    wait_for(lambda: bool(lines) and "step" in lines[-1])  # a progress line: the run is denoising
    assert services.runs.stop("session")
    outcome = result()
    items, refs, status = outcome.items, outcome.tiles, outcome.status
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
    mine = grid_run(services, Manifest("tiny"), request, "../../mine").tiles
    theirs = grid_run(services, Manifest("tiny"), other, "theirs").tiles

    assert {ref.file for ref in mine}.isdisjoint(ref.file for ref in theirs)
    for ref in mine:
        assert read_png(ref.file)[1].prompt == "a lighthouse"
        assert Path(ref.file).parent.parent == tmp_path / "served"  # the id is never a path
    zipped = Path(bundle(mine, services.folder("../../mine")))
    services.forget("../../mine")
    assert not zipped.exists() and not any(Path(ref.file).exists() for ref in mine)
    assert all(Path(ref.file).exists() for ref in theirs)
