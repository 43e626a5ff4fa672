"""The tiny model on disk: as a diffusers folder and as one original-format .safetensors file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.tiny import build_tiny_pipeline
from tests.pipeline.original_format import write_single_file


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny-folder"
    build_tiny_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_single_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_single_file(
        build_tiny_pipeline(), tmp_path_factory.mktemp("models") / "tiny-original.safetensors"
    )
