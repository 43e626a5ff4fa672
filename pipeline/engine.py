"""The engine: the app's one way to the model. It plans a request (pipeline/planner.py) and
renders a plan (pipeline/rendering.py): with step sharing (`max_batch`), in its one denoising
loop beside other runs (pipeline/sharing.py), else under the model lock, one run at a time;
it turns what goes wrong into errors a user can act on.

What a plan is, and every rule and default, is pipeline/plan.py's; what differs between model
families is pipeline/families.py's; a tile and its recipe are pipeline/recipe.py's.
"""

from __future__ import annotations

import gc
import platform
import threading
from collections.abc import Sequence
from dataclasses import replace
from importlib.metadata import version
from typing import Any

import torch

from pipeline import __version__
from pipeline.accel import Speedups
from pipeline.card import ModelCard, card_of
from pipeline.embeddings import PromptEmbeddings
from pipeline.loading import LoadedModel
from pipeline.plan import Matrix, Plan, Request
from pipeline.planner import Planner
from pipeline.recipe import Provenance, Recipe, Tile, replay_plan
from pipeline.rendering import Hooks, OutOfMemory, SharingRenderer, Stopped
from pipeline.requests import Limits
from pipeline.sharing import StepScheduler

DEFAULT_MICRO_BATCH = 8


class Engine:
    """The app's only way to the model; safe to share between threads."""

    def __init__(
        self,
        model: LoadedModel,
        limits: Limits | None = None,
        generator_device: str = "cpu",
        micro_batch: int | None = DEFAULT_MICRO_BATCH,
        speedups: Speedups | None = None,
        max_batch: int | None = None,
    ) -> None:
        self.model = model
        self.planner = Planner(model, limits or Limits(), micro_batch, generator_device, max_batch)
        self._lock = threading.Lock()
        # The one denoising loop every shared run's lanes meet in (pipeline/sharing.py).
        self.loop = StepScheduler()
        self.embeddings = PromptEmbeddings(model.pipe, model.family)
        identity = model.identity
        provenance = Provenance(
            model_id=model.model_id,
            model_hash=identity.a1111_hash if identity else None,
            model_revision=model.revision,
            family=model.family.name,
            native_size=model.native_size,
            dtype=str(model.dtype).removeprefix("torch."),
            device=model.device,
            device_name=_device_name(model.device),
            deterministic=torch.are_deterministic_algorithms_enabled(),
            versions={
                "seed-explorer": __version__,
                **{name: version(name) for name in ("torch", "diffusers", "transformers")},
            },
            safety_checker=model.safety_checker,
            speedups=(speedups or Speedups()).as_dict(),
            guidance_kind=model.guidance_kind,
            offload=model.offload is not None,
            offload_mode=model.offload,
            quantize=model.quantize,
            model_name=identity.name if identity else model.model_id,
            model_sha256=identity.sha256 if identity else None,
            model_config=model.config,
            loras=tuple(lora.to_dict() for lora in model.loras),
        )
        # A compiled UNet recompiles at every new batch shape: pad every call to one size.
        pad_to = micro_batch if speedups is not None and speedups.compile else None
        self.renderer = SharingRenderer(model, self.embeddings, provenance, pad_to)

    @property
    def provenance(self) -> Provenance:
        """Where every tile comes from: the model, the software, the machine."""
        return self.renderer.provenance

    @property
    def limits(self) -> Limits:
        return self.planner.limits

    @property
    def micro_batch(self) -> int | None:
        return self.planner.micro_batch

    @property
    def max_batch(self) -> int | None:
        """Rows per shared denoiser call; None: runs take the model lock one at a time."""
        return self.planner.call_rows

    @property
    def runs_at_once(self) -> int:
        """Runs rendering at once without step sharing: one, under the lock."""
        return 1

    @property
    def generator_device(self) -> str:
        return self.planner.generator_device

    @property
    def schedulers(self) -> list[str]:
        """The schedulers this model offers, by the names people pick them by."""
        return self.model.registry.names

    def defaults(self) -> dict[str, Any]:
        """What an unset setting becomes (pipeline/plan.py)."""
        return self.planner.defaults()

    def scheduler_steps(self, names: Sequence[str]) -> dict[str, int]:
        """Each named scheduler's own step count (Compare's table)."""
        return self.planner.scheduler_steps(names)

    @property
    def card(self) -> ModelCard:
        """The loaded model as the UI describes it."""
        return card_of(self.model)

    def plan(self, request: Request) -> Plan | Matrix:
        """The request's plan, or a RequestError naming the field (pipeline/plan.py)."""
        return self.planner.plan(request)

    def run(self, request: Request, hooks: Hooks | None = None) -> list[Tile]:
        """Plan a run and render it."""
        return self.render(self.plan(request), hooks)

    def replay_plan(self, recipe: Recipe) -> Plan:
        """The call that rendered `recipe`, again, or a RequestError naming the field: a
        recipe from a client is checked as a request is."""
        return replay_plan(recipe, self.planner)

    def replay(self, recipe: Recipe, hooks: Hooks | None = None) -> Tile:
        """One recipe again, in a call of the shape that rendered it: bit-exact on the same
        machine and software."""
        return self.render(self.replay_plan(recipe), hooks)[recipe.batch_index]

    def render(self, plan: Plan | Matrix, hooks: Hooks | None = None) -> list[Tile]:
        """A plan's tiles, in order: in the shared loop with other runs where the plan says
        its call shape (pipeline/sharing.py), else under the model lock, in lockstep or in
        batched calls."""
        hooks = hooks or Hooks()
        first = plan.plans[0] if isinstance(plan, Matrix) else plan
        if first.rows is not None:
            if hooks.stop.is_set():
                raise Stopped("Stopped before it started")
            try:
                return self.renderer.shared(plan, hooks, self.loop)
            except torch.OutOfMemoryError:
                raise _out_of_memory(plan) from None
        with self._lock:
            if hooks.stop.is_set():
                raise Stopped("Stopped before it started")
            if not self.provenance.device_name:  # ZeroGPU: CUDA starts in the render's process
                self.renderer.provenance = replace(
                    self.provenance, device_name=_device_name(self.model.device)
                )
            try:
                return self.renderer.render(plan, hooks)
            except torch.OutOfMemoryError:
                raise _out_of_memory(plan) from None

    def truncated(self, prompt: str) -> bool:
        """Whether the text encoder that reads the prompt will cut its tail off (CLIP reads 77
        tokens; Flux's T5 512, SD3's 256)."""
        return self.model.family.truncated(self.model.pipe, prompt)


def _out_of_memory(plan: Plan) -> OutOfMemory:
    """What is left to say after the device ran out of memory, once what could go has gone."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return OutOfMemory(
        f"out of memory rendering {plan.tiles} images at {plan.width}x{plan.height}: "
        "try fewer tiles, a smaller size, or fewer images per call (--micro-batch; with "
        "shared steps, --max-batch)"
    )


def _device_name(device: str) -> str:
    """The device's name; "" on CUDA before CUDA has started, which it must not do in a ZeroGPU
    Space's main process (the render's process fills it in)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device) if torch.cuda.is_initialized() else ""
    return platform.processor() or platform.machine() or "cpu"
