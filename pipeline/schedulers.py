"""Scheduler registry: A1111-style display names, diffusers classes, sensible step counts.

The registry is built from the loaded pipeline's `scheduler.compatibles`, so it offers what
that model can use. `make` always returns a NEW scheduler from the model's own config: a
scheduler keeps per-run state, so the cached pipeline's scheduler is never handed out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from diffusers import SchedulerMixin


@dataclass(frozen=True)
class SchedulerEntry:
    """One choice in the scheduler menu."""

    name: str
    class_name: str
    default_steps: int
    overrides: dict[str, Any] = field(default_factory=dict)
    # Draws fresh noise each step (from the tile's generator, so still reproducible).
    stochastic: bool = False


# Display names as AUTOMATIC1111 users know them; the steps are each one's usual sweet spot
# (the diffusers scheduler guide: PNDM/DDIM/LMS 50, Euler 30, DPM++ 20). Second-order
# samplers (Heun, DPM2) evaluate the model twice per step, so they get fewer steps.
_KNOWN: dict[str, tuple[SchedulerEntry, ...]] = {
    "DPMSolverMultistepScheduler": (
        SchedulerEntry("DPM++ 2M", "DPMSolverMultistepScheduler", 20),
        SchedulerEntry(
            "DPM++ 2M Karras", "DPMSolverMultistepScheduler", 20, {"use_karras_sigmas": True}
        ),
        SchedulerEntry(
            "DPM++ 2M SDE",
            "DPMSolverMultistepScheduler",
            25,
            {"algorithm_type": "sde-dpmsolver++"},
            stochastic=True,
        ),
    ),
    "EulerDiscreteScheduler": (SchedulerEntry("Euler", "EulerDiscreteScheduler", 30),),
    "EulerAncestralDiscreteScheduler": (
        SchedulerEntry("Euler a", "EulerAncestralDiscreteScheduler", 30, stochastic=True),
    ),
    "DDIMScheduler": (SchedulerEntry("DDIM", "DDIMScheduler", 50),),
    "PNDMScheduler": (SchedulerEntry("PNDM", "PNDMScheduler", 50),),
    "UniPCMultistepScheduler": (SchedulerEntry("UniPC", "UniPCMultistepScheduler", 20),),
    "LMSDiscreteScheduler": (SchedulerEntry("LMS", "LMSDiscreteScheduler", 50),),
    "HeunDiscreteScheduler": (SchedulerEntry("Heun", "HeunDiscreteScheduler", 25),),
    "KDPM2DiscreteScheduler": (SchedulerEntry("DPM2", "KDPM2DiscreteScheduler", 25),),
    "KDPM2AncestralDiscreteScheduler": (
        SchedulerEntry("DPM2 a", "KDPM2AncestralDiscreteScheduler", 25, stochastic=True),
    ),
    "DPMSolverSinglestepScheduler": (
        SchedulerEntry("DPM++ 2S", "DPMSolverSinglestepScheduler", 20),
    ),
    "DEISMultistepScheduler": (SchedulerEntry("DEIS", "DEISMultistepScheduler", 20),),
    "DDPMScheduler": (SchedulerEntry("DDPM", "DDPMScheduler", 100, stochastic=True),),
}

# Compatible on paper, left out on purpose.
EXCLUDED: dict[str, str] = {
    "DPMSolverSDEScheduler": (
        "its Brownian-tree noise is seeded once per batch, not per image, so a tile would "
        "depend on its neighbours (and it needs torchsde)"
    ),
    "EDMEulerScheduler": (
        "it feeds the model EDM noise levels, not the discrete timesteps a Stable Diffusion "
        "UNet was trained on"
    ),
    "EDMDPMSolverMultistepScheduler": (
        "it feeds the model EDM noise levels, not the discrete timesteps a Stable Diffusion "
        "UNet was trained on"
    ),
}

_UNKNOWN_DEFAULT_STEPS = 30


class SchedulerError(ValueError):
    """An unknown scheduler name."""


class SchedulerRegistry:
    """The schedulers one loaded model can use, by display name or diffusers class name."""

    def __init__(self, scheduler: SchedulerMixin) -> None:
        self._base_config = dict(scheduler.config)
        self._classes: dict[str, type[SchedulerMixin]] = {}
        entries: list[SchedulerEntry] = []
        for cls in sorted(scheduler.compatibles, key=lambda c: c.__name__):
            class_name = cls.__name__
            if class_name in EXCLUDED:
                continue
            self._classes[class_name] = cls
            known = _KNOWN.get(class_name)
            entries.extend(
                known
                or (
                    SchedulerEntry(
                        class_name.removesuffix("Scheduler"), class_name, _UNKNOWN_DEFAULT_STEPS
                    ),
                )
            )
        self.entries: tuple[SchedulerEntry, ...] = tuple(
            sorted(entries, key=lambda entry: entry.name.lower())
        )
        self.default: SchedulerEntry = self.resolve(type(scheduler).__name__)

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def resolve(self, name: str) -> SchedulerEntry:
        """Display name ("Euler a") or class name ("EulerAncestralDiscreteScheduler")."""
        key = (name or "").strip().lower()
        for entry in self.entries:
            if key == entry.name.lower():
                return entry
        for entry in self.entries:
            if key == entry.class_name.lower():
                return entry
        if name in EXCLUDED:
            raise SchedulerError(f"scheduler {name!r} is not offered: {EXCLUDED[name]}")
        raise SchedulerError(f"unknown scheduler {name!r}; choose one of: {', '.join(self.names)}")

    def make(self, name: str) -> SchedulerMixin:
        """A fresh scheduler, configured from the model's own scheduler config."""
        entry = self.resolve(name)
        return self._classes[entry.class_name].from_config(self._base_config, **entry.overrides)

    def config(self, name: str) -> dict[str, Any]:
        """The whole config of a fresh scheduler of this name, its class name included: what a
        plan renders with (`make_exact`) and a recipe records."""
        return json.loads(self.make(name).to_json_string())

    def make_exact(self, config: dict[str, Any]) -> SchedulerMixin:
        """A fresh scheduler from a recorded config (its `_class_name` included), to replay."""
        class_name = config.get("_class_name", "")
        if class_name not in self._classes:
            raise SchedulerError(f"this model cannot use {class_name or 'an unnamed scheduler'}")
        return self._classes[class_name].from_config(config)
