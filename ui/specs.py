"""Every run tab declared once: its API name, its inputs in API order, its request, what the
live preview labels each tile and the caption under a finished one.

Plain data over pipeline/ only: the wiring (ui/wiring.py) builds every tab's events from a
declaration alike, the runner (ui/runner.py) renders with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline import requests
from pipeline.plan import Matrix, Plan
from pipeline.recipe import Tile

SETTINGS = ("scheduler", "steps", "guidance_scale", "width", "height")
# A flow family's settings and seed variance, last in every tab's API: a caller that gives
# them by position before they existed still gives every other input its place.
FLOW = ("true_cfg_scale", "shift", "seed_variance")


@dataclass(frozen=True)
class TabSpec:
    """A run tab: `kind` is its API name, element-id prefix and manifest entry kind."""

    kind: str
    request: type
    inputs: tuple[str, ...]  # the API's parameters in order; each a field of `request`
    caption: Callable[[Tile], str]  # under a finished tile
    label: Callable[[Any, int], str]  # (plan, i): under tile i's live preview
    grows_from_pin: bool  # its run is entered in the manifest as grown from the pinned tile

    @property
    def takes_pin(self) -> bool:
        """Whether its request takes the whole pin (a variation too), not only its seed."""
        return issubclass(self.request, requests.Pin)

    def request_of(self, values: dict[str, Any], variation: dict[str, Any] | None = None) -> Any:
        """The request the values (by input name) make, with the pin's variation where the
        request takes the whole pin (a tab's own input, Vary's "Resize seed from", wins);
        nothing checked yet."""
        request = self.request(**{name: values[name] for name in self.inputs})
        if variation and self.takes_pin:
            pinned = {key: value for key, value in variation.items() if key not in self.inputs}
            request = dataclasses.replace(request, **pinned)
        return request


def first_seed(plan: Plan | Matrix) -> int:
    """The seed a run's first tile starts from: the pin's, for a run grown from it."""
    return (plan.plans[0] if isinstance(plan, Matrix) else plan).items[0].seed


def _flag(tile: Tile, caption: str) -> str:
    return f"filtered (safety checker) · {caption}" if tile.filtered else caption


def _suffix(text: str | None) -> str:
    return (text or "").strip(" ,") or "(no suffix)"


def _variation(tile: Tile) -> str:
    """ "seed 5 → 17 at 0.30": the pinned seed, the variation seed, the strength."""
    recipe = tile.recipe
    return f"seed {recipe.seed} → {recipe.variation_seed} at {recipe.variation_strength:.2f}"


GRID = TabSpec(
    "grid",
    requests.GridRequest,
    ("prompt", "negative_prompt", "seeds", *SETTINGS, *FLOW),
    caption=lambda tile: _flag(tile, f"seed {tile.recipe.seed}"),
    label=lambda plan, i: f"seed {plan.items[i].seed}",
    grows_from_pin=False,
)
REFINE = TabSpec(
    "refine",
    requests.RefineRequest,
    ("prompt", "negative_prompt", "seed", "suffixes", *SETTINGS, *FLOW),
    caption=lambda tile: _flag(tile, f"{_suffix(tile.recipe.suffix)} · seed {tile.recipe.seed}"),
    label=lambda plan, i: _suffix(plan.items[i].suffix),
    grows_from_pin=True,
)
COMPARE = TabSpec(
    "compare",
    requests.CompareRequest,
    ("prompt", "negative_prompt", "seed", "schedulers", "steps", "guidance_scale", "width",
     "height", "scheduler_steps", *FLOW),
    caption=lambda tile: _flag(
        tile, f"{tile.recipe.sampler} · {tile.recipe.steps} steps · {tile.seconds:.1f} s"
    ),
    label=lambda plan, i: plan.samplers[i].name,
    grows_from_pin=True,
)  # fmt: skip
VARY = TabSpec(
    "vary",
    requests.VaryRequest,
    ("prompt", "negative_prompt", "seed", "variation_seeds", "strength", *SETTINGS,
     "resize_from", *FLOW),
    caption=lambda tile: _flag(tile, _variation(tile)),
    label=lambda plan, i: f"variation seed {plan.items[i].variation_seed}",
    grows_from_pin=True,
)  # fmt: skip
TRAVEL = TabSpec(
    "travel",
    requests.TravelRequest,
    ("prompt", "negative_prompt", "seed", "to_seed", "frames", *SETTINGS, *FLOW),
    caption=lambda tile: _flag(tile, _variation(tile)),
    label=lambda plan, i: f"strength {plan.items[i].strength:.2f}",
    grows_from_pin=True,
)
MATRIX = TabSpec(
    "matrix",
    requests.MatrixRequest,
    ("prompt", "negative_prompt", "seed", "x_axis", "x_values", "y_axis", "y_values",
     *SETTINGS, *FLOW),
    caption=lambda tile: _flag(tile, f"{tile.recipe.cell['x']} · {tile.recipe.cell['y']}"),
    label=lambda plan, i: " · ".join(plan.labels(i)),
    grows_from_pin=True,
)  # fmt: skip
SPECS = {spec.kind: spec for spec in (GRID, REFINE, COMPARE, VARY, TRAVEL, MATRIX)}
