"""Markdown for the figures: the machine, then one table per measurement."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import torch

from benchmarks.switches import Measured
from benchmarks.timing import Pair

PACKAGES = ("torch", "diffusers", "transformers", "gradio", "gradio_client")


@dataclass(frozen=True)
class Row:
    """One app-versus-plain workload and its timings."""

    workload: str
    model: str
    pair: Pair


@dataclass(frozen=True)
class ApiResult:
    """A grid through the launched app's API, paired round by round with plain diffusers."""

    startups: list[float]
    client_s: float
    first_request_s: float
    pair: Pair  # `app`: client.predict round trips; `plain`: the plain diffusers call
    server_render: list[float]
    steps: int


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def whole_run(started: float) -> str:
    """The closing line of a benchmark's output: its seconds and the load at the end."""
    return (
        f"Whole run: {time.perf_counter() - started:.0f} s; load average at the end "
        f"(1/5/15 min): {load_average()}."
    )


def machine() -> str:
    """CPU model, CPU count, RAM, OS, versions and the load when the run started."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor(),
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    ram_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20
    rows = [
        ("CPU", cpu),
        ("CPUs", f"{os.cpu_count()} (nproc {len(os.sched_getaffinity(0))})"),
        ("torch threads", torch.get_num_threads()),
        ("RAM", f"{ram_gib:.1f} GiB"),
        ("GPU", torch.cuda.get_device_name() if torch.cuda.is_available() else "none"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("Packages", ", ".join(f"{name} {version(name)}" for name in PACKAGES)),
        ("Load average at start (1/5/15 min)", load_average()),
    ]
    return table(["", ""], rows)


def cold_start(loads: list[tuple[float, dict[str, float]]]) -> str:
    walls = [wall for wall, _ in loads]
    imports = [result["import_s"] for _, result in loads]
    builds = [result["load_s"] for _, result in loads]
    return table(
        ["what", "median s", "runs"],
        [
            ["whole process: python -m benchmarks.probe load", f"{median(walls):.2f}", len(walls)],
            [
                "of which: import pipeline.loading (torch, diffusers)",
                f"{median(imports):.2f}",
                len(imports),
            ],
            ["of which: load_model('tiny')", f"{median(builds):.3f}", len(builds)],
        ],
    )


def api(result: ApiResult) -> str:
    pair = result.pair
    reported = list(zip(pair.app, result.server_render, strict=True))
    rounds = len(pair.app)
    return (
        table(
            ["what", "median s", "runs"],
            [
                [
                    "start to first served page (`python app.py` until GET / answers 200)",
                    f"{median(result.startups):.2f}",
                    len(result.startups),
                ],
                ["gradio_client.Client(url), once", f"{result.client_s:.2f}", 1],
                ["first request after start (round trip)", f"{result.first_request_s:.2f}", 1],
                [
                    "API round trip: client.predict(..., api_name='/grid'), files downloaded",
                    f"{median(pair.app):.2f}",
                    rounds,
                ],
                ["plain diffusers call, same 8 images", f"{median(pair.plain):.2f}", rounds],
                [
                    "**end to end, app / plain (median of per-round ratios)**",
                    f"**{pair.ratio:.3f}**",
                    rounds,
                ],
                [
                    "render time the app reports in its summary line",
                    f"{median(result.server_render):.2f}",
                    rounds,
                ],
                [
                    "response path: round trip minus reported render",
                    f"{median([a - r for a, r in reported]):.2f}",
                    rounds,
                ],
            ],
        )
        + f"\n\nLargest pixel difference, served PNG against the plain call: {pair.pixel_diff}."
    )


def gpu(rows: list[Row], limit: float = 27.0) -> str:
    """Images per second of the grid rows at 20 steps, and their share of `limit`."""
    picked = [row for row in rows if row.workload.startswith("grid") and "20 steps" in row.workload]
    lines = []
    for row in picked:
        tiles = int(row.workload.split(",")[1].split()[0])
        app, plain = tiles / median(row.pair.app), tiles / median(row.pair.plain)
        lines.append(
            [row.model, f"{app:.2f}", f"{plain:.2f}", f"{app / limit:.0%}", f"{plain / limit:.0%}"]
        )
    return table(
        [
            "model",
            "app images/s",
            "plain images/s",
            f"app / {limit:g} images/s",
            f"plain / {limit:g} images/s",
        ],
        lines,
    )


def app_vs_plain(rows: list[Row]) -> str:
    header = [
        "workload",
        "model",
        "app s (median)",
        "plain s (median)",
        "app/plain",
        "app s (min)",
        "plain s (min)",
        "rounds",
        "max pixel diff",
    ]
    return table(
        header,
        [
            [
                row.workload,
                row.model,
                f"{median(row.pair.app):.2f}",
                f"{median(row.pair.plain):.2f}",
                f"{row.pair.ratio:.3f}",
                f"{min(row.pair.app):.2f}",
                f"{min(row.pair.plain):.2f}",
                len(row.pair.app),
                row.pair.pixel_diff,
            ]
            for row in rows
        ],
    )


def fixed_costs(costs: dict[str, float]) -> str:
    return table(
        ["call", "ms per call (median of 5 batches of 200)"],
        [[name, f"{ms:.3f}"] for name, ms in costs.items()],
    )


def peak_memory(rss: dict[int, dict[str, float]]) -> str:
    gpu = any("cuda_peak_mib" in result for result in rss.values())
    header = [
        "seeds", "peak RSS, import and load, MiB", "RSS once loaded, MiB",
        "peak RSS during the grid, MiB", "grid peak minus loaded, MiB",
    ]  # fmt: skip
    cuda_header = ["CUDA allocated once loaded, MiB", "CUDA peak during the grid, MiB"]
    return table(
        [*header, *(cuda_header if gpu else [])],
        [
            [
                seeds,
                f"{result['load_peak_mib']:.0f}",
                f"{result['loaded_mib']:.0f}",
                f"{result['grid_peak_mib']:.0f}",
                f"{result['grid_peak_mib'] - result['loaded_mib']:.0f}",
                *(
                    [f"{result['cuda_loaded_mib']:.0f}", f"{result['cuda_peak_mib']:.0f}"]
                    if gpu
                    else []
                ),
            ]
            for seeds, result in rss.items()
        ],
    )


def switches(measured: list[Measured]) -> str:
    gpu = any(m.peak_on_mib is not None for m in measured)
    header = ["switch", "on s (median)", "off s (median)", "on/off", "rounds", "max pixel diff"]
    header += ["CUDA peak on, MiB", "CUDA peak off, MiB"] if gpu else []
    rows = []
    for m in measured:
        row = [
            m.name + (f" ({m.note})" if m.note else ""),
            f"{median(m.pair.app):.2f}",
            f"{median(m.pair.plain):.2f}",
            f"{m.pair.ratio:.3f}",
            len(m.pair.app),
            m.pair.pixel_diff,
        ]
        if gpu:
            row += [f"{m.peak_on_mib:.0f}", f"{m.peak_off_mib:.0f}"]
        rows.append(row)
    return table(header, rows)
