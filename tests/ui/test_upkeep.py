"""A public app stays up for weeks: served files expire unless someone is still looking at
them, the user's outputs stay, and a session that leaves takes what was kept for it. The
clock is faked (`sweep`'s `now`); no sweep runs in the background here."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gradio as gr
import pytest
from gradio.state_holder import StateHolder

from pipeline.engine import Engine
from pipeline.outputs import OutputFolder
from tests.ui.session import Session
from ui.context import Services
from ui.demo import build_page
from ui.upkeep import sweep

AGE = 60.0


@pytest.fixture
def page(engine: Engine, tmp_path: Path) -> tuple[Services, gr.Blocks]:
    services = Services(engine, OutputFolder(tmp_path / "outputs"), served=tmp_path / "served")
    services.served.mkdir()
    return services, build_page(services)


def written(services: Services, session: str, name: str, at: float | None = None) -> Path:
    path = services.folder(session) / name
    path.write_bytes(b"png")
    if at is not None:
        os.utime(path, (at, at))
    return path


def test_served_files_older_than_the_age_go_an_open_pages_and_the_outputs_stay(
    page: tuple[Services, gr.Blocks],
) -> None:
    services, demo = page
    Session(demo, "looking").open()  # a browser tab: its files stay while it is open
    kept = written(services, "looking", "0001-00-1.png")
    old = written(services, "api", "0001-00-1.png")  # an API caller's: no page
    saved = services.outputs.root / "2026-01-01" / "00001-1.png"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"png")
    later = time.time() + 2 * AGE
    fresh = written(services, "api", "0002-00-1.png", at=later)  # written just before the sweep

    assert sweep(services, demo, AGE, now=later) == 1
    assert not old.exists() and fresh.exists()
    assert sweep(services, demo, AGE, now=later + 2 * AGE) == 1
    assert not fresh.parent.exists()  # all of the session's files expired: it is forgotten
    assert [session for session, _, _ in services.sessions()] == ["looking"]
    assert kept.exists() and saved.exists()


def test_gradios_old_uploads_go_and_it_forgets_the_files_that_are_gone(
    page: tuple[Services, gr.Blocks], tmp_path: Path
) -> None:
    services, demo = page
    upload = tmp_path / "gradio" / "3f2a" / "recipe.png"  # Gradio: one folder per upload
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"png")
    demo.upload_file_set.add(str(upload))
    tile = written(services, "api", "0001-00-1.png")
    gallery = next(b for b in demo.blocks.values() if getattr(b, "elem_id", "") == "grid-gallery")
    gallery.temp_files.add(str(tile))  # what Gradio remembers of every file it serves

    assert sweep(services, demo, AGE, now=time.time() + 2 * AGE) == 2
    assert not upload.parent.exists() and not tile.exists()
    assert not demo.upload_file_set and not gallery.temp_files


def test_a_closed_session_takes_its_state_with_it_as_gradio_closes_it(
    engine: Engine, tmp_path: Path
) -> None:
    services = Services(engine, served=tmp_path, preview_interval=0)  # live frames kept
    demo = build_page(services)
    holder = StateHolder()
    holder.set_blocks(demo)  # as Gradio's App does when it serves the page
    session = Session(demo, "leaving")
    holder.session_data["leaving"] = session.state
    session.open()
    for name, value in {"prompt": "a red barn", "seeds": "1", "steps": 2, "width": 32}.items():
        session.set(next(b for b in demo.blocks.values() if b.elem_id == name), value)
    session.trigger(next(b for b in demo.blocks.values() if b.elem_id == "grid-run"))
    assert services.sessions() and services.live._written

    session.close()
    assert "leaving" not in holder.session_data
    assert services.sessions() == [] and not services.live._written
