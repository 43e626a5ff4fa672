"""What a plan is: a render with nothing left open.

Every image's prompt and seed, each scheduler's exact config and step count, size, guidance,
the family's extras (SDXL's size conditioning; a flow family's shift), the shape of the
calls. pipeline/planner.py makes them from requests (pipeline/matrix.py a matrix's,
pipeline/recipe.py a recipe's); the engine renders them, and nothing downstream checks or
defaults again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline import axes
from pipeline.families import Family
from pipeline.requests import (
    CompareRequest,
    GridRequest,
    MatrixRequest,
    RefineRequest,
    TravelRequest,
    VaryRequest,
)
from pipeline.schedulers import (
    SchedulerRegistry,
)

Request = GridRequest | RefineRequest | CompareRequest | VaryRequest | TravelRequest | MatrixRequest


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
    `resize_from` (width, height) as A1111 does (pipeline/variation.py); a variation of a
    pinned variation first goes through the pin's own blends, `base_variations` ((seed,
    strength) pairs, in order). The step noise of an ancestral scheduler is always the seed's.
    """

    prompt: str
    seed: int
    suffix: str | None = None
    variation_seed: int | None = None
    strength: float = 0.0
    resize_from: tuple[int, int] | None = None
    base_variations: tuple[tuple[int, float], ...] = ()


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
    # Flux's true CFG (with the negative prompt) beside its embedded guidance; 1 is off.
    true_cfg_scale: float = 1.0
    # A flow family's schedule shift (in every sampler's config) and the `mu` it came from
    # (Flux: from the image's token count); None: not a flow family, or no dynamic shift.
    shift: float | None = None
    mu: float | None = None
    # Seed variance: each tile's prompt embedding moved by its seed's noise at this strength
    # (pipeline/embeddings.py); 0: none.
    seed_variance: float = 0.0
    # Denoised lane by lane in shared calls of exactly this many rows (pipeline/sharing.py),
    # with other runs' lanes; None: in calls of `per_call` images of its own, under the lock.
    rows: int | None = None

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
