"""What micro-batches cost: a grid in fixed micro-batches against the same grid in one call,
and what they save: re-rendering one tile to verify it.

    python -m benchmarks.microbatch            # tiny and mid-size models, CPU (~4 minutes)
    python -m benchmarks.microbatch --quick    # tiny model only
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks import models, report
from benchmarks.probe import PROMPT
from benchmarks.timing import interleave, seconds
from pipeline.engine import DEFAULT_MICRO_BATCH, Engine
from pipeline.loading import LoadedModel
from pipeline.requests import GridRequest

STEPS = 20


def measure(model: LoadedModel, tiles: int, repeats: int) -> list[object]:
    micro = Engine(model, micro_batch=DEFAULT_MICRO_BATCH)
    whole = Engine(model, micro_batch=None)
    request = GridRequest(PROMPT, tuple(range(tiles)), steps=STEPS)
    for engine in (micro, whole):  # warm-up at every batch size used
        engine.run(GridRequest(PROMPT, request.seeds, steps=2))
    pair = interleave(
        lambda: [t.image for t in micro.run(request)],
        lambda: [t.image for t in whole.run(request)],
        repeats,
    )
    verify = {}
    for name, engine in (("micro", micro), ("whole", whole)):
        recipe = engine.run(request)[-1].recipe
        verify[name] = statistics.median(
            seconds(lambda: engine.replay(recipe))[0]  # noqa: B023 - called at once
            for _ in range(2)
        )
    return [
        f"grid of {tiles}, {STEPS} steps",
        model.model_id,
        f"{statistics.median(pair.app):.2f}",
        f"{statistics.median(pair.plain):.2f}",
        f"{pair.ratio:.2f}",
        f"{statistics.median(pair.app) - statistics.median(pair.plain):+.2f}",
        pair.pixel_diff,
        f"{verify['micro']:.2f}",
        f"{verify['whole']:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    loaded = [models.tiny(args.device)] + ([] if args.quick else [models.mid(args.device)])
    rows = [measure(model, tiles, args.repeats) for model in loaded for tiles in (8, 16)]
    print(report.machine())
    print(
        report.table(
            [
                "run",
                "model",
                f"micro-batches of {DEFAULT_MICRO_BATCH}, s",
                "one call, s",
                "ratio",
                "cost, s",
                "max pixel diff",
                "verify a tile (micro), s",
                "verify a tile (one call), s",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
