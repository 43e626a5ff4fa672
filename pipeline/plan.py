"""Request -> plan: the one place where the app's input rules and defaults live.

A plan is a render with nothing left open: every image's prompt and seed, each scheduler's
exact config and step count, size, guidance, the family's extras (SDXL's size conditioning),
the shape of the calls. The UI's checks before a job queues, the API, the engine and replay
all make their plan here, so a refusal reads the same everywhere and names its field
(`Seeds: ...`, `Steps: ...`), and nothing downstream checks or defaults again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline import axes
from pipeline.families import Family
from pipeline.recipe import Recipe
from pipeline.requests import (
    DEFAULT_STRENGTH,
    CompareRequest,
    GridRequest,
    Limits,
    MatrixRequest,
    Pin,
    RefineRequest,
    RequestError,
    Settings,
    TravelRequest,
    VaryRequest,
)
from pipeline.schedulers import (
    SchedulerEntry,
    SchedulerError,
    SchedulerRegistry,
    recipe_scheduler,
)
from pipeline.seeds import MAX_SEED, SeedError, check_seed, parse_seed, parse_seeds
from pipeline.variation import travel_strengths

Request = GridRequest | RefineRequest | CompareRequest | VaryRequest | TravelRequest | MatrixRequest
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_STEPS_LINE = re.compile(r"^(?P<name>.+?)\s*:\s*(?P<steps>\S+)$")


@dataclass(frozen=True)
class Defaults:
    """A model's own defaults where they are not its family's and its schedulers': a few-step
    model's (pipeline/fewstep.py), or what `--default-*` says. None: the usual one."""

    scheduler: str | None = None  # display name; None: the model's own scheduler
    steps: int | None = None  # every scheduler's; None: each scheduler's own
    guidance_scale: float | None = None  # None: the family's
    compare: tuple[str, ...] | None = None  # Compare's first choice; None: the family's


class Model(Protocol):
    """What a plan needs to know of the loaded model."""

    @property
    def family(self) -> Family: ...
    @property
    def registry(self) -> SchedulerRegistry: ...
    @property
    def native_size(self) -> int: ...
    @property
    def defaults(self) -> Defaults: ...


@dataclass(frozen=True)
class Item:
    """One image's text and start noise (a refinement's prompt already carries its suffix).

    The noise is the seed's, moved towards `variation_seed`'s by `strength` and made at
    `resize_from` (width, height) as A1111 does (pipeline/variation.py); the step noise of an
    ancestral scheduler is always the seed's.
    """

    prompt: str
    seed: int
    suffix: str | None = None
    variation_seed: int | None = None
    strength: float = 0.0
    resize_from: tuple[int, int] | None = None


@dataclass(frozen=True)
class Sampler:
    """One scheduler as it will run: display name, exact config, step count."""

    name: str
    config: dict[str, Any]
    steps: int


@dataclass(frozen=True)
class Plan:
    """A render with every default filled in and every check done.

    Batched (`lockstep` False): every item under `samplers[0]`, `per_call` images per
    diffusers call. Lockstep (a comparison): `items[0]` under every sampler, `per_call`
    schedulers per UNet call.
    """

    kind: str
    items: tuple[Item, ...]
    samplers: tuple[Sampler, ...]
    negative_prompt: str
    guidance_scale: float
    width: int
    height: int
    per_call: int
    generator_device: str
    lockstep: bool = False
    extras: dict[str, Any] = field(default_factory=dict)  # the family's: SDXL size conditioning

    @property
    def tiles(self) -> int:
        return len(self.samplers) if self.lockstep else len(self.items)

    @property
    def seeds(self) -> list[int]:
        """Each tile's seed, known before the render starts (a preview's pin)."""
        return [self.items[0 if self.lockstep else index].seed for index in range(self.tiles)]

    @property
    def image_steps(self) -> int:
        """The run's work: every tile's steps (what ZeroGPU's duration is sized from)."""
        if self.lockstep:
            return sum(sampler.steps for sampler in self.samplers)
        return len(self.items) * self.samplers[0].steps


@dataclass(frozen=True)
class Matrix:
    """A matrix's cells as the plans that render them, and where each cell's tile comes from.

    Cells that differ only in their image (seed, variation, prompt) share a call; with a
    Scheduler axis, a cell's schedulers run in lockstep, as on Compare, so a scheduler cell
    is the Compare tile. `cells[i]` is (plan, tile of that plan) of cell i, row-major: y rows,
    x columns.
    """

    kind: str
    x: axes.AxisValues
    y: axes.AxisValues
    plans: tuple[Plan, ...]
    cells: tuple[tuple[int, int], ...]

    @property
    def tiles(self) -> int:
        return len(self.cells)

    @property
    def seeds(self) -> list[int]:
        return [self.plans[which].seeds[place] for which, place in self.cells]

    @property
    def image_steps(self) -> int:
        return sum(plan.image_steps for plan in self.plans)

    @property
    def width(self) -> int:
        return self.plans[0].width

    @property
    def height(self) -> int:
        return self.plans[0].height

    def labels(self, index: int) -> tuple[str, str]:
        """Cell `index`'s x and y headers."""
        row, column = divmod(index, len(self.x.values))
        return self.x.labels[column], self.y.labels[row]


@dataclass(frozen=True)
class Planner:
    """Plans for one loaded model under one set of limits and engine settings."""

    model: Model
    limits: Limits = field(default_factory=Limits)
    micro_batch: int | None = None  # images per call; None: a whole run in one call
    generator_device: str = "cpu"

    def plan(self, request: Request) -> Plan | Matrix:
        """The plan of a run (a matrix's plans), or a RequestError naming the field to fix."""
        if isinstance(request, GridRequest):
            return self._grid(request)
        if isinstance(request, RefineRequest):
            return self._refine(request)
        if isinstance(request, CompareRequest):
            return self._compare(request)
        if isinstance(request, VaryRequest):
            return self._vary(request)
        if isinstance(request, TravelRequest):
            return self._travel(request)
        if isinstance(request, MatrixRequest):
            return self._matrix(request)
        raise TypeError(f"not a request: {request!r}")

    def defaults(self) -> dict[str, Any]:
        """What an unset setting becomes: the model's scheduler, steps, guidance and size, and
        the schedulers Compare starts with (those offered). A default that does not fit the
        limits or the model is a RequestError naming the setting."""
        entry = self._default_entry()
        native = self.model.native_size
        offered = self.model.registry.names
        compare = self.model.defaults.compare or self.model.family.compare
        return {
            "scheduler": entry.name,
            "steps": _steps("Default steps", self._steps_of(entry), self.limits),
            "guidance_scale": _guidance(self._default_guidance(), self.limits),
            "width": native,
            "height": native,
            "compare": [name for name in compare if name in offered],
        }

    def scheduler_steps(self, names: Sequence[str]) -> dict[str, int]:
        """Each chosen scheduler's step count (Compare's table), by display name."""
        entries = [self._entry("Schedulers", name) for name in names]
        return {entry.name: self._steps_of(entry) for entry in entries}

    def replay(self, recipe: Recipe) -> Plan:
        """The call that rendered `recipe`, again: its recorded schedulers and configs exactly,
        a comparison's whole lockstep group, else the tile in every place of a call of its
        shape. A recipe may come from a dropped PNG: it is held to a request's limits."""
        limits = self.limits
        prompt = _prompt("Prompt", recipe.prompt, limits)
        negative = _text("Negative prompt", recipe.negative_prompt, limits)
        seed = _seed_value("Seed", recipe.seed)
        width, height = _side("Width", recipe.width, limits), _side("Height", recipe.height, limits)
        guidance = _guidance(recipe.guidance_scale, limits)
        batch = recipe.batch_size
        if not _is_whole(batch) or not 1 <= batch <= limits.max_tiles:
            raise RequestError(
                "Batch size", f"must be a whole number 1..{limits.max_tiles}, got {batch!r}"
            )
        index = recipe.batch_index
        if not _is_whole(index) or not 0 <= index < batch:
            raise RequestError(
                "Batch index", f"must be a whole number 0..{batch - 1}, got {index!r}"
            )
        _pixels(batch, width, height, limits)
        variation = _variation(recipe.variation_seed, recipe.variation_strength, "Variation")
        resize_from = _resize_from(recipe.resize_from, limits)
        item = Item(prompt, seed, recipe.suffix, *variation, resize_from)
        registry = self.model.registry
        steps = _steps("Steps", recipe.steps, limits)
        own = _recipe_sampler(
            registry, "Scheduler config", recipe.sampler, recipe.scheduler_config, steps
        )
        common = {
            "kind": recipe.kind,
            "negative_prompt": negative,
            "guidance_scale": guidance,
            "width": width,
            "height": height,
            "generator_device": recipe.generator_device,
            "extras": self.model.family.extras(width, height, _conditioning(recipe, limits)),
        }
        if recipe.lockstep is None:
            return Plan(items=(item,) * batch, samplers=(own,), per_call=batch, **common)
        samplers, per_call = _group(recipe, own, limits, registry)
        return Plan(items=(item,), samplers=samplers, per_call=per_call, lockstep=True, **common)

    def _grid(self, request: GridRequest) -> Plan:
        prompt = _prompt("Prompt", request.prompt, self.limits)
        seeds = self._seeds(request.seeds)
        items = tuple(Item(prompt, seed) for seed in seeds)
        return self._batched("grid", items, request)

    def _refine(self, request: RefineRequest) -> Plan:
        prompt = _prompt("Prompt", request.prompt, self.limits)
        seed = pinned_seed(request.seed)
        variation = self._pin_variation(request)
        suffixes = self._suffixes(request.suffixes)
        for suffix in suffixes:
            _prompt("Prompt", prompt + suffix, self.limits)
        items = tuple(Item(prompt + suffix, seed, suffix, *variation) for suffix in suffixes)
        return self._batched("refine", items, request)

    def _vary(self, request: VaryRequest) -> Plan:
        prompt = _prompt("Prompt", request.prompt, self.limits)
        seed = pinned_seed(request.seed)
        strength = _optional_number("Strength", request.strength)
        strength = _strength("Strength", DEFAULT_STRENGTH if strength is None else strength)
        resize_from = _resize_from(request.resize_from, self.limits)
        items = tuple(
            Item(prompt, seed, variation_seed=other, strength=strength, resize_from=resize_from)
            for other in self._seeds(request.variation_seeds, "Variation seeds")
        )
        return self._batched("vary", items, request)

    def _travel(self, request: TravelRequest) -> Plan:
        """Frame 0 is the pinned seed's own noise, the last frame `to_seed`'s."""
        prompt = _prompt("Prompt", request.prompt, self.limits)
        seed = pinned_seed(request.seed)
        to_seed = _one_seed("To seed", request.to_seed)
        frames = _optional_whole("Frames", request.frames)
        if frames is None or not 2 <= frames <= self.limits.max_tiles:
            raise RequestError(
                "Frames", f"must be a whole number 2..{self.limits.max_tiles}, got {frames!r}"
            )
        items = tuple(
            Item(prompt, seed, variation_seed=to_seed, strength=strength)
            for strength in travel_strengths(frames)
        )
        return self._batched("travel", items, request)

    def _matrix(self, request: MatrixRequest) -> Matrix:
        """Every cell resolved (axis values over the pin and the settings), then grouped."""
        limits = self.limits
        prompt = _prompt("Prompt", request.prompt, limits)
        negative = _text("Negative prompt", request.negative_prompt or "", limits)
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
                scheduler_names=self.model.registry.names,
            )
            for name, text, which in (
                (x_axis, request.x_values, "X"),
                (y_axis, request.y_values, "Y"),
            )
        ]
        x, y = parsed
        count = len(x.values) * len(y.values)
        if count > limits.max_tiles:
            raise RequestError(
                "Y values",
                f"{len(x.values)} x {len(y.values)} is {count} cells, more than the "
                f"{limits.max_tiles} one run may render",
            )
        on = {x.name, y.name}
        seed = None if axes.SEED in on else pinned_seed(request.seed)
        variation_seed, strength, resize_from = self._pin_variation(request)
        if (
            axes.VARIATION_STRENGTH in on
            and axes.VARIATION_SEED not in on
            and variation_seed is None
        ):
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
            "scheduler": self._entry("Scheduler", request.scheduler).name
            if request.scheduler
            else self.model.registry.default.name,
            "steps": _optional_steps("Steps", request.steps, limits),
            "guidance_scale": request.guidance_scale,
        }
        cells = [
            _cell(_cell(base, y, row), x, column)
            for row in range(len(y.values))
            for column in range(len(x.values))
        ]
        common = self._common(request, count)
        lockstep = axes.SCHEDULER in on
        groups: dict[Any, list[int]] = {}
        for index, cell in enumerate(cells):
            cell["steps"] = (
                cell["steps"] or self._entry("Scheduler", cell["scheduler"]).default_steps
            )
            cell["steps"] = _steps("Steps", cell["steps"], limits)
            guidance = _optional_number("Guidance scale", cell["guidance_scale"])
            cell["guidance_scale"] = _guidance(
                self.model.family.default_guidance if guidance is None else guidance, limits
            )
            _prompt("Prompt", cell["prompt"], limits)
            _text("Negative prompt", cell["negative_prompt"], limits)
            cell["item"] = Item(
                cell["prompt"],
                cell["seed"],
                cell["suffix"],
                cell["variation_seed"],
                cell["strength"],
                resize_from,
            )
            shared = (cell["negative_prompt"], cell["guidance_scale"])
            key = (
                (*shared, cell["item"]) if lockstep else (*shared, cell["scheduler"], cell["steps"])
            )
            groups.setdefault(key, []).append(index)
        plans = []
        where: dict[int, tuple[int, int]] = {}
        for members in groups.values():
            first = cells[members[0]]
            settings = {
                **common,
                "negative_prompt": first["negative_prompt"],
                "guidance_scale": first["guidance_scale"],
            }
            samplers = tuple(
                self._sampler(self._entry("Scheduler", cells[i]["scheduler"]), cells[i]["steps"])
                for i in (members if lockstep else members[:1])
            )
            items = (first["item"],) if lockstep else tuple(cells[i]["item"] for i in members)
            per_call = (
                len(samplers) if lockstep else min(self.micro_batch or len(items), len(items))
            )
            plans.append(
                Plan("matrix", items, samplers, per_call=per_call, lockstep=lockstep, **settings)
            )
            for place, index in enumerate(members):
                where[index] = (len(plans) - 1, place)
        return Matrix("matrix", x, y, tuple(plans), tuple(where[i] for i in range(count)))

    def _compare(self, request: CompareRequest) -> Plan:
        """Also refuses a scheduler chosen twice: it would render the same image twice."""
        prompt = _prompt("Prompt", request.prompt, self.limits)
        seed = pinned_seed(request.seed)
        variation = self._pin_variation(request)
        names = [request.schedulers] if isinstance(request.schedulers, str) else request.schedulers
        names = self._list("Schedulers", names, "a list of scheduler names")
        entries = [self._entry("Schedulers", name) for name in names]
        chosen: set[str] = set()
        for name, entry in zip(names, entries, strict=True):
            if entry.name in chosen:
                raise RequestError("Schedulers", f"{name} is chosen twice: choose each one once")
            chosen.add(entry.name)
        own = {
            self._entry("Steps per scheduler", name).name: steps
            for name, steps in _scheduler_steps(request.scheduler_steps, self.limits)
        }
        every = _optional_steps("Steps", request.steps, self.limits)
        samplers = tuple(
            self._sampler(entry, every or own.get(entry.name) or self._steps_of(entry))
            for entry in entries
        )
        common = self._common(request, len(samplers))
        return Plan(
            kind="compare",
            items=(Item(prompt, seed, None, *variation),),
            samplers=samplers,
            per_call=len(samplers),
            lockstep=True,
            **common,
        )

    def _batched(self, kind: str, items: tuple[Item, ...], settings: Settings) -> Plan:
        limits = self.limits
        entry = (
            self._entry("Scheduler", settings.scheduler)
            if settings.scheduler
            else self._default_entry()
        )
        steps = _optional_steps("Steps", settings.steps, limits) or self._steps_of(entry)
        common = self._common(settings, len(items))
        return Plan(
            kind=kind,
            items=items,
            samplers=(self._sampler(entry, steps),),
            per_call=min(self.micro_batch or len(items), len(items)),
            **common,
        )

    def _common(self, settings: Settings, tiles: int) -> dict[str, Any]:
        """What every run shares: negative prompt, guidance, size (checked against the pixels
        of `tiles` images), the family's extras."""
        limits = self.limits
        native = self.model.native_size
        negative = _text("Negative prompt", settings.negative_prompt or "", limits)
        guidance = _optional_number("Guidance scale", settings.guidance_scale)
        guidance = self._default_guidance() if guidance is None else guidance
        width = _optional_whole("Width", settings.width)
        height = _optional_whole("Height", settings.height)
        width = native if width is None else _side("Width", width, limits)
        height = native if height is None else _side("Height", height, limits)
        _pixels(tiles, width, height, limits)
        return {
            "negative_prompt": negative,
            "guidance_scale": _guidance(guidance, limits),
            "width": width,
            "height": height,
            "generator_device": self.generator_device,
            "extras": self.model.family.extras(width, height, None),
        }

    def _default_entry(self) -> SchedulerEntry:
        name = self.model.defaults.scheduler
        return self._entry("Default scheduler", name) if name else self.model.registry.default

    def _steps_of(self, entry: SchedulerEntry) -> int:
        """A scheduler's steps when none are asked for: the model's (a few-step model's are
        every scheduler's), else the scheduler's own sensible count."""
        return self.model.defaults.steps or entry.default_steps

    def _default_guidance(self) -> float:
        guidance = self.model.defaults.guidance_scale
        return self.model.family.default_guidance if guidance is None else guidance

    def _pin_variation(self, request: Pin) -> tuple[int | None, float, tuple[int, int] | None]:
        """The pin's variation seed and strength (none at strength 0) and its resize."""
        variation = _variation(
            request.variation_seed, request.variation_strength, "Pinned variation"
        )
        return *variation, _resize_from(request.resize_from, self.limits)

    def _sampler(self, entry: SchedulerEntry, steps: int) -> Sampler:
        return Sampler(entry.name, self.model.registry.config(entry.name), steps)

    def _entry(self, field_name: str, name: Any) -> SchedulerEntry:
        """The registry's entry for a name, or a refusal that names the field and the choices."""
        if not isinstance(name, str):
            raise RequestError(field_name, f"must be a scheduler name, got {name!r}")
        try:
            return self.model.registry.resolve(name)
        except SchedulerError as error:
            raise RequestError(field_name, str(error)) from None

    def _seeds(self, seeds: Any, field_name: str = "Seeds") -> list[int]:
        """A seed list as typed ("0-3", "random 8"), or seeds as numbers."""
        if isinstance(seeds, str) or seeds is None:
            try:
                return parse_seeds(seeds, self.limits.max_tiles)
            except SeedError as error:
                raise RequestError(field_name, str(error)) from None
        seeds = self._list(field_name, seeds, "a seed list like 0-3 or 5, 17, 3")
        return [_seed_value(field_name, seed) for seed in seeds]

    def _suffixes(self, suffixes: Any) -> list[str]:
        """One suffix per line (blank lines skipped, each kept as typed), or a list of texts."""
        if isinstance(suffixes, str) or suffixes is None:
            _text("Suffixes", suffixes or "", self.limits)
            lines = [line for line in (suffixes or "").splitlines() if line.strip()]
            if not lines:
                raise RequestError("Suffixes", "write at least one suffix, one per line")
            suffixes = lines
        for suffix in self._list("Suffixes", suffixes, "text, one suffix per line"):
            if not isinstance(suffix, str):
                raise RequestError("Suffixes", f"each suffix must be text, got {suffix!r}")
        return list(suffixes)

    def _list(self, field_name: str, values: Any, what: str) -> list[Any]:
        """A list (not a string, whose letters would each become a tile) of 1..max_tiles."""
        limits = self.limits
        if not isinstance(values, tuple | list):
            raise RequestError(field_name, f"must be {what}, got {values!r}")
        if not values:
            raise RequestError(field_name, f"is empty: give 1 to {limits.max_tiles}")
        if len(values) > limits.max_tiles:
            raise RequestError(
                field_name,
                f"{len(values)} tiles is more than the {limits.max_tiles} one run may render",
            )
        return list(values)


def pinned_seed(value: Any) -> int:
    """The pinned-seed field as a seed: exactly one whole number."""
    return _one_seed("Pinned seed", value, "no seed pinned yet: click a tile or type a seed")


def _one_seed(field_name: str, value: Any, missing: str = "type a seed") -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # API clients may send a number
    if isinstance(value, int) and not isinstance(value, bool):
        return _seed_value(field_name, value)
    text = str(value if value is not None else "").strip()
    if not text:
        raise RequestError(field_name, missing)
    if not (text.isascii() and text.isdigit()):
        raise RequestError(field_name, f"must be one whole number 0..{MAX_SEED}, got {text!r}")
    try:
        return parse_seed(text)
    except SeedError as error:
        raise RequestError(field_name, str(error)) from None


def _variation(seed: Any, strength: Any, field_name: str) -> tuple[int | None, float]:
    number = _optional_number(f"{field_name} strength", strength)
    number = _strength(f"{field_name} strength", number or 0.0)
    if seed is None or seed == "":
        if number:
            raise RequestError(f"{field_name} seed", f"a strength of {number:g} needs a seed")
        return None, 0.0
    return _one_seed(f"{field_name} seed", seed), number


def _strength(field_name: str, strength: float) -> float:
    if not 0 <= strength <= 1:  # NaN fails every comparison
        raise RequestError(field_name, f"must be 0..1, got {strength}")
    return float(strength)


def _resize_from(value: Any, limits: Limits) -> tuple[int, int] | None:
    """ "Resize seed from" as A1111 takes it: W x H in pixels; none when a side is 0."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise RequestError(
                "Resize seed from", f"write width x height, like 512x768, got {value!r}"
            )
        value = (int(match[1]), int(match[2]))
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise RequestError("Resize seed from", f"must be width x height, got {value!r}")
    width, height = value
    if not (_is_whole(width) and _is_whole(height)):
        raise RequestError("Resize seed from", f"sides must be whole numbers, got {value!r}")
    if min(width, height) <= 0:
        return None
    return _side("Resize seed from", width, limits), _side("Resize seed from", height, limits)


def _cell(cell: dict[str, Any], axis: axes.AxisValues, index: int) -> dict[str, Any]:
    """`cell` with axis `axis` at its value `index`."""
    value = axis.values[index]
    cell = dict(cell)
    if axis.name == axes.SEED:
        cell["seed"] = value
    elif axis.name == axes.VARIATION_SEED:
        cell["variation_seed"] = value
    elif axis.name == axes.VARIATION_STRENGTH:
        cell["strength"] = _strength("Variation strength", value)
    elif axis.name == axes.SCHEDULER:
        cell["scheduler"] = value
    elif axis.name == axes.STEPS:
        cell["steps"] = value
    elif axis.name == axes.CFG_SCALE:
        cell["guidance_scale"] = value
    elif axis.name == axes.PROMPT_SR:
        cell["prompt"], cell["negative_prompt"] = axes.replace_prompt(
            cell["prompt"], cell["negative_prompt"], str(axis.values[0]), str(value)
        )
    elif axis.name == axes.SUFFIX:
        cell["suffix"] = value
        cell["prompt"] = cell["prompt"] + value
    return cell


def parse_steps_table(text: Any) -> dict[str, str]:
    """Compare's "Name: steps" lines as typed, by name, for keeping what a user wrote."""
    table = {}
    for line in (text if isinstance(text, str) else "").splitlines():
        match = _STEPS_LINE.match(line.strip())
        if match:
            table[match["name"]] = match["steps"]
    return table


def _scheduler_steps(value: Any, limits: Limits) -> list[tuple[str, int]]:
    """ "Scheduler: steps" lines (blank lines skipped), or (name, steps) pairs."""
    if isinstance(value, str) or value is None:
        pairs = []
        for line in (value or "").splitlines():
            if not line.strip():
                continue
            match = _STEPS_LINE.match(line.strip())
            if not match:
                raise RequestError("Steps per scheduler", f"write 'Name: steps', got {line!r}")
            pairs.append((match["name"], match["steps"]))
    elif isinstance(value, tuple | list):
        pairs = list(value)
    else:
        raise RequestError(
            "Steps per scheduler", f"must be text, one entry per line, got {value!r}"
        )
    checked = []
    for name, steps in pairs:
        count = _optional_steps(f"Steps for {name}", steps, limits)
        if count is None:
            raise RequestError(f"Steps for {name}", "must be at least 1")
        checked.append((name, count))
    return checked


def _group(
    recipe: Recipe, own: Sampler, limits: Limits, registry: SchedulerRegistry
) -> tuple[tuple[Sampler, ...], int]:
    """A lockstep group: one scheduler per tile of the group, this tile's own at its index,
    and the lanes per UNet call it was rendered with, each scheduler checked as the tile's."""
    record = recipe.lockstep
    lanes = record.get("schedulers") if isinstance(record, dict) else None
    if not isinstance(lanes, list) or len(lanes) != recipe.batch_size:
        raise RequestError(
            "Lockstep", f"must list {recipe.batch_size} schedulers, one per tile of the group"
        )
    samplers = []
    for lane in lanes:
        if not (
            isinstance(lane, dict)
            and isinstance(lane.get("sampler"), str)
            and isinstance(lane.get("scheduler_config"), dict)
        ):
            raise RequestError(
                "Lockstep", f"each scheduler needs a sampler, a config and steps, got {lane!r}"
            )
        steps = _steps(f"Steps for {lane['sampler']}", lane.get("steps"), limits)
        field_name = f"Lockstep scheduler {len(samplers) + 1} config"
        samplers.append(
            _recipe_sampler(registry, field_name, lane["sampler"], lane["scheduler_config"], steps)
        )
    mine = samplers[recipe.batch_index]
    if (mine.config, mine.steps) != (own.config, own.steps):
        raise RequestError("Lockstep", "the scheduler at the tile's index is not the tile's own")
    per_call = record.get("per_call")
    if not _is_whole(per_call) or not 1 <= per_call <= recipe.batch_size:
        raise RequestError(
            "Lockstep",
            f"schedulers per call must be a whole number 1..{recipe.batch_size}, got {per_call!r}",
        )
    return tuple(samplers), per_call


def _recipe_sampler(
    registry: SchedulerRegistry, field_name: str, sampler: Any, config: Any, steps: int
) -> Sampler:
    """A recipe's scheduler as this model's registry writes it, never its config as sent."""
    try:
        name, checked = recipe_scheduler(registry, sampler, config)
    except SchedulerError as error:
        raise RequestError(field_name, str(error)) from None
    return Sampler(name, checked, steps)


def _conditioning(recipe: Recipe, limits: Limits) -> dict[str, Any] | None:
    """A recipe's size conditioning (SDXL): three (height, width)-like pairs of sides within
    the limits, or none at all."""
    recorded = recipe.conditioning
    if recorded is None:
        return None
    keys = ("original_size", "crops_coords_top_left", "target_size")
    pairs = [recorded.get(key) for key in keys] if isinstance(recorded, dict) else []
    if len(pairs) != 3 or not all(
        isinstance(pair, list)
        and len(pair) == 2
        and all(_is_whole(side) and 0 <= side <= limits.max_side * 4 for side in pair)
        for pair in pairs
    ):
        raise RequestError(
            "Size conditioning", f"must give {', '.join(keys)} as pairs of sides, got {recorded!r}"
        )
    return recorded


def _pixels(tiles: int, width: int, height: int, limits: Limits) -> None:
    """One run's pixels, a cap on its memory and time whatever mix of tiles and size."""
    pixels = tiles * width * height
    if pixels > limits.max_pixels:
        raise RequestError(
            "Size",
            f"{tiles} tiles at {width}x{height} is {pixels:,} pixels, over the "
            f"{limits.max_pixels:,} one run may render: use fewer tiles or a smaller size",
        )


def _prompt(field_name: str, prompt: Any, limits: Limits) -> str:
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise RequestError(field_name, "type what to render")
    return _text(field_name, prompt, limits)


def _text(field_name: str, text: Any, limits: Limits) -> str:
    if not isinstance(text, str):
        raise RequestError(field_name, f"must be text, got {text!r}")
    if len(text) > limits.max_prompt_chars:
        raise RequestError(
            field_name, f"{len(text)} characters is over the {limits.max_prompt_chars} limit"
        )
    return text


def _optional_steps(field_name: str, value: Any, limits: Limits) -> int | None:
    """Steps as a widget or a client gives them: None, "" and 0 mean the default."""
    steps = _optional_whole(field_name, value)
    return None if steps is None else _steps(field_name, steps, limits)


def _steps(field_name: str, steps: Any, limits: Limits) -> int:
    if not _is_whole(steps) or not 1 <= steps <= limits.max_steps:
        raise RequestError(
            field_name, f"must be a whole number 1..{limits.max_steps}, got {steps!r}"
        )
    return steps


def _seed_value(field_name: str, seed: Any) -> int:
    if not _is_whole(seed):
        raise RequestError(field_name, f"{seed!r} is not a whole number 0..{MAX_SEED}")
    try:
        return check_seed(seed)
    except SeedError as error:
        raise RequestError(field_name, str(error)) from None


def _guidance(guidance: float, limits: Limits) -> float:
    if not 0 <= guidance <= limits.max_guidance:  # NaN fails every comparison
        raise RequestError("Guidance scale", f"must be 0..{limits.max_guidance}, got {guidance}")
    return float(guidance)


def _side(field_name: str, side: Any, limits: Limits) -> int:
    if not _is_whole(side) or not 8 <= side <= limits.max_side or side % 8:
        raise RequestError(
            field_name, f"must be a multiple of 8 from 8 to {limits.max_side}, got {side!r}"
        )
    return side


def _optional_whole(field_name: str, value: Any) -> int | None:
    """None, "" and 0 mean "the default"; 20.0 is 20; 20.5 and "abc" are refused."""
    number = _optional_number(field_name, value)
    if number is None:
        return None
    if not number.is_integer():
        raise RequestError(field_name, f"must be a whole number, got {value!r}")
    return int(number) or None


def _optional_number(field_name: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RequestError(field_name, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RequestError(field_name, f"must be a number, got {value!r}") from None
    return number


def _is_whole(value: object) -> bool:
    """An int, not a bool (True would pass as 1) and not a float."""
    return isinstance(value, int) and not isinstance(value, bool)
