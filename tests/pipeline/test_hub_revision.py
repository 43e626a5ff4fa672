"""A hub model's recipe names the commit its files came from, read from the hub cache."""

from pathlib import Path

import huggingface_hub.constants
import pytest

from pipeline import loading

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_a_hub_ids_revision_is_its_cached_snapshots_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--someone--model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    assert loading._revision("someone/model") == COMMIT
    assert loading._revision("someone/not-cached") is None
    assert loading._revision("tiny") is None
