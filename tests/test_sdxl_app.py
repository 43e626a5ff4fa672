"""SDXL as a new user brings it: a saved diffusers folder, `python app.py --model FOLDER`, the
API's grid, refinement and comparison, and every tile replaying bit-exact from its PNG."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

import app
from pipeline.loading import load_model
from tests.conftest import replay_pngs, served


@pytest.fixture(scope="module")
def sdxl_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("my-sdxl")
    load_model("tiny-sdxl", "cpu").pipe.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def client(sdxl_folder: Path) -> Iterator[Client]:
    """The app as `python app.py --model FOLDER --no-save` sets it up, served here."""
    args = app.parse_args(["--model", str(sdxl_folder), "--no-save"])
    with served(app.create_engine(args), args.queue_size) as url:
        yield Client(url, verbose=False)


def test_a_saved_sdxl_folder_serves_every_tab_and_its_tiles_replay_bit_exact(
    client: Client, tmp_path: Path
) -> None:
    grid, summary = client.predict(prompt="a kite", seeds="0-2", steps=2, api_name="/grid")
    assert [tile["caption"] for tile in grid] == ["seed 0", "seed 1", "seed 2"]
    assert "CFG 5" in summary  # SDXL's own guidance
    refined, _ = client.predict(prompt="a kite", seed="1", steps=2, api_name="/refine")
    compared, _ = client.predict(
        prompt="a kite", seed="1", schedulers=["Euler", "DDIM"], steps=2, api_name="/compare"
    )
    assert [tile["caption"].split(" · ")[0] for tile in compared] == ["Euler", "DDIM"]
    pngs = []
    for index, tile in enumerate([grid[2], refined[0], compared[1]]):
        pngs.append(tmp_path / f"tile-{index}.png")
        shutil.copy(tile["image"], pngs[-1])
    verdicts = replay_pngs(pngs, tmp_path / "out")
    assert verdicts == [f"tile-{i}.png: bit-exact" for i in range(3)]
