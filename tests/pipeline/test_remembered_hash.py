"""A single-file checkpoint is hashed once: its sha256 is remembered by path, size and
modification time between starts."""

from pathlib import Path

import pytest

from pipeline import checkpoints


def test_a_files_hash_is_read_once_and_again_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights")
    reads: list[Path] = []
    real = checkpoints.file_sha256
    monkeypatch.setattr(checkpoints, "file_sha256", lambda path: reads.append(path) or real(path))
    first = checkpoints.remembered_sha256(weights)
    assert checkpoints.remembered_sha256(weights) == first and len(reads) == 1
    weights.write_bytes(b"other weights")  # another size, another time
    assert checkpoints.remembered_sha256(weights) != first and len(reads) == 2


def test_an_unreadable_cache_costs_only_the_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = checkpoints.hash_cache()
    store.parent.mkdir(parents=True)
    store.write_text("not json")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights")
    assert checkpoints.remembered_sha256(weights) == checkpoints.file_sha256(weights)
