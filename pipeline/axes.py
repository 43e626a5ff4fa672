"""The Matrix's axes: which settings can be rows and columns, and their values read from text.

Values are read the way AUTOMATIC1111's X/Y/Z plot reads them (`scripts/xyz_grid.py`), so a
line pasted from there means the same here:

- a list separated by commas or newlines, read as CSV (a value with a comma can be quoted),
  each value stripped; Suffix alone is one suffix per line, as on the Refine tab, because a
  suffix usually starts with a comma;
- whole numbers: `1-10` (both ends), `1-10 (+2)` (Python's range to the end plus one, so
  1, 3, 5, 7, 9), `1-10 [4]` (4 evenly spaced, truncated: 1, 4, 7, 10);
- decimals: `0-1 [5]` (0, 0.25, 0.5, 0.75, 1), `0-1 (+0.3)` (numpy's arange to the end plus one
  step, which may pass the end: 0, 0.3, 0.6, 0.9, 1.2), `0-1` (a step of 1: 0 and 1). Values
  are rounded to 8 decimals, as A1111 rounds its labels (the float32 a model sees is the same);
- Seed and Variation seed: -1 is a random seed, as in A1111;
- Prompt S/R: the first value is the text each value replaces, in the prompt and the
  negative prompt; it must occur in one of them.

Where A1111 would crash or silently drop a value (a range that yields nothing, a zero step),
this refuses it and says why. Errors are RequestErrors naming the field to fix.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.requests import RequestError
from pipeline.seeds import MAX_SEED, random_seeds

Value = int | float | str

SEED = "Seed"
VARIATION_SEED = "Variation seed"
VARIATION_STRENGTH = "Variation strength"
SCHEDULER = "Scheduler"
STEPS = "Steps"
CFG_SCALE = "CFG scale"
DISTILLED_CFG = "Distilled CFG"  # Flux.1 [dev]'s embedded guidance, as Forge names it
SHIFT = "Shift"  # a flow-matching schedule's shift (Flux, SD3)
SEED_VARIANCE = "Seed variance"  # noise on the prompt embedding from the seed (0: none)
PROMPT_SR = "Prompt S/R"
SUFFIX = "Suffix"
AXIS_NAMES = (
    SEED,
    VARIATION_SEED,
    VARIATION_STRENGTH,
    SCHEDULER,
    STEPS,
    CFG_SCALE,
    PROMPT_SR,
    SUFFIX,
    DISTILLED_CFG,
    SHIFT,
    SEED_VARIANCE,
)
_INT_AXES = {SEED, VARIATION_SEED, STEPS}
_FLOAT_AXES = {VARIATION_STRENGTH, CFG_SCALE, DISTILLED_CFG, SHIFT, SEED_VARIANCE}
_SEED_AXES = {SEED, VARIATION_SEED}
DECIMALS = 8

_INT = r"[+-]?\s*\d+"
_FLOAT = r"[+-]?\s*\d+(?:\.\d*)?"
_INT_STEP = re.compile(rf"({_INT})\s*-\s*({_INT})(?:\s*\(([+-]\d+)\s*\))?")
_INT_COUNT = re.compile(rf"({_INT})\s*-\s*({_INT})\s*\[(\d+)\s*\]")
_FLOAT_STEP = re.compile(rf"({_FLOAT})\s*-\s*({_FLOAT})(?:\s*\(([+-]\d+(?:\.\d*)?)\s*\))?")
_FLOAT_COUNT = re.compile(rf"({_FLOAT})\s*-\s*({_FLOAT})\s*\[(\d+)\s*\]")


@dataclass(frozen=True)
class AxisValues:
    """One axis of the matrix: its setting, its typed values, and each value's header label."""

    name: str
    values: tuple[Value, ...]
    labels: tuple[str, ...]


def parse_axis(
    name: str,
    text: str,
    which: str,
    *,
    max_values: int,
    prompt: str = "",
    negative_prompt: str = "",
    scheduler_names: Sequence[str] = (),
) -> AxisValues:
    """The values of axis `name` typed in `text`; `which` ("X" or "Y") names the fields.

    `prompt` and `negative_prompt` are for Prompt S/R, `scheduler_names` (the offered display
    names) for Scheduler. More than `max_values` values is refused before any is made.
    """
    field = f"{which} values"
    if name not in AXIS_NAMES:
        raise RequestError(
            f"{which} axis", f"{name!r} is not an axis: choose {', '.join(AXIS_NAMES)}"
        )
    if not isinstance(text, str):
        raise RequestError(field, f"the values must be text, got {text!r}")
    items = _lines(text) if name == SUFFIX else _csv(text)
    if not items:
        raise RequestError(field, f"no values for {name}")
    values: list[Value] = []
    for item in items:
        values += _expand(name, item, field, max_values - len(values))
    if name in _SEED_AXES:
        values = [_seed(value, field) for value in values]
    elif name == SCHEDULER:
        values = [_scheduler(value, scheduler_names, field) for value in values]
    elif name == PROMPT_SR:
        _check_search(str(values[0]), prompt, negative_prompt, field)
    return AxisValues(name, tuple(values), tuple(label(name, value) for value in values))


def label(name: str, value: Value) -> str:
    """A row or column header: `Steps: 20` as A1111 writes it; the text alone for words."""
    if name in (SCHEDULER, PROMPT_SR, SUFFIX):
        return str(value)
    return f"{name}: {value}"


def replace_prompt(prompt: str, negative_prompt: str, search: str, value: str) -> tuple[str, str]:
    """Prompt S/R's cell: `search` (the axis's first value) replaced by `value` in both prompts."""
    return prompt.replace(search, value), negative_prompt.replace(search, value)


def _csv(text: str) -> list[str]:
    """A1111's `csv_string_to_list_strip`: CSV over all lines, each value stripped.

    Also a quote after a comma's space opens a quoted value (`a, "b, c"`), where A1111's reader
    would split it into `"b` and `c"`.
    """
    rows = csv.reader(io.StringIO(text.strip()), skipinitialspace=True)
    return [item.strip() for row in rows for item in row]


def _lines(text: str) -> list[str]:
    """One suffix per line, blank lines skipped, each kept as typed (its leading comma too)."""
    return [line for line in text.splitlines() if line.strip()]


def _expand(name: str, item: str, field: str, room: int) -> list[Value]:
    if name in _INT_AXES:
        return _expand_ints(item, field, room)
    if name in _FLOAT_AXES:
        return _expand_floats(item, field, room)
    _check_room(1, room, field)
    return [item]


def _expand_ints(item: str, field: str, room: int) -> list[Value]:
    step_match = _INT_STEP.fullmatch(item)
    count_match = _INT_COUNT.fullmatch(item)
    if step_match:
        start, end = _int(step_match[1], field), _int(step_match[2], field)
        step = _int(step_match[3], field) if step_match[3] else 1
        if step == 0:
            raise RequestError(field, f"{item!r} has a step of 0")
        # A1111's end + 1, whichever way the step runs; cut to size before len() can overflow.
        span = range(start, end + 1, step)[: room + 1]
        _check_room(_nonempty(len(span), item, field), room, field)
        return list(span)
    if count_match:
        start, end, count = (_int(group, field) for group in count_match.groups())
        _check_room(_nonempty(count, item, field), room, field)
        return [int(x) for x in np.linspace(start, end, count).tolist()]
    _check_room(1, room, field)
    try:
        return [int(item)]
    except ValueError:
        raise RequestError(field, f"cannot read {item!r}: use whole numbers or ranges") from None


def _expand_floats(item: str, field: str, room: int) -> list[Value]:
    step_match = _FLOAT_STEP.fullmatch(item)
    count_match = _FLOAT_COUNT.fullmatch(item)
    if step_match:
        start, end = _float(step_match[1]), _float(step_match[2])
        step = _float(step_match[3]) if step_match[3] else 1.0
        if step == 0:
            raise RequestError(field, f"{item!r} has a step of 0")
        count = max(math.ceil((end + step - start) / step), 0)  # numpy's arange length
        _check_room(_nonempty(count, item, field), room, field)
        values = np.arange(start, end + step, step).tolist()
    elif count_match:
        start, end = _float(count_match[1]), _float(count_match[2])
        count = int(count_match[3])
        _check_room(_nonempty(count, item, field), room, field)
        values = np.linspace(start, end, count).tolist()
    else:
        _check_room(1, room, field)
        try:
            values = [float(item)]
        except ValueError:
            raise RequestError(field, f"cannot read {item!r}: use numbers or ranges") from None
    if not all(math.isfinite(value) for value in values):
        raise RequestError(field, f"{item!r} is not a finite number")
    return [round(value, DECIMALS) for value in values]


def _int(digits: str, field: str) -> int:
    """A whole number no wider than a seed: a wider one is refused, never handed to numpy."""
    digits = re.sub(r"\s", "", digits)
    if len(digits.lstrip("+-0")) > len(str(MAX_SEED)):
        raise RequestError(field, f"{digits[:24]}... is out of range")
    return int(digits)


def _float(digits: str) -> float:
    return float(re.sub(r"\s", "", digits))


def _nonempty(count: int, item: str, field: str) -> int:
    if count <= 0:
        raise RequestError(field, f"{item!r} gives no values: check its ends and step")
    return count


def _check_room(count: int, room: int, field: str) -> None:
    if count > room:
        raise RequestError(field, "more values than one matrix may have on an axis")


def _seed(value: Value, field: str) -> int:
    seed = int(value)
    if seed == -1:
        return random_seeds(1)[0]
    if not 0 <= seed <= MAX_SEED:
        raise RequestError(field, f"seed {seed} is outside 0..{MAX_SEED} (-1 is a random seed)")
    return seed


def _scheduler(value: Value, names: Sequence[str], field: str) -> str:
    """The offered name, matched without regard to case as A1111 matches sampler names."""
    by_key: dict[str, str] = {name.casefold(): name for name in names}
    match = by_key.get(str(value).casefold())
    if match is None:
        raise RequestError(field, f"unknown scheduler {value!r}: choose from {', '.join(names)}")
    return match


def _check_search(search: str, prompt: str, negative_prompt: str, field: str) -> None:
    if not search:
        raise RequestError(field, "Prompt S/R's first value is the text to replace: it is empty")
    if search not in prompt and search not in negative_prompt:
        raise RequestError(
            field, f"Prompt S/R did not find {search!r} in the prompt or negative prompt"
        )
