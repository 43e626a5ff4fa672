"""The line in front of the engine: arrival order, a cap per person, the count ahead."""

from __future__ import annotations

import threading

import pytest

from pipeline.admission import Admission, Busy
from pipeline.rendering import Stopped


def test_over_the_cap_a_run_is_refused_naming_the_cap() -> None:
    admission = Admission(slots=4, per_session=1)
    with admission.enter("ann", threading.Event(), print):
        with pytest.raises(Busy, match=r"--max-runs-per-session 1"):
            admission.enter("ann", threading.Event(), print).__enter__()
        with admission.enter("bob", threading.Event(), print):  # another person's run goes
            pass


def test_runs_are_admitted_in_arrival_order_and_told_how_many_are_ahead() -> None:
    admission = Admission(slots=1, per_session=2)
    order: list[str] = []
    heard: dict[str, list[int]] = {"second": [], "third": []}
    queued = threading.Semaphore(0)

    def run(name: str) -> None:
        def waiting(ahead: int) -> None:
            heard[name].append(ahead)
            queued.release()

        with admission.enter(name, threading.Event(), waiting):
            order.append(name)

    with admission.enter("first", threading.Event(), print):
        second = threading.Thread(target=run, args=("second",))
        second.start()
        queued.acquire()
        third = threading.Thread(target=run, args=("third",))
        third.start()
        queued.acquire()
    second.join()
    third.join()
    assert order == ["second", "third"]
    assert heard["second"][0] == 1 and heard["third"][0] == 2


def test_stop_while_waiting_leaves_the_line() -> None:
    admission = Admission(slots=1)
    stop = threading.Event()
    stop.set()
    with admission.enter("ann", threading.Event(), print), pytest.raises(Stopped):
        admission.enter("bob", stop, lambda ahead: None).__enter__()
    with admission.enter("bob", threading.Event(), print):  # the line is empty again
        pass
