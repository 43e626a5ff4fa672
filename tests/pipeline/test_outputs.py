"""The outputs folder: dated folders, numbers unique between threads and across restarts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from pipeline.metadata import read_png
from pipeline.outputs import OutputFolder
from tests.pipeline.test_metadata import sample_image, sample_recipe

DAY = datetime(2025, 3, 14, 23, 59)


def tile(seed: int) -> SimpleNamespace:
    return SimpleNamespace(image=sample_image(seed), recipe=sample_recipe(seed=seed))


def test_save_writes_a_numbered_png_with_its_recipe(tmp_path: Path) -> None:
    outputs = OutputFolder(tmp_path, "1.0.0", clock=lambda: DAY)
    first, second = outputs.save(tile(8)), outputs.save(tile(3))
    assert first == tmp_path / "2025-03-14" / "00001-8.png"
    assert second == tmp_path / "2025-03-14" / "00002-3.png"
    _, recipe, text = read_png(first)
    assert recipe == sample_recipe(seed=8)
    assert text.endswith("Version: seed-explorer 1.0.0")
    assert sorted(p.name for p in second.parent.iterdir()) == ["00001-8.png", "00002-3.png"]


def test_numbers_carry_on_after_a_restart_and_start_again_each_day(tmp_path: Path) -> None:
    OutputFolder(tmp_path, clock=lambda: DAY).save(tile(1))
    (tmp_path / "2025-03-14" / "00041-7.png").write_bytes(b"saved by an earlier run")
    restarted = OutputFolder(tmp_path, clock=lambda: DAY)
    assert restarted.save(tile(5)).name == "00042-5.png"
    next_day = OutputFolder(tmp_path, clock=lambda: datetime(2025, 3, 15, 0, 0))
    assert next_day.save(tile(5)) == tmp_path / "2025-03-15" / "00001-5.png"


def test_threads_get_distinct_numbers(tmp_path: Path) -> None:
    outputs = OutputFolder(tmp_path, clock=lambda: DAY)
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda seed: outputs.save(tile(seed)), range(32)))
    numbers = sorted(int(path.name.split("-")[0]) for path in paths)
    assert numbers == list(range(1, 33))
    assert len(list((tmp_path / "2025-03-14").iterdir())) == 32
