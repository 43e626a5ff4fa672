"""glibc's malloc keeps what torch frees (pipeline/malloc.py), in a fresh process each time,
since the setting is for a whole process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# 400 tensors of 100 kB (a tiny model's activations) written and freed at every step, as a
# render's steps do: the page faults of ten steps after two warm-ups, once the setting is
# asked for. glibc as it comes gives the freed heap top back after each step (blocks this
# small never raise its thresholds) and faults about 60% of the pages in again.
STEPS = """
from pathlib import Path
import torch
from pipeline.malloc import keep_freed_memory

def faults():
    return int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[7])

def step():
    blocks = [torch.empty(25_000).fill_(1.0) for _ in range(400)]
    del blocks

applied = keep_freed_memory()
step(), step()
before = faults()
for _ in range(10):
    step()
print(applied, faults() - before)
"""
PAGES_WRITTEN = 10 * 400 * 100_000 // 4096


def run_steps(env: dict[str, str] | None = None) -> tuple[bool, int]:
    done = subprocess.run(
        [sys.executable, "-c", STEPS], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    applied, faults = done.stdout.split()
    return applied == "True", int(faults)


def test_freed_tensors_come_back_without_new_pages() -> None:
    applied, faults = run_steps()
    assert applied
    assert faults < PAGES_WRITTEN / 100


def test_a_users_own_malloc_setting_is_left_alone() -> None:
    applied, _ = run_steps({**os.environ, "MALLOC_TRIM_THRESHOLD_": "131072"})
    assert not applied


# A pool of worker threads, alive together as Gradio's are, each rendering in turn: 400
# blocks of 100 kB written and freed. Every heap keeps what is freed in it (up to the trim
# threshold), so a thread with a heap of its own would keep one step's 40 MB more each.
WORKERS = """
import threading
from pathlib import Path
import torch
from pipeline.malloc import keep_freed_memory

def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

def step():
    blocks = [torch.empty(25_000).fill_(1.0) for _ in range(400)]
    del blocks

keep_freed_memory()
step()
turns = [threading.Event() for _ in range(8)]
done = threading.Barrier(9)

def worker(turn, following):
    turn.wait()
    step()
    following.set()
    done.wait()

following = turns[1:] + [threading.Event()]
threads = [threading.Thread(target=worker, args=pair) for pair in zip(turns, following)]
for thread in threads:
    thread.start()
before = rss()
turns[0].set()
done.wait()
print(rss() - before)
"""
STEP_BYTES = 400 * 100_000


def test_worker_threads_taking_turns_reuse_the_memory_one_step_freed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WORKERS], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(done.stdout) < 2 * STEP_BYTES
