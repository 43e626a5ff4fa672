"""Locked down by default: this machine only, no files but the app's own, a login when asked."""

import http.client
import ipaddress
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.conftest import ARTIFACTS, ROOT, launch_app

PASSWORD = "s3cret-Pa55"
WARNING = "WARNING: Seed Explorer is reachable beyond this machine"


def non_loopback_ipv4() -> str | None:
    """This machine's address on its network (a UDP connect sends nothing, it picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def port_of(url: str) -> int:
    return urlsplit(url).port


@contextmanager
def running(*args: str) -> Iterator[tuple[str, str]]:
    """The app launched with ARGS on the tiny model: its URL, and its log once it serves."""
    process, url = launch_app("--model", "tiny", *args)
    try:
        yield url, (ARTIFACTS / f"app-{port_of(url)}.log").read_text()
    finally:
        process.kill()
        process.wait()


def get_raw(url: str, path: str) -> tuple[int, bytes]:
    """GET `path` exactly as written: no client-side normalising of `..` or `%2F`."""
    connection = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def upload(url: str, content: bytes, **kwargs) -> httpx.Response:
    files = {"files": ("recipe.png", content, "image/png")}
    return httpx.post(f"{url}gradio_api/upload", files=files, timeout=60, **kwargs)


def fetch_uploaded(url: str, content: bytes) -> tuple[int, bytes]:
    """Upload `content`, then fetch it back through Gradio's file route."""
    response = upload(url, content)
    assert response.status_code == 200, response.text
    served = response.json()[0]
    for _ in range(20):  # Gradio moves the upload into its cache after it answers
        status, body = get_raw(url, f"/gradio_api/file={quote(served)}")
        if status == 200:
            break
        time.sleep(0.25)
    return status, body


def test_by_default_the_app_listens_on_this_machine_only(app_url: str) -> None:
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    assert accepts("127.0.0.1", port_of(app_url))
    assert not accepts(address, port_of(app_url))


def secrets() -> dict[str, bytes]:
    """Files the app must never serve, and a line from each that would give them away."""
    return {
        "/etc/passwd": b"root:",
        str(ROOT / "app.py"): (ROOT / "app.py").read_bytes().splitlines()[0],
        str(ROOT / "pipeline" / "engine.py"): (ROOT / "pipeline/engine.py").read_bytes()[:60],
        str(ROOT / "README.md"): b"title: Seed Explorer",
    }


def probes(path: str) -> list[str]:
    """`path` as an attacker would spell it to Gradio's file routes."""
    relative = path.removeprefix(str(ROOT) + "/") if path.startswith(str(ROOT)) else None
    up = "../" * 12 + path.lstrip("/")
    encoded = quote(up, safe="")
    spellings = [path, up, quote(path, safe=""), encoded, quote(encoded, safe="")]
    if relative:
        spellings += [relative, "./" + relative, quote(relative, safe="")]
    routes = ["/gradio_api/file=", "/gradio_api/file/", "/file=", "/static/", "/assets/"]
    return [route + spelling for route in routes for spelling in spellings]


def test_file_routes_serve_what_gradio_made_but_not_the_disk(app_url: str) -> None:
    png = b"\x89PNG\r\n\x1a\n an upload the page made"
    assert fetch_uploaded(app_url, png) == (200, png)  # the route works for the app's own files
    for path, giveaway in secrets().items():
        for probe in probes(path):
            status, body = get_raw(app_url, probe)
            assert status != 200 or giveaway not in body, probe


def test_model_endpoints_cannot_skip_the_queue(app_url: str) -> None:
    # A direct POST would run outside the queue's bound and order, and skip its validators.
    body = {"data": ["a kite", "", "0-15", "DDIM", 150, 7.5, 64, 64]}
    for route in ("gradio_api/run/grid", "gradio_api/api/grid"):
        response = httpx.post(f"{app_url}{route}", json=body, timeout=20)
        assert response.status_code == 404, route
        assert "join the queue" in response.text


def test_uploads_are_capped(app_url: str) -> None:
    response = upload(app_url, b"\0" * (17 * 1024 * 1024))
    assert response.status_code == 413


def test_with_a_login_it_listens_beyond_loopback_warns_nothing_and_everything_needs_it() -> None:
    with running("--host", "0.0.0.0", "--auth", f"ann:{PASSWORD},bob:other-{PASSWORD}") as (
        url,
        log,
    ):
        assert WARNING not in log and "login required: ann, bob" in log
        assert PASSWORD not in log
        address = non_loopback_ipv4()
        if address is not None:
            assert accepts(address, port_of(url))  # it does listen beyond loopback
        for path in ("gradio_api/info", "config", "gradio_api/openapi.json"):
            assert httpx.get(url + path, timeout=30).status_code == 401, path
        run = httpx.post(f"{url}gradio_api/call/grid", json={"data": ["a kite"]}, timeout=30)
        assert run.status_code == 401
        assert upload(url, b"\x89PNG").status_code == 401

        wrong = httpx.post(f"{url}login", data={"username": "ann", "password": "guess"})
        assert wrong.status_code == 400
        with httpx.Client(base_url=url, timeout=30) as session:
            login = {"username": "bob", "password": f"other-{PASSWORD}"}
            assert session.post("login", data=login).status_code == 200
            assert session.get("config").status_code == 200
