"""Many users at once, and a full queue, through gradio_client against launched apps.

A request's images must not depend on who else is in the queue: every result of a crowd of
clients is pixel-identical to the same request sent alone. A full queue answers at once with
a clear "busy, try again", and the app serves again once it drains.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.utils import QueueError, Status
from PIL import Image

from pipeline.engine import Engine
from tests.conftest import served

# Small on purpose (a 2-core CI runner); stochastic schedulers included, whose noise comes
# from each tile's own generator.
REQUESTS = [
    ("/grid", {"prompt": "a kite", "seeds": "0-2", "steps": 2}),
    ("/grid", {"prompt": "a red door", "seeds": "7, 3", "steps": 2, "scheduler": "Euler a"}),
    ("/refine", {"prompt": "a kite", "seed": "5", "suffixes": ", artsy\n, trending", "steps": 2}),
    (
        "/refine",
        {"prompt": "a boat", "seed": "9", "suffixes": ", calm", "scheduler": "DPM2 a", "steps": 2},
    ),
    ("/compare", {"prompt": "a kite", "seed": "5", "schedulers": ["Euler a", "DDIM"], "steps": 2}),
    ("/compare", {"prompt": "a boat", "seed": "9", "schedulers": ["UniPC", "DDPM"], "steps": 2}),
]
CLIENTS = 8  # each sends one request; together they cover every request, some twice
SIZE = {"width": 64, "height": 64}


def images(gallery: list[dict]) -> list[np.ndarray]:
    """The tiles as decoded pixels (the PNG files' bytes may differ in metadata only)."""
    decoded = []
    for tile in gallery:
        with Image.open(Path(tile["image"])) as image:
            decoded.append(np.asarray(image.convert("RGB")))
    return decoded


def run(client: Client, index: int) -> list[np.ndarray]:
    api_name, arguments = REQUESTS[index]
    gallery, _ = client.predict(**arguments, **SIZE, api_name=api_name)
    return images(gallery)


def crowd_member(url: str, start: threading.Barrier, member: int) -> list[np.ndarray]:
    """One user with a client of its own, sending its request once every user is connected."""
    client = Client(url, verbose=False)
    start.wait(timeout=60)
    return run(client, member % len(REQUESTS))


def test_a_crowd_of_clients_gets_exactly_what_each_request_gets_alone(app_url: str) -> None:
    alone_client = Client(app_url, verbose=False)
    alone = [run(alone_client, index) for index in range(len(REQUESTS))]

    start = threading.Barrier(CLIENTS)
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        members = [pool.submit(crowd_member, app_url, start, m) for m in range(CLIENTS)]
        results = [member.result() for member in members]
    seconds = time.monotonic() - started

    print(
        f"\nload: {CLIENTS} clients sent {len(results)} requests at once "
        f"({len(REQUESTS)} distinct, each also sent alone first): {seconds:.1f} s in all"
    )
    for member, tiles in enumerate(results):
        index = member % len(REQUESTS)
        assert len(tiles) == len(alone[index]), REQUESTS[index]
        for tile, reference in zip(tiles, alone[index], strict=True):
            assert np.array_equal(tile, reference), REQUESTS[index]


@pytest.fixture
def one_slot_app(engine: Engine) -> Iterator[str]:
    """An app whose queue holds one waiting request (besides the one running)."""
    with served(engine, queue_size=1) as url:
        yield url


def wait_for(job, statuses: set[Status], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while job.status().code not in statuses:
        assert not job.done(), f"finished before reaching {statuses}"
        assert time.monotonic() < deadline, f"never reached {statuses}"
        time.sleep(0.05)


def test_a_full_queue_says_busy_try_again_and_the_app_serves_after(one_slot_app: str) -> None:
    client = Client(one_slot_app, verbose=False)
    small = {"prompt": "a kite", "seeds": "1", "steps": 2, **SIZE}
    running = client.submit(prompt="a kite", seeds="0-3", steps=30, **SIZE, api_name="/grid")
    wait_for(running, {Status.PROCESSING, Status.PROGRESS, Status.ITERATING})
    waiting = client.submit(**small, api_name="/grid")
    wait_for(waiting, {Status.IN_QUEUE})

    started = time.monotonic()
    with pytest.raises(QueueError, match=r"Queue is full! Please try again\."):
        client.predict(**small, api_name="/grid")
    raw = httpx.post(f"{one_slot_app}gradio_api/call/grid", json={"data": ["a kite"]}, timeout=20)
    assert time.monotonic() - started < 20
    assert raw.status_code == 503
    assert raw.json()["detail"] == "Queue is full. Max size is 1 and size is 1."

    assert len(running.result(timeout=300)[0]) == 4
    assert len(waiting.result(timeout=300)[0]) == 1
    gallery, _ = client.predict(**small, api_name="/grid")
    assert [tile["caption"] for tile in gallery] == ["seed 1"]
