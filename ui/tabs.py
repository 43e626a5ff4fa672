"""Every run tab declared once: its inputs in API order, its request, its captions.

A tab module builds its own widgets and hands them to `connect`, which wires the rest the same
way for every tab: the check before the job queues (a toast naming the field), the queued job
with its API name and validator, pin on click, Stop and "download all". The handler a tab gets
is made from its declaration: values in the declared order become the request, the engine
makes the plan, the runner streams it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipeline.plan import Plan
from pipeline.recipe import Tile
from pipeline.requests import CompareRequest, GridRequest, RefineRequest, RequestError
from ui import runner, validation
from ui.gpu import gpu
from ui.runner import Services, Update
from ui.shared import SharedInputs, TabParts, connect_parts, run_on_click

SETTINGS = ("scheduler", "steps", "guidance_scale", "width", "height")


@dataclass(frozen=True)
class TabSpec:
    """A run tab: `kind` is its API name, element-id prefix and manifest entry kind."""

    kind: str
    request: type
    inputs: tuple[str, ...]  # the API's parameters in order; each a field of `request`
    caption: Callable[[Tile], str]  # under a finished tile
    label: Callable[[Plan, int], str]  # under tile i's live preview, before the tile exists
    grows_from_pin: bool  # its run is entered in the manifest as grown from the pinned tile

    def request_of(self, values: list[Any]) -> Any:
        """The request the values (in `inputs` order) make; nothing checked yet."""
        return self.request(**dict(zip(self.inputs, values, strict=True)))


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
SPECS = {spec.kind: spec for spec in (GRID, REFINE, COMPARE)}


def handler(services: Services, spec: TabSpec) -> Callable[..., Iterator[Update]]:
    """The tab's queued job: its inputs (by their API names), the session manifest, the
    pinned tile, and Gradio's request; a refused request becomes a toast naming the field."""
    engine = services.engine

    def run(*values: Any) -> Iterator[Update]:
        *inputs, manifest, pinned, request = values
        try:
            plan = engine.plan(spec.request_of(inputs))
        except RequestError as error:
            raise gr.Error(str(error), print_exception=False) from None
        seed = plan.items[0].seed
        parent = runner.parent(pinned, seed) if spec.grows_from_pin else None
        yield from runner.run(services, spec, plan, manifest, parent, request.session_hash)

    # Gradio reads the API's parameter names from the signature and finds gr.Request by its
    # annotation: give the generic function the tab's own.
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, keyword) for name in (*spec.inputs, "manifest", "pinned")]
        + [inspect.Parameter("request", keyword, annotation=gr.Request)]
    )
    run.__annotations__ = {"request": gr.Request}
    run.__name__ = spec.kind
    return gpu(run)


def connect(
    services: Services,
    spec: TabSpec,
    shared: SharedInputs,
    parts: TabParts,
    own: dict[str, gr.components.Component],
) -> None:
    """Wire a tab: its inputs are its own widgets (`own`, by input name) and the shared ones."""
    widgets = {
        "prompt": shared.prompt,
        "negative_prompt": shared.negative_prompt,
        "seed": shared.pinned_seed,
        **{name: getattr(shared, name) for name in SETTINGS},
        **own,
    }
    inputs = [widgets[name] for name in spec.inputs] + [shared.manifest, shared.pinned]
    run_on_click(
        parts.run,
        handler(services, spec),
        inputs,
        parts.outputs(shared),
        spec.kind,
        validation.validator(services.engine, spec),
    )
    connect_parts(services, shared, parts)
