"""The command line: flags, their environment variables, and a model that cannot load."""

import subprocess
import sys

import app
from tests.conftest import ROOT


def test_flags_default_to_loopback_and_read_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    assert app.parse_args([]).host == "127.0.0.1"
    monkeypatch.setenv("SEED_EXPLORER_MODEL", "tiny")
    monkeypatch.setenv("SEED_EXPLORER_MAX_TILES", "4")
    args = app.parse_args([])
    assert (args.model, args.max_tiles) == ("tiny", 4)
    assert app.parse_args(["--model", "./mine"]).model == "./mine"


def test_a_named_model_that_cannot_load_exits_with_one_line_and_a_hint(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "app.py", "--model", str(tmp_path / "missing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("error: cannot load model") and "Hint:" in last and "--model tiny" in last
    )


def test_help_lists_every_flag() -> None:
    result = subprocess.run(
        [sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    for flag in ("--model", "--host", "--port", "--share", "--device", "--generator-device"):
        assert flag in result.stdout
