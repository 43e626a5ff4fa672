"""Matrix planning: any two settings as rows and columns, each cell resolved over the pin and
the settings, then the cells grouped into the plans that render them (pipeline/axes.py reads
the values; pipeline/plan.py says what a plan is)."""

from __future__ import annotations

from typing import Any, Protocol

from pipeline import axes
from pipeline.plan import Item, Matrix, Model, Plan, Sampler
from pipeline.requests import (
    Limits,
    MatrixRequest,
    Pin,
    RequestError,
    Settings,
    check_guidance,
    check_prompt,
    check_steps,
    check_strength,
    check_text,
    optional_number,
    optional_steps,
    pinned_seed,
    seed_variance_of,
    true_cfg_of,
)
from pipeline.schedulers import SchedulerEntry


class Planner(Protocol):
    """What matrix planning asks of the planner (pipeline/planner.py): its limits and the
    rules every run shares, so a cell is checked as a request is."""

    @property
    def model(self) -> Model: ...
    @property
    def limits(self) -> Limits: ...
    @property
    def micro_batch(self) -> int | None: ...
    def common(self, settings: Settings, tiles: int) -> dict[str, Any]: ...
    def checked_shift(self, shift: float) -> float: ...
    def steps_of(self, entry: SchedulerEntry) -> int: ...
    def default_guidance(self) -> float: ...
    def pin_variation(self, request: Pin) -> tuple[int | None, float, tuple[int, int] | None]: ...
    def pin_base(self, request: Pin) -> tuple[tuple[int, float], ...]: ...
    def sampler(self, entry: SchedulerEntry, steps: int, shift: float | None) -> Sampler: ...
    def entry(self, field_name: str, name: Any) -> SchedulerEntry: ...


# What the cells of one plan share (a matrix groups cells by them).
_SHARED = ("negative_prompt", "guidance_scale", "true_cfg_scale", "shift", "seed_variance")


def plan_matrix(planner: Planner, request: MatrixRequest) -> Matrix:
    """Every cell resolved (axis values over the pin and the settings), then grouped."""
    limits = planner.limits
    prompt = check_prompt("Prompt", request.prompt, limits)
    negative = check_text("Negative prompt", request.negative_prompt or "", limits)
    x_axis, y_axis = request.x_axis, request.y_axis
    if x_axis == y_axis and x_axis in axes.AXIS_NAMES:
        raise RequestError("Y axis", f"is {y_axis} as X is: choose two different settings")
    parsed = [
        axes.parse_axis(
            name,
            text,
            which,
            max_values=limits.max_tiles,
            prompt=prompt,
            negative_prompt=negative,
            scheduler_names=planner.model.registry.names,
        )
        for name, text, which in (
            (x_axis, request.x_values, "X"),
            (y_axis, request.y_values, "Y"),
        )
    ]
    x, y = parsed
    check_axis(planner, x.name, "X")
    check_axis(planner, y.name, "Y")
    count = len(x.values) * len(y.values)
    if count > limits.max_tiles:
        raise RequestError(
            "Y values",
            f"{len(x.values)} x {len(y.values)} is {count} cells, more than the "
            f"{limits.max_tiles} one run may render",
        )
    on = {x.name, y.name}
    seed = None if axes.SEED in on else pinned_seed(request.seed)
    variation_seed, strength, resize_from = planner.pin_variation(request)
    pin_base = planner.pin_base(request)
    if axes.VARIATION_STRENGTH in on and axes.VARIATION_SEED not in on and variation_seed is None:
        raise RequestError(
            "Y axis" if y.name == axes.VARIATION_STRENGTH else "X axis",
            "Variation strength needs a variation seed: pin a variation (Vary tab) or "
            "make the other axis Variation seed",
        )
    if axes.VARIATION_SEED in on and axes.VARIATION_STRENGTH not in on and not strength:
        raise RequestError(
            "Y axis" if y.name == axes.VARIATION_SEED else "X axis",
            "Variation seed needs a strength: pin a variation (Vary tab) or make the other "
            "axis Variation strength",
        )
    base = {
        "prompt": prompt,
        "negative_prompt": negative,
        "seed": seed,
        "suffix": None,
        "variation_seed": variation_seed,
        "strength": strength,
        "scheduler": planner.entry("Scheduler", request.scheduler).name
        if request.scheduler
        else planner.model.registry.default.name,
        "steps": optional_steps("Steps", request.steps, limits),
        "guidance_scale": request.guidance_scale,
        "true_cfg_scale": request.true_cfg_scale,
        "shift": request.shift,
        "seed_variance": request.seed_variance,
    }
    true_cfg = planner.model.family.true_cfg
    cells = [
        _cell(_cell(base, y, row, true_cfg), x, column, true_cfg)
        for row in range(len(y.values))
        for column in range(len(x.values))
    ]
    common = planner.common(request, count)
    lockstep = axes.SCHEDULER in on
    groups: dict[Any, list[int]] = {}
    for index, cell in enumerate(cells):
        entry = planner.entry("Scheduler", cell["scheduler"])
        cell["steps"] = check_steps("Steps", cell["steps"] or planner.steps_of(entry), limits)
        guidance = optional_number("Guidance scale", cell["guidance_scale"])
        cell["guidance_scale"] = check_guidance(
            planner.default_guidance() if guidance is None else guidance, limits
        )
        cell["true_cfg_scale"] = true_cfg_of(cell["true_cfg_scale"], limits)
        cell["seed_variance"] = seed_variance_of(cell["seed_variance"])
        own_shift = optional_number("Shift", cell["shift"])
        cell["shift"], cell["mu"] = (
            (planner.checked_shift(own_shift), None)
            if own_shift
            else (common["shift"], common["mu"])
        )
        check_prompt("Prompt", cell["prompt"], limits)
        check_text("Negative prompt", cell["negative_prompt"], limits)
        cell["item"] = Item(
            cell["prompt"],
            cell["seed"],
            cell["suffix"],
            cell["variation_seed"],
            cell["strength"],
            resize_from,
            pin_base,
        )
        shared = tuple(cell[key] for key in _SHARED)
        key = (*shared, cell["item"]) if lockstep else (*shared, cell["scheduler"], cell["steps"])
        groups.setdefault(key, []).append(index)
    plans = []
    where: dict[int, tuple[int, int]] = {}
    for members in groups.values():
        first = cells[members[0]]
        settings = {**common, **{key: first[key] for key in _SHARED}, "mu": first["mu"]}
        samplers = tuple(
            planner.sampler(
                planner.entry("Scheduler", cells[i]["scheduler"]),
                cells[i]["steps"],
                first["shift"],
            )
            for i in (members if lockstep else members[:1])
        )
        items = (first["item"],) if lockstep else tuple(cells[i]["item"] for i in members)
        per_call = len(samplers) if lockstep else min(planner.micro_batch or len(items), len(items))
        plans.append(
            Plan("matrix", items, samplers, per_call=per_call, lockstep=lockstep, **settings)
        )
        for place, index in enumerate(members):
            where[index] = (len(plans) - 1, place)
    return Matrix("matrix", x, y, tuple(plans), tuple(where[i] for i in range(count)))


def check_axis(planner: Planner, name: str, which: str) -> None:
    """An axis the loaded model has no setting for is refused, naming the axis."""
    family = planner.model.family
    if name == axes.SHIFT and not family.flow:
        raise RequestError(f"{which} axis", "Shift is a flow-matching model's (Flux, SD3) setting")
    if name == axes.DISTILLED_CFG and family.name != "flux":
        raise RequestError(f"{which} axis", "Distilled CFG is Flux.1's guidance embedding")


def _cell(
    cell: dict[str, Any], axis: axes.AxisValues, index: int, true_cfg: bool
) -> dict[str, Any]:
    """`cell` with axis `axis` at its value `index`; `true_cfg`: the model's CFG scale is
    Flux's true CFG (its guidance scale is the embedded "Distilled CFG")."""
    value = axis.values[index]
    cell = dict(cell)
    if axis.name == axes.SEED:
        cell["seed"] = value
    elif axis.name == axes.VARIATION_SEED:
        cell["variation_seed"] = value
    elif axis.name == axes.VARIATION_STRENGTH:
        cell["strength"] = check_strength("Variation strength", value)
    elif axis.name == axes.SCHEDULER:
        cell["scheduler"] = value
    elif axis.name == axes.STEPS:
        cell["steps"] = value
    elif axis.name == axes.CFG_SCALE:
        cell["true_cfg_scale" if true_cfg else "guidance_scale"] = value
    elif axis.name == axes.DISTILLED_CFG:
        cell["guidance_scale"] = value
    elif axis.name == axes.SHIFT:
        cell["shift"] = value
    elif axis.name == axes.SEED_VARIANCE:
        cell["seed_variance"] = value
    elif axis.name == axes.PROMPT_SR:
        cell["prompt"], cell["negative_prompt"] = axes.replace_prompt(
            cell["prompt"], cell["negative_prompt"], str(axis.values[0]), str(value)
        )
    elif axis.name == axes.SUFFIX:
        cell["suffix"] = value
        cell["prompt"] = cell["prompt"] + value
    return cell
