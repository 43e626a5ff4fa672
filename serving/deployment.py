"""The engine as a Ray Serve deployment: each replica loads the model once and renders the
plans sent to it, streaming progress and previews back as it goes.

A render is a streaming call: the caller iterates its events and cancels the call to Stop it,
which sets the replica's stop flag, so the replica stops at its next step as a local run would.

For `serve deploy`, `build_app` turns a config's `args` into the application (docs/serve.yaml).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from typing import Any

import ray
from ray import serve

from pipeline.builder import EngineSettings, build_engine
from pipeline.lora import LoraSpec
from pipeline.plan import Defaults, Matrix, Plan, Request
from pipeline.recipe import Recipe
from pipeline.rendering import Hooks
from pipeline.requests import Limits

APP_NAME = "seed-explorer"
log = logging.getLogger("seed_explorer")


@dataclass(frozen=True)
class Description:
    """What the front door shows and checks without a model of its own: fixed for a model."""

    card: Any
    provenance: Any
    limits: Limits
    micro_batch: int | None
    generator_device: str
    schedulers: list[str]
    defaults: dict[str, Any]
    max_batch: int | None = None  # rows per shared call in the replica; None: one lock


@serve.deployment(name="SeedExplorerEngine", max_ongoing_requests=8)
class EngineDeployment:
    """One engine per replica (one GPU each where the cluster has GPUs)."""

    def __init__(self, settings: EngineSettings) -> None:
        self.engine = build_engine(settings)
        log.info("Replica ready: %s on %s", settings.model, self.engine.model.device)

    def describe(self) -> Description:
        engine = self.engine
        return Description(
            card=engine.card,
            provenance=engine.provenance,
            limits=engine.limits,
            micro_batch=engine.micro_batch,
            generator_device=engine.generator_device,
            schedulers=engine.schedulers,
            defaults=engine.defaults(),
            max_batch=engine.max_batch,
        )

    def plan(self, request: Request) -> Plan | Matrix:
        return self.engine.plan(request)

    def replay_plan(self, recipe: Recipe) -> Plan:
        return self.engine.replay_plan(recipe)

    def scheduler_steps(self, names: list[str]) -> dict[str, int]:
        return self.engine.scheduler_steps(names)

    def truncated(self, prompt: str) -> bool:
        return self.engine.truncated(prompt)

    async def render(
        self, plan: Plan | Matrix, preview_interval: float | None
    ) -> AsyncIterator[tuple[Any, ...]]:
        """The run's events as they come: ("replica", its name) first, for the caller's log,
        then ("progress", fraction, text) and ("preview", first, images), then ("tiles",
        tiles); a failure is raised. A cancelled call stops the run."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

        def put(*event: Any) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        stop = threading.Event()
        hooks = Hooks(
            progress=lambda fraction, text: put("progress", fraction, text),
            preview=None
            if preview_interval is None
            else lambda i, images: put("preview", i, images),
            preview_interval=preview_interval or 0.0,
            stop=stop,
        )

        def work() -> None:
            try:
                put("tiles", self.engine.render(plan, hooks))
            except Exception as error:  # raised to the caller below
                put("failed", error)

        threading.Thread(target=work, name="render", daemon=True).start()
        try:
            yield ("replica", ray.get_runtime_context().get_actor_name())
            while True:
                event = await events.get()
                if event[0] == "failed":
                    raise event[1]
                yield event
                if event[0] == "tiles":
                    return
        finally:
            stop.set()  # the caller stopped or went away: no step more than it must


def build_app(args: dict[str, Any]) -> serve.Application:
    """The application a Serve config names (`import_path: serving.deployment:build_app`)."""
    return EngineDeployment.bind(settings_of(args))


def settings_of(args: dict[str, Any]) -> EngineSettings:
    """A Serve config's `args`: EngineSettings' fields, limits and defaults as mappings of their
    own, loras as a list of {source, weight}."""
    known = {field.name for field in fields(EngineSettings)}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    settings = dict(args)
    if "limits" in settings:
        settings["limits"] = Limits(**settings["limits"])
    if "defaults" in settings:
        settings["defaults"] = Defaults(**settings["defaults"])
    if "loras" in settings:
        settings["loras"] = tuple(LoraSpec(**lora) for lora in settings["loras"])
    return EngineSettings(**settings)
