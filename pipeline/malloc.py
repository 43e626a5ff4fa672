"""glibc's malloc, told to keep the memory torch frees for the next step.

By default glibc gives the free top of its heap back to the system once more than its trim
threshold (128 kB at first) is free, and maps each block over its mmap threshold on its own,
unmapped when freed; the two thresholds only rise when such a block is freed. A render's
steps allocate and free the same tensors again and again, so each step faults fresh, zeroed
pages in: the tiny model's grid of 8 at 20 steps took 10,000 to 640,000 minor page faults per
call, and its time rose and fell with them (`python -m benchmarks.malloc`,
docs/PERFORMANCE.md). AUTOMATIC1111 preloads tcmalloc for the same reason. Fixed thresholds
keep blocks of up to 32 MiB in the heap (glibc's largest threshold on 64-bit; larger ones are
mapped as before) and up to 1 GiB of free heap for the next step, which the process then
holds between runs.

That free heap is kept per arena, and glibc gives each new thread an arena of its own (up to
8 per core): Gradio runs events on a pool of worker threads, so as runs went to one worker
after another each kept its own peak and the app's memory rose for as long as it served (a
soak of 8 clients: 629 to 663 MB over 230 runs and still rising; `python -m
benchmarks.soak`, docs/PERFORMANCE.md). Two arenas, the main thread's and one the workers
share, keep it flat: 607 MB at the 65th run, 613 MB at the 1000th.

A user's own MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or MALLOC_ARENA_MAX wins: nothing
is changed then.
Nothing is changed either where the C library is not glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**30
ARENA_MAX = 2
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX")


def keep_freed_memory() -> bool:
    """Fix glibc's two thresholds and its number of arenas for this process; whether they
    were set."""
    if platform.libc_ver()[0] != "glibc" or any(os.environ.get(name) for name in USER_SETTINGS):
        return False
    mallopt = ctypes.CDLL(None).mallopt  # this process's own C library
    return all(
        mallopt(parameter, value) == 1
        for parameter, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (M_ARENA_MAX, ARENA_MAX),
        )
    )
