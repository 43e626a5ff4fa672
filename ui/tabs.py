"""Every run tab declared once: its inputs in API order, its request, its captions.

A tab module builds its own widgets and hands them to `connect`, which wires the rest the same
way for every tab: the check before the job queues (a toast naming the field), the queued job
with its API name and validator, pin on click, Stop and "download all". The handler a tab gets
is made from its declaration: values in the declared order become the request, the engine
makes the plan, the runner streams it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipeline.plan import Matrix, Plan
from pipeline.recipe import Tile
from pipeline.requests import (
    CompareRequest,
    GridRequest,
    MatrixRequest,
    Pin,
    RefineRequest,
    RequestError,
    TravelRequest,
    VaryRequest,
)
from ui import runner, validation
from ui.runner import Services, Update
from ui.shared import SharedInputs, TabParts, connect_parts, run_on_click

SETTINGS = ("scheduler", "steps", "guidance_scale", "width", "height")
# What every run button also passes, after its inputs: session states, never API parameters.
STATES = ("manifest", "pinned", "variation")


@dataclass(frozen=True)
class TabSpec:
    """A run tab: `kind` is its API name, element-id prefix and manifest entry kind."""

    kind: str
    request: type
    inputs: tuple[str, ...]  # the API's parameters in order; each a field of `request`
    caption: Callable[[Tile], str]  # under a finished tile
    label: Callable[[Any], str]  # (plan, i): under tile i's live preview, before it exists
    grows_from_pin: bool  # its run is entered in the manifest as grown from the pinned tile

    def request_of(self, values: list[Any], variation: dict[str, Any] | None = None) -> Any:
        """The request the values (in `inputs` order) make, with the pin's variation where the
        request takes the whole pin; nothing checked yet."""
        request = self.request(**dict(zip(self.inputs, values, strict=True)))
        if variation and issubclass(self.request, Pin):
            request = dataclasses.replace(request, **variation)
        return request

    def split(self, values: tuple[Any, ...]) -> tuple[list[Any], dict[str, Any]]:
        """A button's values as its inputs and its states, by name."""
        count = len(self.inputs)
        return list(values[:count]), dict(zip(STATES, values[count:], strict=False))


def _flag(tile: Tile, caption: str) -> str:
    return f"filtered (safety checker) · {caption}" if tile.filtered else caption


def _suffix(text: str | None) -> str:
    return (text or "").strip(" ,") or "(no suffix)"


GRID = TabSpec(
    "grid",
    GridRequest,
    ("prompt", "negative_prompt", "seeds", *SETTINGS),
    caption=lambda tile: _flag(tile, f"seed {tile.recipe.seed}"),
    label=lambda plan, i: f"seed {plan.items[i].seed}",
    grows_from_pin=False,
)
REFINE = TabSpec(
    "refine",
    RefineRequest,
    ("prompt", "negative_prompt", "seed", "suffixes", *SETTINGS),
    caption=lambda tile: _flag(tile, f"{_suffix(tile.recipe.suffix)} · seed {tile.recipe.seed}"),
    label=lambda plan, i: _suffix(plan.items[i].suffix),
    grows_from_pin=True,
)
COMPARE = TabSpec(
    "compare",
    CompareRequest,
    ("prompt", "negative_prompt", "seed", "schedulers", "steps", "guidance_scale", "width",
     "height", "scheduler_steps"),
    caption=lambda tile: _flag(
        tile, f"{tile.recipe.sampler} · {tile.recipe.steps} steps · {tile.seconds:.1f} s"
    ),
    label=lambda plan, i: plan.samplers[i].name,
    grows_from_pin=True,
)  # fmt: skip
VARY = TabSpec(
    "vary",
    VaryRequest,
    ("prompt", "negative_prompt", "seed", "variation_seeds", "strength", *SETTINGS,
     "resize_from"),
    caption=lambda tile: _flag(tile, _variation(tile)),
    label=lambda plan, i: f"variation seed {plan.items[i].variation_seed}",
    grows_from_pin=True,
)  # fmt: skip
TRAVEL = TabSpec(
    "travel",
    TravelRequest,
    ("prompt", "negative_prompt", "seed", "to_seed", "frames", *SETTINGS),
    caption=lambda tile: _flag(tile, _variation(tile)),
    label=lambda plan, i: f"strength {plan.items[i].strength:.2f}",
    grows_from_pin=True,
)
MATRIX = TabSpec(
    "matrix",
    MatrixRequest,
    ("prompt", "negative_prompt", "seed", "x_axis", "x_values", "y_axis", "y_values",
     *SETTINGS),
    caption=lambda tile: _flag(tile, f"{tile.recipe.cell['x']} · {tile.recipe.cell['y']}"),
    label=lambda plan, i: " · ".join(plan.labels(i)),
    grows_from_pin=True,
)  # fmt: skip
SPECS = {spec.kind: spec for spec in (GRID, REFINE, COMPARE, VARY, TRAVEL, MATRIX)}


def _variation(tile: Tile) -> str:
    """ "seed 5 → 17 at 0.30": the pinned seed, the variation seed, the strength."""
    recipe = tile.recipe
    return f"seed {recipe.seed} → {recipe.variation_seed} at {recipe.variation_strength:.2f}"


def _first_seed(plan: Plan | Matrix) -> int:
    """The seed a run's first tile starts from: the pin's, for a run grown from it."""
    return (plan.plans[0] if isinstance(plan, Matrix) else plan).items[0].seed


def handler(services: Services, spec: TabSpec) -> Callable[..., Update]:
    """The tab's queued job: its inputs (by their API names), the session manifest, the
    pinned tile, and Gradio's request; a refused request becomes a toast naming the field."""
    engine = services.engine

    def run(*values: Any) -> Update:
        *values, request = values
        inputs, states = spec.split(values)
        try:
            plan = engine.plan(spec.request_of(inputs, states["variation"]))
        except RequestError as error:
            raise gr.Error(str(error), print_exception=False) from None
        pinned = states["pinned"]
        parent = runner.parent(pinned, _first_seed(plan)) if spec.grows_from_pin else None
        manifest = states["manifest"]
        return runner.run(services, spec, plan, manifest, parent, request.session_hash)

    # Gradio reads the API's parameter names from the signature and finds gr.Request by its
    # annotation: give the generic function the tab's own.
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, keyword) for name in (*spec.inputs, *STATES)]
        + [inspect.Parameter("request", keyword, annotation=gr.Request)]
    )
    run.__annotations__ = {"request": gr.Request}
    run.__name__ = spec.kind
    return run


def connect(
    services: Services,
    spec: TabSpec,
    shared: SharedInputs,
    parts: TabParts,
    own: dict[str, gr.components.Component],
) -> gr.events.Dependency:
    """Wire a tab: its inputs are its own widgets (`own`, by input name) and the shared ones.
    Returns the run's event, for what a tab does after it."""
    widgets = {
        "prompt": shared.prompt,
        "negative_prompt": shared.negative_prompt,
        "seed": shared.pinned_seed,
        **{name: getattr(shared, name) for name in SETTINGS},
        **own,
    }
    inputs = [widgets[name] for name in spec.inputs]
    inputs += [shared.manifest, shared.pinned, shared.variation]
    event = run_on_click(
        parts.run,
        handler(services, spec),
        inputs,
        parts.outputs(shared),
        parts,
        spec.kind,
        validation.validator(services.engine, spec),
        services.previews,
    )
    connect_parts(services, shared, parts)
    return event
