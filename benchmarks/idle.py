"""The CPU an app uses while it waits for work: the app against Gradio's own queue settings.

    python -m benchmarks.idle                # 10 s of each, after a settling pause
    python -m benchmarks.idle --seconds 30

Gradio's queue looks for a new job every 1 ms on Linux and for progress to send every 10 ms;
the app polls every 10 ms and 100 ms (app.py's QUEUE_POLL_S). On a small CPU that idle work
competes with torch's threads whenever a render runs, in the app or next to it. The other
side is benchmarks/floor.py: a minimal Gradio app with Gradio's defaults. Linux only (reads
/proc).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import tempfile
import time
from datetime import date

from benchmarks import report, server
from benchmarks.timing import process_counters


def idle_share(pid: int, seconds: float, settle: float = 5.0) -> float:
    """The share of one core the process used over `seconds` of doing nothing asked of it."""
    time.sleep(settle)
    before, started = process_counters(pid)[1], time.perf_counter()
    time.sleep(seconds)
    return (process_counters(pid)[1] - before) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.idle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(report.machine(), flush=True)
    print(f"\nCommand: `python -m benchmarks.idle --seconds {args.seconds:g}` on {date.today()}.")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        sides = {
            "the app (`python app.py --model tiny`)": ["app.py", "--model", "tiny", "--no-save"],
            "Gradio's defaults (benchmarks/floor.py)": [
                "-m", "benchmarks.floor", "--files", scratch,
            ],
        }  # fmt: skip
        for name, command in sides.items():
            with server.served(command) as app:
                rows.append([name, f"{idle_share(app.pid, args.seconds):.1%}"])
    print("\n" + report.table(["idle app", "share of one core"], rows))


if __name__ == "__main__":
    main()
