"""Every event of the page, fired as a browser fires it (tests/ui/session.py): through the
built demo's registered functions, with the gr.Request and SelectData Gradio makes. Each test
fails if a handler raises, and checks what the user then sees."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio.utils import get_upload_folder
from PIL import Image

from pipeline.engine import Engine
from pipeline.loading import load_model
from tests.ui.session import Refused, Session
from ui.context import Services
from ui.demo import build_page
from ui.live import Frame, Sight
from ui.state import Pin

# Two steps of the tiny model, at its own 64 px: each run costs a fraction of a second.
SETTINGS = {"steps": 2, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def page(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> tuple[Services, gr.Blocks]:
    services = Services(engine, previews=False, served=tmp_path_factory.mktemp("served"))
    return services, build_page(services)


@pytest.fixture
def services(page: tuple[Services, gr.Blocks]) -> Services:
    return page[0]


@pytest.fixture
def session(page: tuple[Services, gr.Blocks], request: pytest.FixtureRequest) -> Session:
    """A fresh browser session with a prompt typed and the small settings set."""
    session = Session(page[1], request.node.name)
    session.set(part(session, "prompt"), "a red barn")
    for name, value in SETTINGS.items():
        session.set(part(session, name), value)
    return session


def part(session: Session, elem_id: str) -> Any:
    """The page's component with this element id."""
    found = [b for b in session.demo.blocks.values() if getattr(b, "elem_id", None) == elem_id]
    assert len(found) == 1, elem_id
    return found[0]


def state_after(session: Session, elem_id: str, event: str, position: int) -> Any:
    """The gr.State that the `event` of `elem_id` takes as its input `position`."""
    target = part(session, elem_id)._id
    fn = next(f for f in session.demo.fns.values() if (target, event) in f.targets)
    return fn.inputs[position]


def job_state(session: Session, name: str) -> Any:
    """The session state a run tab's job takes by this name ("pin", "manifest")."""
    job = next(f for f in session.demo.fns.values() if f.api_name == "grid")
    return job.inputs[job.input_keyword_names.index(name)]


def pin_of(session: Session) -> Pin | None:
    return session.value(job_state(session, "pin"))


def manifest_of(session: Session) -> Any:
    return session.value(job_state(session, "manifest"))


def grid(session: Session, seeds: str = "1, 2") -> list:
    session.set(part(session, "seeds"), seeds)
    session.trigger(part(session, "grid-run"))
    return session.value(part(session, "grid-gallery"))


def test_a_grid_click_shows_its_tiles_and_download_all_is_one_click(session: Session) -> None:
    gallery = grid(session)
    assert [item["caption"] for item in gallery] == ["seed 1", "seed 2"]
    assert session.value(part(session, "grid-status")).startswith("2 tiles · seeds 1, 2")
    assert not session.shown(part(session, "grid-progress"))
    assert session.shown(part(session, "grid-download"))
    assert session.value(part(session, "grid-download"))["path"].endswith(".zip")


def test_a_refused_click_is_a_toast_naming_the_field_and_nothing_runs(session: Session) -> None:
    session.set(part(session, "seeds"), "0-x")
    with pytest.raises(gr.Error, match="Seeds: cannot read '0-x'"):
        session.trigger(part(session, "grid-run"))
    assert manifest_of(session).entries == []


def test_an_api_caller_is_refused_by_the_validator_before_the_queue(session: Session) -> None:
    job = next(f for f in session.demo.fns.values() if f.api_name == "grid")
    session.set(part(session, "seeds"), "0-x")
    with pytest.raises(Refused, match="Seeds"):
        session._run(job, None)


def test_a_pinned_tile_is_the_parent_of_what_grows_from_it(session: Session) -> None:
    grid(session)
    session.select(part(session, "grid-gallery"), 1)
    assert session.value(part(session, "pinned-seed")) == "2"
    pin = pin_of(session)
    assert pin.seed == 2 and pin.tile.entry == 1 and pin.tile.index == 1
    session.set(part(session, "refine-suffixes"), ", oil")
    session.trigger(part(session, "refine-run"))
    entries = manifest_of(session).entries
    assert [e["kind"] for e in entries] == ["grid", "pin", "refine"]
    assert entries[-1]["parent"] == {"entry": 1, "tile": 1}

    # A seed typed by hand is no tile: what grows from it has no parent.
    session.set(part(session, "pinned-seed"), "2")
    session.trigger(part(session, "pinned-seed"), "input")
    assert pin_of(session) is None
    session.trigger(part(session, "refine-run"))
    assert manifest_of(session).entries[-1]["parent"] is None


def test_the_live_preview_pins_the_seed_under_the_click(
    session: Session, services: Services, tmp_path: Path
) -> None:
    frame = Frame(str(tmp_path / "live-1.jpg"), 1, (3, 4), 2, (192, 192))
    seen = state_after(session, "grid-live", "select", 0)
    session.set(seen, Sight(1, "", frame))
    session.select(part(session, "grid-live"), [300, 100])
    assert session.value(part(session, "pinned-seed")) == "4"
    assert pin_of(session) == Pin(4)
    session.select(part(session, "grid-live"), [500, 100])  # beside the tiles: no pin
    assert session.value(part(session, "pinned-seed")) == "4"


def test_the_poll_shows_a_runs_new_progress_and_frame_once(
    session: Session, services: Services, tmp_path: Path
) -> None:
    name = session.request.session_hash
    image = Image.new("RGB", (64, 64))
    services.live.say(name, "Euler: step 1/2 · 50%")
    services.live.show(name, tmp_path, [image], ["seed 3"], [3])
    poll = next(
        b for b in session.demo.blocks.values() if isinstance(b, gr.Timer) and _polls(session, b)
    )
    session.trigger(poll, "tick")
    assert session.value(part(session, "grid-progress")) == "Euler: step 1/2 · 50%"
    assert session.value(part(session, "grid-live"))["path"].endswith(".jpg")
    services.live.end(name)


def _polls(session: Session, timer: gr.Timer) -> bool:
    grid_live = part(session, "grid-live")
    return any(
        (timer._id, "tick") in f.targets and grid_live in f.outputs
        for f in session.demo.fns.values()
    )


def test_stop_without_a_run_changes_nothing(session: Session, services: Services) -> None:
    session.trigger(part(session, "grid-stop"))
    assert not services.runs.stop(session.request.session_hash)


def test_random_seeds_are_four_seeds(session: Session) -> None:
    session.trigger(part(session, "seeds-random"))
    assert len(session.value(part(session, "seeds")).split(", ")) == 4


def test_compares_steps_for_all_rewrites_each_schedulers_steps(session: Session) -> None:
    session.set(part(session, "compare-schedulers"), ["Euler", "DDIM"])
    session.trigger(part(session, "compare-schedulers"), "change")
    own = session.value(part(session, "compare-scheduler-steps"))
    assert own.splitlines()[0].startswith("Euler: ")
    session.set(part(session, "compare-steps"), 2)
    session.trigger(part(session, "compare-steps"), "change")
    assert session.value(part(session, "compare-scheduler-steps")) == "Euler: 2\nDDIM: 2"
    session.set(part(session, "pinned-seed"), "5")
    session.trigger(part(session, "compare-run"))
    captions = [item["caption"] for item in session.value(part(session, "compare-gallery"))]
    assert [caption.split(" · ")[:2] for caption in captions] == [
        ["Euler", "2 steps"],
        ["DDIM", "2 steps"],
    ]


def test_a_matrix_draws_its_labelled_grid_and_a_cell_brings_its_settings_back(
    session: Session,
) -> None:
    session.set(part(session, "pinned-seed"), "5")
    session.set(part(session, "matrix-x"), "CFG scale")
    session.set(part(session, "matrix-x-values"), "4, 7")
    session.set(part(session, "matrix-y"), "Seed")
    session.set(part(session, "matrix-y-values"), "5")
    session.trigger(part(session, "matrix-run"))
    assert "CFG 4 to 7" in session.value(part(session, "matrix-status"))
    assert session.shown(part(session, "matrix-grid"))
    session.select(part(session, "matrix-gallery"), 1)
    assert session.value(part(session, "guidance-scale")) == 7
    assert session.value(part(session, "pinned-seed")) == "5"


def test_a_refinements_prompt_can_become_the_prompt(session: Session) -> None:
    session.set(part(session, "pinned-seed"), "5")
    session.set(part(session, "refine-suffixes"), ", at dusk")
    session.trigger(part(session, "refine-run"))
    session.select(part(session, "refine-gallery"), 0)
    assert session.shown(part(session, "refine-use-prompt"))
    session.trigger(part(session, "refine-use-prompt"))
    assert session.value(part(session, "prompt")) == "a red barn, at dusk"


def test_travel_shows_its_frames_as_an_animation(session: Session) -> None:
    session.set(part(session, "pinned-seed"), "5")
    session.set(part(session, "travel-to-seed"), "6")
    session.set(part(session, "travel-frames"), 2)
    session.trigger(part(session, "travel-run"))
    assert session.shown(part(session, "travel-animation"))
    assert session.value(part(session, "travel-webp"))["path"].endswith(".webp")


def test_vary_renders_the_pins_neighbours(session: Session) -> None:
    session.set(part(session, "pinned-seed"), "5")
    session.set(part(session, "vary-seeds"), "7")
    session.trigger(part(session, "vary-run"))
    captions = [item["caption"] for item in session.value(part(session, "vary-gallery"))]
    assert captions == ["seed 5 → 7 at 0.30"]


def uploaded(path: Path) -> dict[str, Any]:
    """A file as the browser sends it after an upload: in Gradio's upload folder."""
    folder = Path(get_upload_folder()) / "seed-explorer-tests"
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / path.name
    shutil.copyfile(path, copy)
    return {"path": str(copy), "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def test_a_pngs_recipe_loads_pinned_and_verifies_bit_exact(session: Session) -> None:
    tile = grid(session, "3")[0]
    session.set(part(session, "recipe-file"), uploaded(Path(tile["image"]["path"])))
    session.set(part(session, "prompt"), "")
    session.trigger(part(session, "recipe-file"), "upload")
    assert session.value(part(session, "prompt")) == "a red barn"
    assert session.value(part(session, "pinned-seed")) == "3"
    session.trigger(part(session, "verify-run"))
    assert session.value(part(session, "verify-status")).startswith("**Bit-exact**")
    assert not session.shown(part(session, "verify-progress"))


def test_verify_shows_the_usual_progress_line_while_it_renders(
    session: Session, services: Services
) -> None:
    services.live.say(session.request.session_hash, "PNDM: step 1/2 · 50%")
    poll = next(
        b
        for b in session.demo.blocks.values()
        if isinstance(b, gr.Timer)
        and any(
            (b._id, "tick") in f.targets and part(session, "verify-progress") in f.outputs
            for f in session.demo.fns.values()
        )
    )
    session.trigger(poll, "tick")
    assert session.value(part(session, "verify-progress")) == "PNDM: step 1/2 · 50%"
    services.live.end(session.request.session_hash)


def test_verify_without_a_pin_asks_for_one(session: Session) -> None:
    with pytest.raises(gr.Error, match="pin a tile first"):
        session.trigger(part(session, "verify-run"))


def test_history_shows_the_tree_restores_a_node_and_imports_an_export(
    session: Session, tmp_path: Path
) -> None:
    grid(session)
    session.select(part(session, "grid-gallery"), 0)
    session.set(part(session, "refine-suffixes"), ", oil")
    session.trigger(part(session, "refine-run"))
    session.trigger(part(session, "history-refresh"))
    tree = session.value(part(session, "history-tree"))
    assert [item["caption"] for item in tree] == ["#1 grid", "#2 pin", "#3 refine"]
    outline = session.value(part(session, "history-outline")).splitlines()[2:]
    assert outline[0].startswith("- **#1 grid** · 2 tiles, seed 1, 2 · “a red barn” · ")
    assert outline[1] == "  - **#2 pin** · seed 1 (tile 1 of #1)"
    assert outline[2].startswith("    - **#3 refine** · 1 tiles, seed 1 · from seed 1 (#1) · ")
    session.set(part(session, "prompt"), "something else")
    session.select(part(session, "history-tree"), 2)
    assert session.value(part(session, "prompt")) == "a red barn"
    assert session.value(part(session, "pinned-seed")) == "1"

    session.trigger(part(session, "manifest-export"))
    exported = Path(session.value(part(session, "manifest-file"))["path"])
    assert [e["kind"] for e in json.loads(exported.read_text())["entries"]] == [
        "grid",
        "pin",
        "refine",
    ]
    exported.write_text(exported.read_text().replace('"model": "tiny"', '"model": "other"'))
    fresh = Session(session.demo, "fresh")
    fresh.set(part(fresh, "history-import"), uploaded(exported))
    with pytest.warns(UserWarning, match="made with other, and this app runs tiny"):
        fresh.trigger(part(fresh, "history-import"), "upload")
    pictures = [item["image"]["path"] for item in fresh.value(part(fresh, "history-tree"))]
    assert len(pictures) == 3
    # Not saved (no outputs folder) and not this session's files: the manifest's thumbnails.
    assert all(Path(picture).name.startswith("thumbnail-") for picture in pictures)
    assert [e["kind"] for e in manifest_of(fresh).entries] == ["grid", "pin", "refine"]


def test_a_closed_session_leaves_no_served_files(session: Session, services: Services) -> None:
    grid(session, "1")
    folder = services.folder(session.request.session_hash)
    assert any(folder.iterdir())
    session.close()
    assert not folder.exists()


@pytest.mark.parametrize(
    ("elem_id", "value", "shown", "message"),
    [
        ("steps", 0, "1 to 150", "Steps: must be a whole number 1..150, got 0"),
        ("steps", 10000, "1 to 150", "Steps: must be a whole number 1..150, got 10000"),
        ("width", 7, "8 to 1536", "Width: must be a multiple of 8 from 8 to 1536, got 7"),
        ("height", 0, "8 to 1536", "Height: must be a multiple of 8 from 8 to 1536, got 0"),
    ],
)
def test_a_number_outside_the_range_its_box_shows_is_refused_naming_both(
    session: Session, elem_id: str, value: int, shown: str, message: str
) -> None:
    assert part(session, elem_id).info.startswith(shown)
    session.set(part(session, elem_id), value)
    with pytest.raises(gr.Error, match=re.escape(message)):
        grid(session)


def test_compare_at_its_steps_for_all_of_0_gives_each_scheduler_its_own(
    session: Session,
) -> None:
    """Compare's own "Steps for all" box says 0 is each scheduler's own: not a refusal."""
    session.set(part(session, "pinned-seed"), "5")
    session.set(part(session, "compare-schedulers"), ["Euler", "DDIM"])
    session.set(part(session, "compare-scheduler-steps"), "Euler: 2\nDDIM: 3")
    assert session.value(part(session, "compare-steps")) == 0
    session.trigger(part(session, "compare-run"))
    tiles = manifest_of(session).entries[-1]["tiles"]
    assert [(t["recipe"]["sampler"], t["recipe"]["steps"]) for t in tiles] == [
        ("Euler", 2),
        ("DDIM", 3),
    ]


def test_travel_from_a_variation_pin_starts_from_the_pins_own_noise(session: Session) -> None:
    session.set(part(session, "pinned-seed"), "5")
    session.set(part(session, "vary-seeds"), "7")
    session.trigger(part(session, "vary-run"))
    session.select(part(session, "vary-gallery"), 0)
    assert "variation seed **7**" in session.value(part(session, "pin-variation"))
    session.set(part(session, "travel-to-seed"), "6")
    session.set(part(session, "travel-frames"), 2)
    session.trigger(part(session, "travel-run"))
    pinned, _, travel = manifest_of(session).entries[-3:]
    start = travel["tiles"][0]["recipe"]
    assert start["noise_sha256"] == pinned["tiles"][0]["recipe"]["noise_sha256"]
    assert start["base_variations"] == [[7, 0.3]]
    # Its PNG, loaded again, pins the whole variation of a variation.
    last = session.value(part(session, "travel-gallery"))[-1]
    session.set(part(session, "recipe-file"), uploaded(Path(last["image"]["path"])))
    session.trigger(part(session, "recipe-file"), "upload")
    assert (pin_of(session).variation_seed, pin_of(session).base_variations) == (6, ((7, 0.3),))


def test_travel_to_the_pinned_seed_is_refused(session: Session) -> None:
    session.set(part(session, "pinned-seed"), "5")
    session.set(part(session, "travel-to-seed"), "5")
    with pytest.raises(gr.Error, match="To seed: is the pinned seed 5"):
        session.trigger(part(session, "travel-run"))


def test_an_imported_thumbnail_that_is_no_small_png_shows_the_placeholder(
    session: Session, tmp_path: Path
) -> None:
    grid(session, "4")
    session.trigger(part(session, "manifest-export"))
    exported = Path(session.value(part(session, "manifest-file"))["path"])
    data = json.loads(exported.read_text())
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    data["entries"][0]["tiles"][0]["thumbnail"] = base64.b64encode(svg).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data))
    fresh = Session(session.demo, "fresh-forged")
    fresh.set(part(fresh, "history-import"), uploaded(forged))
    fresh.trigger(part(fresh, "history-import"), "upload")
    [shown] = fresh.value(part(fresh, "history-tree"))
    assert Path(shown["image"]["path"]).name == "history-grid.png"


def test_a_flux_grid_with_true_cfg_records_it_in_the_tiles_recipe(
    flux: Engine, tmp_path: Path
) -> None:
    session = Session(build_page(Services(flux, previews=False, served=tmp_path)), "true-cfg")
    typed = {"prompt": "a red barn", "negative-prompt": "blurry", "seeds": "1", "steps": 2}
    typed |= {"width": 32, "height": 32, "true-cfg-scale": 2}
    for elem_id, value in typed.items():
        session.set(part(session, elem_id), value)
    session.trigger(part(session, "grid-run"))
    job = next(f for f in session.demo.fns.values() if f.api_name == "grid")
    (tile,) = session.value(job.outputs[1])  # the tiles shown
    assert tile.recipe.true_cfg_scale == 2
    assert tile.recipe.negative_prompt == "blurry"


def test_a_qwen_image_page_serves_its_tabs_and_its_tiles_verify_bit_exact(
    tmp_path: Path,
) -> None:
    """A 2026 flow family through the page as a browser (or an API client) drives it: its
    guidance is a CFG scale and it has a shift, no true CFG box; a grid, a compare of two
    samplers in lockstep, a variation, and a dropped PNG that verifies bit-exact."""
    qwen = Engine(load_model("tiny-qwen-image", device="cpu"))
    session = Session(build_page(Services(qwen, previews=False, served=tmp_path)), "qwen")
    assert session.shown(part(session, "shift"))
    assert not session.shown(part(session, "true-cfg-scale"))
    assert part(session, "guidance-scale").label == "Guidance scale (CFG)"
    for elem_id, value in {"prompt": "a red barn", "steps": 2, "width": 32, "height": 32}.items():
        session.set(part(session, elem_id), value)
    tile = grid(session, "3")[0]
    session.select(part(session, "grid-gallery"), 0)
    session.set(part(session, "compare-schedulers"), ["Euler", "Heun"])
    session.set(part(session, "compare-steps"), 2)
    session.trigger(part(session, "compare-run"))
    lanes = [item["caption"] for item in session.value(part(session, "compare-gallery"))]
    assert [caption.split(" · ")[0] for caption in lanes] == ["Euler", "Heun"]
    session.set(part(session, "vary-seeds"), "7")
    session.trigger(part(session, "vary-run"))
    assert len(session.value(part(session, "vary-gallery"))) == 1
    session.set(part(session, "recipe-file"), uploaded(Path(tile["image"]["path"])))
    session.trigger(part(session, "recipe-file"), "upload")
    session.trigger(part(session, "verify-run"))
    assert session.value(part(session, "verify-status")).startswith("**Bit-exact**")
