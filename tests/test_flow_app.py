"""Flux.1 and SD3 as a new user brings them: a saved diffusers folder, `python app.py --model
FOLDER`, every tab's API, and every tile replaying bit-exact from its PNG."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gradio_client import Client

from tests.conftest import replay_pngs

FAST = {"steps": 2, "width": 32, "height": 32}


@pytest.fixture
def client(flow_app: str) -> Client:
    return Client(flow_app, verbose=False)


def test_a_saved_flow_folder_serves_every_tab_and_its_tiles_replay_bit_exact(
    client: Client, tmp_path: Path
) -> None:
    grid, _ = client.predict(prompt="a kite", seeds="0-1", **FAST, api_name="/grid")
    assert [tile["caption"] for tile in grid] == ["seed 0", "seed 1"]
    refined, _ = client.predict(prompt="a kite", seed="1", **FAST, api_name="/refine")
    compared, _ = client.predict(
        prompt="a kite", seed="1", schedulers=["Euler", "Heun"], **FAST, api_name="/compare"
    )
    assert [tile["caption"].split(" · ")[0] for tile in compared] == ["Euler", "Heun"]
    varied, _ = client.predict(
        prompt="a kite", seed="1", variation_seeds="3", strength=0.2, **FAST, api_name="/vary"
    )
    frames, _ = client.predict(
        prompt="a kite", seed="1", to_seed="3", frames=2, **FAST, api_name="/travel"
    )
    cells, _ = client.predict(
        prompt="a kite", seed="1", x_axis="Shift", x_values="1, 3", y_axis="Seed",
        y_values="2", **FAST, api_name="/matrix",
    )  # fmt: skip
    assert len(cells) == 2 and len(frames) == 2
    pngs = []
    for index, tile in enumerate([grid[1], refined[0], compared[1], varied[0], cells[1]]):
        pngs.append(tmp_path / f"tile-{index}.png")
        shutil.copy(tile["image"], pngs[-1])
    verdicts = replay_pngs(pngs, tmp_path / "out")
    assert verdicts == [f"tile-{i}.png: bit-exact" for i in range(len(pngs))]
