"""What the libraries print at import is left out where it is no fault of anyone's."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_pipeline_with_torchao_installed_prints_nothing() -> None:
    pytest.importorskip("torchao")
    result = subprocess.run(
        [sys.executable, "-c", "import pipeline.loading, diffusers.quantizers.torchao"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
