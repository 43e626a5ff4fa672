"""Shared fixtures: the tiny model, an engine on it, the app launched on a free port, and the
app served from this process for an engine already loaded."""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import io
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

import app
from pipeline.engine import Engine
from pipeline.loading import LoadedModel, load_model
from pipeline.replay import main as replay_main
from pipeline.tiny import build_tiny_pipeline
from ui import build_demo

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def tiny() -> LoadedModel:
    return load_model("tiny", device="cpu")


@pytest.fixture(scope="session")
def engine(tiny: LoadedModel) -> Engine:
    return Engine(tiny)


@pytest.fixture(scope="session")
def sdxl() -> Engine:
    """An engine on the tiny SDXL model (two text encoders, size conditioning, VAE upcast)."""
    return Engine(load_model("tiny-sdxl", device="cpu"))


@pytest.fixture(scope="session")
def flux() -> Engine:
    """An engine on the tiny Flux.1 [dev] model (Distilled CFG, true CFG, a shifted schedule)."""
    return Engine(load_model("tiny-flux", device="cpu"))


@pytest.fixture(scope="session", params=["tiny", "tiny-sdxl"])
def family_engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on Stable Diffusion 1.x's and XL's layouts."""
    return Engine(load_model(request.param, device="cpu"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_app(*args: str, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """`python app.py ARGS` on a free port; returns the process and its URL once it serves."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"app-{port}.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"app.py did not serve {url} within {timeout} s; see {log.name}")


def a1111_png(path: Path, parameters: str, size: tuple[int, int]) -> Path:
    """A PNG as AUTOMATIC1111 saves one: its infotext in a `parameters` chunk, nothing else."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", size, (90, 120, 150)).save(path, pnginfo=info)
    return path


def replay_pngs(pngs: list[Path], out: Path) -> list[str]:
    """`python -m pipeline.replay PNG...`'s verdict lines, one per PNG, run in this process
    (its models are this process's cached ones: no second torch start-up per call)."""
    printed = io.StringIO()
    with redirect_stdout(printed):
        status = replay_main([*map(str, pngs), "--out", str(out)])
    assert status == 0, printed.getvalue()
    return printed.getvalue().splitlines()


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    """One app on the tiny model for the whole session (API and browser tests share it)."""
    process, url = launch_app("--model", "tiny")
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session", params=["tiny-flux", "tiny-sd3"])
def flow_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The app as `python app.py --model FOLDER --no-save` sets it up for a saved tiny Flux.1
    [dev] or SD3 folder, as a new user brings one, served here (the API and the browser tests
    share it). Yields its URL."""
    folder = tmp_path_factory.mktemp(f"my-{request.param}")
    build_tiny_pipeline(request.param).save_pretrained(folder)
    args = app.parse_args(["--model", str(folder), "--no-save"])
    with served(app.create_engine(args), args.queue_size) as url:
        yield url


@contextmanager
def served(engine: Engine, queue_size: int) -> Iterator[str]:
    """The page `python app.py --no-save` serves for `engine`, from this process: no other
    process importing torch and loading the model again. Yields its URL."""
    demo = build_demo(engine, outputs=None)
    app.queue(demo, queue_size)
    demo.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        max_file_size=app.MAX_UPLOAD,
    )
    try:
        yield demo.local_url
    finally:
        demo.close()
