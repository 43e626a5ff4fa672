"""The launched app: seconds from `python app.py` to a served page, and API round trips."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SUMMARY_SECONDS = re.compile(r"· ([\d.]+) s(?: ·|$)")


@dataclass(frozen=True)
class App:
    """A running `app.py` and how long it took from start to its first served page."""

    url: str
    startup_s: float
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def launched(
    device: str, args: Sequence[str] = ("--model", "tiny"), timeout: float = 300
) -> Iterator[App]:
    """`python app.py --port N --device D ARGS`, polled until GET / answers; stopped on exit."""
    with served(["app.py", "--device", device, *args], timeout) as app:
        yield app


@contextmanager
def served(command: Sequence[str], timeout: float = 300) -> Iterator[App]:
    """`python COMMAND --port N` (a script or `-m module` and its arguments), polled until
    GET / answers; stopped on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, *command, "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            yield App(url, _wait_for_page(url, process, started, timeout), process.pid)
        except RuntimeError:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_page(
    url: str, process: subprocess.Popen[bytes], started: float, timeout: float
) -> float:
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[1]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args[1]} did not serve {url} within {timeout} s")


def render_seconds(summary: str) -> float:
    """The render time the app itself reports in its summary line ("· 3.4 s", then maybe
    "· saved to ...")."""
    match = _SUMMARY_SECONDS.search(summary.strip())
    if not match:
        raise ValueError(f"no seconds in summary {summary!r}")
    return float(match.group(1))
