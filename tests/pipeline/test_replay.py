"""Replay from the command line: saved PNGs and manifests render again bit for bit on the CPU."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.engine import Engine, Tile
from pipeline.manifest import Manifest
from pipeline.metadata import read_png, write_png
from pipeline.replay import drift, main
from pipeline.requests import CompareRequest, GridRequest, RefineRequest
from tests.pipeline.test_metadata import sample_image, write_a1111_png

SETTINGS = {"steps": 3, "width": 32, "height": 32}
PROMPT = "a red fox, in snow"


@pytest.fixture(scope="module")
def runs(engine: Engine) -> dict[str, list[Tile]]:
    """A grid, a refinement of its second seed and a comparison that includes Euler a."""
    return {
        "grid": engine.run(GridRequest(PROMPT, seeds=(0, 1), **SETTINGS)),
        "refine": engine.run(
            RefineRequest(PROMPT, 1, suffixes=(", artsy", ": colorful"), **SETTINGS)
        ),
        "compare": engine.run(
            CompareRequest(PROMPT, 1, schedulers=("Euler", "Euler a"), **SETTINGS)
        ),
    }


def saved(tile: Tile, path: Path) -> Path:
    return write_png(path, tile.image, tile.recipe)


def test_pngs_of_a_grid_a_refinement_and_euler_a_replay_bit_exact(
    runs: dict[str, list[Tile]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    euler_a = runs["compare"][1]
    assert euler_a.recipe.sampler == "Euler a"
    paths = [
        saved(runs["grid"][1], tmp_path / "grid.png"),
        saved(runs["refine"][1], tmp_path / "refine.png"),
        saved(euler_a, tmp_path / "euler-a.png"),
    ]
    out = tmp_path / "out"
    assert main([*map(str, paths), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "grid.png: bit-exact",
        "refine.png: bit-exact",
        "euler-a.png: bit-exact",
    ]
    # Each replayed PNG carries the original's recipe: the same call shape and place in it.
    for path, tile in zip(paths, (runs["grid"][1], runs["refine"][1], euler_a), strict=True):
        replayed, recipe, _ = read_png(out / f"{path.stem}-replay.png")
        assert recipe == tile.recipe, path.name
        assert drift(tile.image, replayed).bit_exact, path.name


def test_a_session_manifest_replays_bit_exact_with_or_without_files(
    runs: dict[str, list[Tile]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    groups = []
    render = Engine.render
    monkeypatch.setattr(
        Engine,
        "render",
        lambda self, plan, hooks=None: (
            groups.append([s.name for s in plan.samplers]) or render(self, plan, hooks)
        ),
    )
    manifest = Manifest("tiny")
    grid_files = [saved(tile, tmp_path / f"grid-{i}.png") for i, tile in enumerate(runs["grid"])]
    grid = manifest.append("grid", runs["grid"], files=grid_files)
    refine = manifest.append("refine", runs["refine"], parent=(grid, 1))
    manifest.append("compare", runs["compare"], parent=(refine, 0))
    grid_files[0].unlink()  # its pixel hash still verifies it
    path = manifest.write(tmp_path / "session.json")
    assert main([str(path), "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"session.json entry {entry} tile {index}: bit-exact"
        for entry, count in ((1, 2), (2, 2), (3, 2))
        for index in range(count)
    ]
    assert len(list((tmp_path / "out").iterdir())) == 6
    assert groups.count(["Euler", "Euler a"]) == 1  # the group rendered once


def test_a_tampered_image_differs_with_its_psnr(
    runs: dict[str, list[Tile]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tile = runs["grid"][0]
    pixels = np.asarray(tile.image).copy()
    pixels[5, 7, 0] = pixels[5, 7, 0] + 3 if pixels[5, 7, 0] < 128 else pixels[5, 7, 0] - 3
    path = write_png(tmp_path / "tampered.png", Image.fromarray(pixels), tile.recipe)
    assert main([str(path), "--out", str(tmp_path / "out")]) == 1
    expected_psnr = 10 * math.log10(255**2 / (9 / pixels.size))
    assert capsys.readouterr().out == (
        f"tampered.png: differs — max pixel diff 3, PSNR {expected_psnr:.1f} dB\n"
    )


def test_a_manifest_tile_without_its_file_differs_by_hash(
    runs: dict[str, list[Tile]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = Manifest("tiny")
    manifest.append("grid", runs["grid"][:1])
    manifest.entries[0]["tiles"][0]["image_sha256"] = "0" * 64
    path = manifest.write(tmp_path / "session.json")
    assert main([str(path), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().out == (
        "session.json entry 1 tile 0: differs — pixel hash differs (PSNR needs the original file)\n"
    )


def test_errors_exit_2_with_one_line(
    runs: dict[str, list[Tile]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a1111 = write_a1111_png(tmp_path / "a1111.png")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a png")
    ours = saved(runs["grid"][0], tmp_path / "ours.png")
    cases = {
        (str(a1111),): "a1111.png: only A1111-style parameters, not a Seed Explorer PNG",
        (str(tmp_path / "missing.png"),): "No such file",
        (str(garbage),): "cannot identify image file",
        (str(tmp_path / "missing.json"),): "missing.json: cannot read the manifest",
        (str(ours), "--model", str(tmp_path / "no-model")): "cannot load model",
    }
    for args, message in cases.items():
        assert main([*args, "--out", str(tmp_path / "out")]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1
        assert message in captured.err


def test_drift_of_equal_images() -> None:
    image = sample_image(1)
    result = drift(image, image.copy())
    assert (result.bit_exact, result.max_diff, result.psnr) == (True, 0, math.inf)
    assert result.heatmap.getextrema() == (0, 0)


def test_drift_heatmap_shows_a_one_level_difference() -> None:
    image = sample_image(2, size=(8, 4))
    pixels = np.asarray(image).copy()
    pixels[1, 2, 2] ^= 1
    result = drift(image, Image.fromarray(pixels))
    assert (result.bit_exact, result.max_diff) == (False, 1)
    assert result.psnr == pytest.approx(10 * math.log10(255**2 * pixels.size))
    heat = np.asarray(result.heatmap)
    assert heat.shape == (4, 8)
    assert heat[1, 2] == 64
    assert np.count_nonzero(heat) == 1


def test_drift_refuses_images_of_other_sizes() -> None:
    with pytest.raises(ValueError, match="sizes differ"):
        drift(sample_image(size=(8, 8)), sample_image(size=(8, 16)))
