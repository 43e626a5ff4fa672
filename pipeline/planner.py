"""Request -> plan: the one place where the app's input rules and defaults live.

A plan (pipeline/plan.py) is a render with nothing left open. The UI's checks before a job
queues, the API, the engine and replay all make their plan here (a matrix's in
pipeline/matrix.py, a recipe's in pipeline/recipe.py), so a refusal reads the same
everywhere and names its field (`Seeds: ...`, `Steps: ...`): the checkers beside the
requests (pipeline/requests.py) say it, and nothing downstream checks or defaults again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.matrix import plan_matrix
from pipeline.plan import Item, Matrix, Model, Plan, Request, Sampler
from pipeline.requests import (
    DEFAULT_STRENGTH,
    MAX_BASE_VARIATIONS,
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
    check_base_variations,
    check_guidance,
    check_multiple,
    check_pixels,
    check_prompt,
    check_resize_from,
    check_scheduler_steps,
    check_side,
    check_steps,
    check_strength,
    check_text,
    check_variation,
    one_seed,
    optional_number,
    optional_steps,
    optional_whole,
    pinned_seed,
    seed_value,
    seed_variance_of,
    true_cfg_of,
)
from pipeline.schedulers import SchedulerEntry, SchedulerError, flow_shifted
from pipeline.seeds import SeedError, parse_seeds
from pipeline.variation import travel_strengths

MAX_SHIFT = 100.0  # a flow schedule's shift; Flux at 1536 px is about 3.2, SD3.5's is 3


@dataclass(frozen=True)
class Planner:
    """Plans for one loaded model under one set of limits and engine settings."""

    model: Model
    limits: Limits = field(default_factory=Limits)
    micro_batch: int | None = None  # images per call; None: a whole run in one call
    generator_device: str = "cpu"
    call_rows: int | None = None  # rows of a shared denoiser call; None: no sharing

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
            return plan_matrix(self, request)
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
            "steps": check_steps("Default steps", self.steps_of(entry), self.limits),
            "guidance_scale": check_guidance(self.default_guidance(), self.limits),
            "width": native,
            "height": native,
            "compare": [name for name in compare if name in offered],
        }

    def scheduler_steps(self, names: Sequence[str]) -> dict[str, int]:
        """Each chosen scheduler's step count (Compare's table), by display name."""
        entries = [self.entry("Schedulers", name) for name in names]
        return {entry.name: self.steps_of(entry) for entry in entries}

    def _grid(self, request: GridRequest) -> Plan:
        prompt = check_prompt("Prompt", request.prompt, self.limits)
        seeds = self._seeds(request.seeds)
        items = tuple(Item(prompt, seed) for seed in seeds)
        return self._batched("grid", items, request)

    def _refine(self, request: RefineRequest) -> Plan:
        prompt = check_prompt("Prompt", request.prompt, self.limits)
        seed = pinned_seed(request.seed)
        variation = self.pin_variation(request)
        base = self.pin_base(request)
        suffixes = self._suffixes(request.suffixes)
        for suffix in suffixes:
            check_prompt("Prompt", prompt + suffix, self.limits)
        items = tuple(Item(prompt + suffix, seed, suffix, *variation, base) for suffix in suffixes)
        return self._batched("refine", items, request)

    def _vary(self, request: VaryRequest) -> Plan:
        prompt = check_prompt("Prompt", request.prompt, self.limits)
        seed = pinned_seed(request.seed)
        strength = optional_number("Strength", request.strength)
        strength = check_strength("Strength", DEFAULT_STRENGTH if strength is None else strength)
        resize_from = check_resize_from(request.resize_from, self.limits)
        base = self.pin_blends(request)
        items = tuple(
            Item(prompt, seed, None, other, strength, resize_from, base)
            for other in self._seeds(request.variation_seeds, "Variation seeds")
        )
        return self._batched("vary", items, request)

    def _travel(self, request: TravelRequest) -> Plan:
        """Frame 0 is the pin's own noise (its variation too), the last frame `to_seed`'s."""
        prompt = check_prompt("Prompt", request.prompt, self.limits)
        seed = pinned_seed(request.seed)
        to_seed = one_seed("To seed", request.to_seed)
        base = self.pin_blends(request)
        if to_seed == seed and not base:
            raise RequestError("To seed", f"is the pinned seed {seed}: travel to another one")
        frames = optional_whole("Frames", request.frames)
        if frames is None or not 2 <= frames <= self.limits.max_tiles:
            raise RequestError(
                "Frames", f"must be a whole number 2..{self.limits.max_tiles}, got {frames!r}"
            )
        resize_from = check_resize_from(request.resize_from, self.limits)
        items = tuple(
            Item(prompt, seed, None, to_seed, strength, resize_from, base)
            for strength in travel_strengths(frames)
        )
        return self._batched("travel", items, request)

    def _compare(self, request: CompareRequest) -> Plan:
        """Also refuses a scheduler chosen twice: it would render the same image twice."""
        prompt = check_prompt("Prompt", request.prompt, self.limits)
        seed = pinned_seed(request.seed)
        variation = self.pin_variation(request)
        base = self.pin_base(request)
        names = [request.schedulers] if isinstance(request.schedulers, str) else request.schedulers
        names = self._list("Schedulers", names, "a list of scheduler names")
        entries = [self.entry("Schedulers", name) for name in names]
        chosen: set[str] = set()
        for name, entry in zip(names, entries, strict=True):
            if entry.name in chosen:
                raise RequestError("Schedulers", f"{name} is chosen twice: choose each one once")
            chosen.add(entry.name)
        own = {
            self.entry("Steps per scheduler", name).name: steps
            for name, steps in check_scheduler_steps(request.scheduler_steps, self.limits)
        }
        every = optional_steps("Steps", request.steps, self.limits)
        common = self.common(request, len(entries))
        samplers = tuple(
            self.sampler(
                entry, every or own.get(entry.name) or self.steps_of(entry), common["shift"]
            )
            for entry in entries
        )
        return Plan(
            kind="compare",
            items=(Item(prompt, seed, None, *variation, base),),
            samplers=samplers,
            per_call=len(samplers),
            lockstep=True,
            **common,
        )

    def _batched(self, kind: str, items: tuple[Item, ...], settings: Settings) -> Plan:
        limits = self.limits
        entry = (
            self.entry("Scheduler", settings.scheduler)
            if settings.scheduler
            else self._default_entry()
        )
        steps = optional_steps("Steps", settings.steps, limits) or self.steps_of(entry)
        common = self.common(settings, len(items))
        return Plan(
            kind=kind,
            items=items,
            samplers=(self.sampler(entry, steps, common["shift"]),),
            per_call=min(self.micro_batch or len(items), len(items)),
            **common,
        )

    def common(self, settings: Settings, tiles: int) -> dict[str, Any]:
        """What every run shares: negative prompt, guidance, size (checked against the pixels
        of `tiles` images), the family's extras."""
        limits = self.limits
        native = self.model.native_size
        negative = check_text("Negative prompt", settings.negative_prompt or "", limits)
        guidance = optional_number("Guidance scale", settings.guidance_scale)
        guidance = self.default_guidance() if guidance is None else guidance
        width = optional_whole("Width", settings.width)
        height = optional_whole("Height", settings.height)
        width = native if width is None else check_side("Width", width, limits)
        height = native if height is None else check_side("Height", height, limits)
        for name, side in (("Width", width), ("Height", height)):
            check_multiple(name, side, self.model.family.size_step(self.model))
        check_pixels(tiles, width, height, limits)
        shift, mu = self.model.family.default_shift(self.model, width, height)
        own_shift = optional_number("Shift", settings.shift)
        if own_shift:
            shift, mu = self.checked_shift(own_shift), None
        true_cfg = true_cfg_of(settings.true_cfg_scale, limits)
        if true_cfg != 1 and not self.model.family.true_cfg:
            raise RequestError(
                "True CFG scale", "only Flux.1 takes one; this model guides by its CFG scale"
            )
        return {
            "negative_prompt": negative,
            "guidance_scale": check_guidance(guidance, limits),
            "width": width,
            "height": height,
            "generator_device": self.generator_device,
            "extras": self.model.family.extras(width, height, None),
            "true_cfg_scale": true_cfg,
            "shift": shift,
            "mu": mu,
            "seed_variance": seed_variance_of(settings.seed_variance),
            "rows": self.call_rows,
        }

    def checked_shift(self, shift: float) -> float:
        """A shift asked for (or recorded): a flow family's only, within MAX_SHIFT."""
        if not self.model.family.flow:
            raise RequestError("Shift", "only a flow-matching model (Flux, SD3) has a shift")
        if not 0 < shift <= MAX_SHIFT:
            raise RequestError("Shift", f"must be over 0 and at most {MAX_SHIFT:g}, got {shift}")
        return float(shift)

    def _default_entry(self) -> SchedulerEntry:
        name = self.model.defaults.scheduler
        return self.entry("Default scheduler", name) if name else self.model.registry.default

    def steps_of(self, entry: SchedulerEntry) -> int:
        """A scheduler's steps when none are asked for: the model's (a few-step model's are
        every scheduler's), else the scheduler's own sensible count."""
        return self.model.defaults.steps or entry.default_steps

    def default_guidance(self) -> float:
        """The model's own guidance (a card's, `--default-guidance`), else its family's."""
        guidance = self.model.defaults.guidance_scale
        return self.model.family.default_guidance if guidance is None else guidance

    def pin_variation(self, request: Pin) -> tuple[int | None, float, tuple[int, int] | None]:
        """The pin's variation seed and strength (none at strength 0) and its resize."""
        variation = check_variation(
            request.variation_seed, request.variation_strength, "Pinned variation"
        )
        return *variation, check_resize_from(request.resize_from, self.limits)

    def pin_base(self, request: Pin) -> tuple[tuple[int, float], ...]:
        """The blends the pin's noise went through before its own variation (a pinned
        variation of a variation); none for a plain seed or a first variation."""
        return check_base_variations(request.base_variations, "Pinned base variations")

    def pin_blends(self, request: Pin) -> tuple[tuple[int, float], ...]:
        """The pin's whole noise as blends, for a run that moves away from it (Vary, Travel):
        its base blends, then its own variation."""
        seed, strength, _ = self.pin_variation(request)
        blends = self.pin_base(request) + (((seed, strength),) if seed is not None else ())
        if len(blends) > MAX_BASE_VARIATIONS:
            raise RequestError(
                "Pinned variation",
                f"is a variation of a variation {len(blends)} deep; at most "
                f"{MAX_BASE_VARIATIONS} blends: pin a plain seed",
            )
        return blends

    def sampler(self, entry: SchedulerEntry, steps: int, shift: float | None) -> Sampler:
        """A scheduler's exact config; a flow family's with the run's shift in it."""
        config = self.model.registry.config(entry.name)
        if shift is not None:
            config = flow_shifted(config, shift)
        return Sampler(entry.name, config, steps)

    def entry(self, field_name: str, name: Any) -> SchedulerEntry:
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
        return [seed_value(field_name, seed) for seed in seeds]

    def _suffixes(self, suffixes: Any) -> list[str]:
        """One suffix per line (blank lines skipped, each kept as typed), or a list of texts."""
        if isinstance(suffixes, str) or suffixes is None:
            check_text("Suffixes", suffixes or "", self.limits)
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
