"""Ray Serve: what a run pays for going through a replica, and what a replica killed under load
costs the people whose runs it had.

    python -m benchmarks.ray_serve                 # 8 rounds; 4 clients for 40 s, one kill
    python -m benchmarks.ray_serve --repeats 12 --clients 8 --seconds 60

Overhead: the same run on the local engine and through Ray Serve (the front door's engine,
serving/remote.py, on a local Ray with two replicas of the tiny model), alternating, previews
on as in the app; medians and the median of per-round differences. Ray gives a replica of one
CPU one torch thread, so the local engine runs on one too: the two differ only by the way there.

A replica killed: clients send runs back to back; after a quarter of the time one replica is
killed (ray.kill, as a crashed machine would). Runs lost are runs that raised; a run that was on
the killed replica starts again on the other one. Recovery: from the kill until Serve has two
replicas running again, and until the first run sent after the kill has finished.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as benchmarks/e2e.py, for the same reason

import argparse
import logging
import statistics
import threading
import time
from datetime import date

import ray
import torch
from ray import serve

from benchmarks import report
from benchmarks.probe import PROMPT
from benchmarks.timing import seconds
from pipeline.builder import EngineSettings
from pipeline.engine import Engine
from pipeline.loading import load_model
from pipeline.rendering import Hooks
from pipeline.requests import GridRequest
from serving.deployment import APP_NAME
from serving.remote import RayEngine, connect
from serving.replicas import Replicas

RUNS = {
    "1 tile, 2 steps, 32 px": GridRequest(PROMPT, (1,), steps=2, width=32, height=32),
    "grid of 4, 10 steps, 64 px": GridRequest(PROMPT, (1, 2, 3, 4), steps=10),
}


class ReplicasSeen(logging.Handler):
    """The replicas runs were sent to (serving/remote.py logs each at debug level) and the
    restarts after a replica died."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: set[str] = set()
        self.restarts = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Rendering on %s":
            self.names.add(str(record.args[0]))  # type: ignore[index]
        elif str(record.msg).startswith("A replica died"):
            self.restarts += 1


def overhead(local: Engine, remote: RayEngine, repeats: int) -> list[list[object]]:
    """Each run locally and through Serve, alternating; medians in ms."""
    rows = []
    for name, request in RUNS.items():
        sides = {"local": local, "ray": remote}
        for engine in sides.values():  # warm-up, untimed
            engine.run(request, Hooks(preview=lambda first, images: None))
        times: dict[str, list[float]] = {side: [] for side in sides}
        for round_index in range(repeats):
            order = ("local", "ray") if round_index % 2 == 0 else ("ray", "local")
            for side in order:
                hooks = Hooks(preview=lambda first, images: None)
                times[side].append(
                    seconds(lambda e=sides[side], h=hooks, r=request: e.run(r, h))[0]
                )
        extra = statistics.median(
            r - lo for r, lo in zip(times["ray"], times["local"], strict=True)
        )
        rows.append(
            [
                name,
                f"{statistics.median(times['local']) * 1000:.0f}",
                f"{statistics.median(times['ray']) * 1000:.0f}",
                f"{extra * 1000:+.0f}",
                repeats,
            ]
        )
    return rows


def killed_under_load(
    remote: RayEngine, seen: ReplicasSeen, clients: int, duration: float
) -> list[object]:
    """Clients sending runs back to back while one replica is killed."""
    request = GridRequest(PROMPT, (5, 6), steps=20, width=32, height=32)
    done: list[tuple[float, float]] = []  # (sent, finished)
    lost: list[str] = []
    lock = threading.Lock()
    started = time.monotonic()

    def client() -> None:
        while time.monotonic() - started < duration:
            sent = time.monotonic()
            try:
                remote.run(request)
            except Exception as error:  # a lost run: counted, the client goes on
                with lock:
                    lost.append(f"{type(error).__name__}: {error}")
                continue
            with lock:
                done.append((sent, time.monotonic()))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(duration / 4)
    victim = sorted(seen.names)[0]
    killed = time.monotonic()
    ray.kill(ray.get_actor(victim, namespace="serve"))
    back = _replicas_running_again(killed, 2, timeout=duration * 4)
    for thread in threads:
        thread.join()
    first_after = min((end for sent, end in done if sent > killed), default=float("nan"))
    return [
        clients,
        len(done) + len(lost),
        len(lost),
        seen.restarts,
        f"{first_after - killed:.1f}",
        f"{back:.1f}",
        "; ".join(sorted(set(lost))) or "",
    ]


def _replicas_running_again(since: float, count: int, timeout: float) -> float:
    """Seconds from `since` until Serve, having seen a replica gone, runs `count` again."""
    gone = False
    while time.monotonic() - since < timeout:
        deployments = serve.status().applications[APP_NAME].deployments.values()
        running = sum(d.replica_states.get("RUNNING", 0) for d in deployments)
        gone = gone or running < count
        if gone and running >= count:
            return time.monotonic() - since
        time.sleep(0.2)
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ray_serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    started = time.perf_counter()
    print(report.machine(), flush=True)
    print(
        f"\nCommand: `python -m benchmarks.ray_serve --repeats {args.repeats} --clients "
        f"{args.clients} --seconds {args.seconds:g}` on {date.today()}."
    )
    seen = ReplicasSeen()
    logger = logging.getLogger("seed_explorer")
    logger.addHandler(seen)
    logger.setLevel(logging.DEBUG)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = connect(EngineSettings("tiny", "cpu"), Replicas(2, 2))
        local = Engine(load_model("tiny", device="cpu"))
        torch.set_num_threads(1)  # as a replica's (OMP_NUM_THREADS=1 for one CPU)
        header = ["run", "local engine, ms", "through Ray Serve, ms", "difference, ms", "rounds"]
        print("\n" + report.table(header, overhead(local, remote, args.repeats)))
        header = [
            "clients", "runs", "runs lost", "runs started again", "first new run done, s",
            "2 replicas again, s", "errors",
        ]  # fmt: skip
        row = killed_under_load(remote, seen, args.clients, args.seconds)
        print("\n" + report.table(header, [row]))
    finally:
        serve.shutdown()
        ray.shutdown()
    print("\n" + report.whole_run(started))


if __name__ == "__main__":
    main()
