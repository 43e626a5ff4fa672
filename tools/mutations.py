"""Break the code on purpose, one behaviour at a time, and see the tests named for it fail.

    python -m tools.mutations [NAME ...]

Each mutation is a file, an exact text in it, the text that replaces it, and the tests that
must catch the change. They are applied one at a time to a clone of this checkout's HEAD in a
temporary folder (with this checkout's .venv), and only the named tests run. Prints a table:
`caught` (a named test failed), `MISSED` (they all passed), `error` (pytest could not run them)
or `timed out`. Exits 1 if any mutation is not caught, or if a mutation's text is not found
exactly once (the code moved: update the list); 2 if the named tests fail unmutated.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 1200
ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}


@dataclass(frozen=True)
class Mutation:
    """One behaviour broken: `old` (found exactly once in `path`) becomes `new`."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids, one of which must fail


ENGINE_RUNS = "tests/pipeline/test_engine_runs.py"
REPLAY_IN_PLACE = (
    f"{ENGINE_RUNS}::test_a_tile_from_a_grid_of_four_replays_bit_exact"
    "_in_its_place_in_a_call_of_four"
)
REPLAY_PNGS = (
    "tests/pipeline/test_replay.py::test_pngs_of_a_grid_a_refinement_and_euler_a_replay_bit_exact"
)
LOCKSTEP_MIXED = "tests/pipeline/test_lockstep.py::test_a_mixed_group_with_second_order_schedulers"
DURATION = (
    "tests/ui/test_zerogpu.py::test_a_render_asks_zerogpu_for_start_up_plus_its_image_steps_by_area"
)
INFOTEXT = "tests/pipeline/test_metadata.py::test_infotext_is_a1111_layout_in_a1111_order"
PLAN_REFUSALS = (
    "tests/pipeline/test_plan.py::test_bad_requests_are_refused_naming_the_field_and_what_it_allows"
)
MARKED_INPUT = (
    "tests/test_bad_input.py::test_validators_mark_the_refused_input_with_the_plans_message"
)
STOP_STEP = (
    '                raise Stopped(f"Stopped at step {_steps_done(pipe, done)} of {sampler.steps}")'
)
STOP_GROUP = '                raise Stopped(f"Stopped at step {step} of {longest}")'

MUTATIONS = (
    Mutation(
        "a seed's noise from another seed",
        "pipeline/noise.py",
        "generator = torch.Generator(device).manual_seed(seed)",
        "generator = torch.Generator(device).manual_seed(seed + 1)",
        (
            "tests/pipeline/test_families.py::test_n_seeds_give_n_tiles_each_its_seed_rendered_alone[tiny]",
            f"{ENGINE_RUNS}::test_a_recipe_says_how_its_tile_was_made",
        ),
    ),
    Mutation(
        "replay returns tile 0 of its call",
        "pipeline/engine.py",
        "return self.render(self.replay_plan(recipe), hooks)[recipe.batch_index]",
        "return self.render(self.replay_plan(recipe), hooks)[0]",
        (REPLAY_IN_PLACE, REPLAY_PNGS),
    ),
    Mutation(
        "replay renders in calls of 1",
        "pipeline/recipe.py",
        "return Plan(items=(item,) * batch, samplers=(own,), per_call=batch, **common)",
        "return Plan(items=(item,) * batch, samplers=(own,), per_call=1, **common)",
        (REPLAY_IN_PLACE, REPLAY_PNGS),
    ),
    Mutation(
        "command-line replay takes a group's first tile",
        "pipeline/replay.py",
        "tile = groups[group][job.recipe.batch_index]",
        "tile = groups[group][0]",
        (REPLAY_PNGS,),
    ),
    Mutation(
        "travel from a pinned variation starts from the plain seed",
        "pipeline/planner.py",
        "Item(prompt, seed, None, to_seed, strength, resize_from, base)",
        "Item(prompt, seed, None, to_seed, strength, resize_from, ())",
        (
            "tests/pipeline/test_explore.py::test_vary_and_travel_from_a_variation_pin_move_away_from_its_own_noise",
        ),
    ),
    Mutation(
        "lockstep lanes all at the first lane's timestep",
        "pipeline/lockstep.py",
        "timesteps = [lane.timesteps[lane.done] for lane, _ in entries]",
        "timesteps = [entries[0][0].timesteps[entries[0][0].done] for lane, _ in entries]",
        (LOCKSTEP_MIXED,),
    ),
    Mutation(
        "lockstep lanes step with each other's predictions",
        "pipeline/lockstep.py",
        "for lane, own in zip(chunk, predictions, strict=True):",
        "for lane, own in zip(chunk, predictions[::-1], strict=True):",
        (LOCKSTEP_MIXED,),
    ),
    Mutation(
        "shared calls take the shape of whoever shares them",
        "pipeline/sharing.py",
        "lockstep.predict([(e.lane, e.guidance) for e in chosen], rows)",
        "lockstep.predict([(e.lane, e.guidance) for e in chosen], None)",
        (
            "tests/pipeline/test_sharing.py::"
            "test_two_runs_started_together_share_calls_and_equal_their_solo_renders",
        ),
    ),
    Mutation(
        "Stop decodes a grid's latents",
        "pipeline/rendering.py",
        STOP_STEP,
        '                pipe.vae.decode(tensors["latents"] / pipe.vae.config.scaling_factor)\n'
        + STOP_STEP,
        (
            f"{ENGINE_RUNS}::test_stop_ends_a_run_within_a_step_decoding_nothing_and_the_next_run_is_unchanged",
        ),
    ),
    Mutation(
        "Stop decodes a comparison's lanes",
        "pipeline/rendering.py",
        STOP_GROUP,
        "                lockstep.decode(lanes, plan.per_call, family)\n" + STOP_GROUP,
        (
            "tests/pipeline/test_lockstep.py::test_stop_mid_run_decodes_nothing_then_an_identical_rerun",
        ),
    ),
    Mutation(
        "ZeroGPU asks for the longest call every time",
        "ui/gpu.py",
        "return min(LONGEST_CALL, round(seconds))",
        "return LONGEST_CALL",
        (DURATION,),
    ),
    Mutation(
        "ZeroGPU's duration ignores the image's size",
        "ui/gpu.py",
        "pixels = plan.width * plan.height / 512**2",
        "pixels = 1.0",
        (DURATION,),
    ),
    Mutation(
        "infotext writes another seed",
        "pipeline/metadata.py",
        '"Seed": recipe.seed,',
        '"Seed": recipe.seed + 1,',
        (INFOTEXT, "tests/pipeline/test_metadata.py::test_infotext_round_trip"),
    ),
    Mutation(
        "infotext names CFG scale otherwise",
        "pipeline/metadata.py",
        '"CFG scale": recipe.true_cfg_scale if embedded else recipe.guidance_scale,',
        '"CFG": recipe.true_cfg_scale if embedded else recipe.guidance_scale,',
        (INFOTEXT,),
    ),
    Mutation(
        "a guidance refusal names another field",
        "pipeline/requests.py",
        'limits: Limits, field_name: str = "Guidance scale") -> float:',
        'limits: Limits, field_name: str = "Guidance") -> float:',
        (PLAN_REFUSALS, MARKED_INPUT),
    ),
    Mutation(
        "a seed-list refusal names another field",
        "pipeline/planner.py",
        'def _seeds(self, seeds: Any, field_name: str = "Seeds")',
        'def _seeds(self, seeds: Any, field_name: str = "Seed")',
        (PLAN_REFUSALS, MARKED_INPUT),
    ),
    Mutation(
        "a pinned-seed refusal marks no input of its own",
        "ui/validation.py",
        '"Pinned seed": "seed",',
        '"Pinned seed": "pinned_seed",',
        (MARKED_INPUT,),
    ),
)


def problems(root: Path, mutations: Iterable[Mutation] = MUTATIONS) -> list[str]:
    """What no longer fits the tree at `root`: a mutation's text not there exactly once, or a
    named test whose file or function is gone."""
    found = []
    for mutation in mutations:
        path = root / mutation.path
        count = path.read_text(encoding="utf-8").count(mutation.old) if path.is_file() else 0
        if count != 1:
            found.append(f"{mutation.name}: its text is in {mutation.path} {count} times, not once")
        for test in mutation.tests:
            file, _, function = test.partition("::")
            name = function.split("[")[0]
            source = root / file
            if not source.is_file() or f"def {name}(" not in source.read_text(encoding="utf-8"):
                found.append(f"{mutation.name}: no test {test}")
    return found


def pytest(clone: Path, tests: Iterable[str]) -> tuple[str, str, float]:
    """Run `tests` in the clone: (outcome, first failed test, seconds)."""
    started = time.monotonic()
    command = [
        str(clone / ".venv/bin/python"),
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    try:
        result = subprocess.run(
            [*command, *tests],
            cwd=clone,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env={**os.environ, **ENV},
        )
    except subprocess.TimeoutExpired:
        return "timed out", "", time.monotonic() - started
    seconds = time.monotonic() - started
    failed = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - |$)", result.stdout, re.MULTILINE)
    outcome = {0: "passed", 1: "failed"}.get(
        result.returncode, f"error (pytest {result.returncode})"
    )
    return outcome, failed.group(1) if failed else "", seconds


def clone_of(source: Path, folder: Path) -> Path:
    """A clone of `source`'s HEAD with its virtual environment."""
    clone = folder / "clone"
    subprocess.run(["git", "clone", "--quiet", str(source), str(clone)], check=True)
    (clone / ".venv").symlink_to((source / ".venv").resolve())
    return clone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutations", description=__doc__)
    parser.add_argument("names", nargs="*", help="only the mutations whose name has this text")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.names or any(n in m.name for n in args.names)]
    stale = problems(ROOT, chosen)
    if stale:
        print("\n".join(stale))
        return 1
    with tempfile.TemporaryDirectory(prefix="mutations-") as folder:
        clone = clone_of(ROOT, Path(folder))
        union = list(dict.fromkeys(test for m in chosen for test in m.tests))
        outcome, failed, seconds = pytest(clone, union)
        print(f"unmutated: {outcome} in {seconds:.0f} s ({len(union)} tests)", flush=True)
        if outcome != "passed":
            print(f"the named tests must pass before anything is broken: {failed}")
            return 2
        rows = []
        for mutation in chosen:
            path = clone / mutation.path
            text = path.read_text(encoding="utf-8")
            path.write_text(text.replace(mutation.old, mutation.new), encoding="utf-8")
            outcome, failed, seconds = pytest(clone, mutation.tests)
            path.write_text(text, encoding="utf-8")
            verdict = {"failed": "caught", "passed": "MISSED"}.get(outcome, outcome)
            rows.append((mutation.name, mutation.path, verdict, f"{seconds:.0f} s", failed))
            print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(("mutation", "file", "verdict", "time", "first failing test"), rows))
    return 0 if all(row[2] == "caught" for row in rows) else 1


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A Markdown table."""
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


if __name__ == "__main__":
    sys.exit(main())
