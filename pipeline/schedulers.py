"""Scheduler registry: A1111-style display names, diffusers classes, sensible step counts.

The registry is built from the loaded pipeline's `scheduler.compatibles`, so it offers what
that model can use. `make` always returns a NEW scheduler from the model's own config: a
scheduler keeps per-run state, so the cached pipeline's scheduler is never handed out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import diffusers
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
    "LCMScheduler": (SchedulerEntry("LCM", "LCMScheduler", 4, stochastic=True),),
    # The engine's eta is 0, which makes TCD's gamma 0: deterministic, no noise drawn.
    "TCDScheduler": (SchedulerEntry("TCD", "TCDScheduler", 4),),
}

# What few-step models sample with (pipeline/fewstep.py names the ones that fit each kind): an
# ordinary model's `compatibles` do not list LCM or TCD, and SD-Turbo, SDXL-Lightning and
# Hyper-SD want their schedulers' timesteps "trailing" (the first step at pure noise, t=999).
FEW_STEP: dict[str, SchedulerEntry] = {
    entry.name: entry
    for entry in (
        _KNOWN["LCMScheduler"][0],
        _KNOWN["TCDScheduler"][0],
        SchedulerEntry(
            "Euler trailing", "EulerDiscreteScheduler", 4, {"timestep_spacing": "trailing"}
        ),
        SchedulerEntry(
            "Euler a trailing",
            "EulerAncestralDiscreteScheduler",
            4,
            {"timestep_spacing": "trailing"},
            stochastic=True,
        ),
        # SDXL-Lightning's 1-step UNet predicts the image itself, not the noise.
        SchedulerEntry(
            "Euler trailing x0",
            "EulerDiscreteScheduler",
            1,
            {"timestep_spacing": "trailing", "prediction_type": "sample"},
        ),
        SchedulerEntry("DDIM trailing", "DDIMScheduler", 4, {"timestep_spacing": "trailing"}),
    )
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

    def __init__(self, scheduler: SchedulerMixin, fitting: tuple[str, ...] = ()) -> None:
        """`fitting`: the FEW_STEP names a few-step model samples with, offered as well."""
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
        for name in fitting:
            entry = FEW_STEP[name]
            self._classes.setdefault(entry.class_name, getattr(diffusers, entry.class_name))
            if entry not in entries:
                entries.append(entry)
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


# A recipe's scheduler, as a client sends it ------------------------------------------------
#
# A recipe (a dropped PNG, an imported manifest) names its scheduler by a whole diffusers
# config, and `from_config` takes whatever it is given: `num_train_timesteps: 10**9` would
# build a schedule of that length under the model lock. So a recipe's config is never built
# as it comes: it must be one the app itself writes for this model.


def recipe_scheduler(
    registry: SchedulerRegistry, sampler: Any, config: Any
) -> tuple[str, dict[str, Any]]:
    """The display name and exact config to render a recipe's scheduler with: the loaded
    model's own config with the overrides of one of the registry's entries for that class.

    Every key the recipe gives must be a key this app writes for that class, with a value it
    writes there (same type, same value); anything else is a SchedulerError naming the key.
    Keys the recipe leaves out are the model's own (recipes from before a key existed).
    """
    if not isinstance(config, dict):
        raise SchedulerError(f"must be a scheduler config, got {type(config).__name__}")
    class_name = config.get("_class_name")
    written = {
        entry.name: registry.config(entry.name)
        for entry in registry.entries
        if entry.class_name == class_name
    }
    if not written:
        shown = class_name if isinstance(class_name, str) else repr(class_name)
        raise SchedulerError(f"_class_name: this model cannot use {shown[:80]}")
    for key, value in config.items():
        if not isinstance(key, str) or key.startswith("_"):  # _class_name, _diffusers_version
            continue
        allowed = [own[key] for own in written.values() if key in own]
        if not allowed:
            raise SchedulerError(f"{key[:80]}: not a setting of {class_name}")
        if not any(_same(value, own) for own in allowed):
            choices = ", ".join(dict.fromkeys(json.dumps(own) for own in allowed))
            raise SchedulerError(
                f"{key}: must be {choices} for {class_name} on this model, got {_shown(value)}"
            )
    matching = [
        name
        for name, own in written.items()
        if all(_same(value, own.get(key)) for key, value in config.items() if key in own)
    ]
    if not matching:
        raise SchedulerError(f"no scheduler of this model has this combination of {class_name}")
    name = sampler if sampler in matching else matching[0]
    return name, written[name]


def _same(value: Any, own: Any) -> bool:
    """Equal and of the same JSON type: True is not 1, 1 is not 1.0."""
    return json.dumps(value, sort_keys=True) == json.dumps(own, sort_keys=True)


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool) else repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
