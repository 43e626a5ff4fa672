"""Few-step models (SD-Turbo, LCM, LCM-LoRA, TCD, SDXL-Lightning, Hyper-SD) and their defaults.

They exist to make exploration cheap (1-8 steps instead of 20-50), and SD 1.5's defaults (20+
steps, CFG 7.5) ruin their images. A model is recognised from its own files where they say so
(an LCM or TCD scheduler config; a UNet with `time_cond_proj_dim`, LCM's guidance embedding),
else from the names of the model and its LoRAs, with the settings their model cards and the
diffusers docs give. `--default-steps/--default-guidance/--default-scheduler` override.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from diffusers import DiffusionPipeline


@dataclass(frozen=True)
class ModelDefaults:
    """The settings a few-step model is meant to run with, and why they were chosen."""

    kind: str  # "turbo", "lcm", "lcm-lora", "tcd", "lightning", "hyper-sd"
    steps: int
    steps_range: tuple[int, int]  # what the model card calls sensible
    guidance_scale: float
    # The schedulers that fit (pipeline/schedulers.py FEW_STEP), the first the default. An
    # LCM-distilled UNet's guidance goes in as its `timestep_cond` embedding, with no
    # unconditional batch, as diffusers does whenever `time_cond_proj_dim` is set.
    schedulers: tuple[str, ...]
    reason: str = ""
    title: str = "few-step model"  # or "model card": a flow family's card defaults

    def describe(self) -> str:
        """One line for people: what was recognised, from what, and its settings."""
        low, high = self.steps_range
        steps = f"{low}-{high}" if low != high else f"{low}"
        return (
            f"{self.title} ({self.kind}, from {self.reason}): {self.steps} steps "
            f"(card: {steps}), CFG {self.guidance_scale:g}, {self.schedulers[0]}"
        )


def _lcm(reason: str, embedding: bool) -> ModelDefaults:
    if embedding:  # LCM-distilled (LCM_Dreamshaper_v7, lcm-sdxl): steps 4, w = 8
        return ModelDefaults("lcm", 4, (2, 8), 8.0, ("LCM", "TCD"), reason)
    return ModelDefaults("lcm-lora", 4, (4, 8), 1.0, ("LCM", "TCD"), reason)


def _tcd(reason: str) -> ModelDefaults:
    return ModelDefaults("tcd", 4, (2, 8), 0.0, ("TCD", "LCM"), reason)


def _turbo(reason: str) -> ModelDefaults:
    return ModelDefaults(
        "turbo", 1, (1, 4), 0.0, ("Euler trailing", "Euler a trailing", "LCM"), reason
    )


def _lightning(steps: int, reason: str) -> ModelDefaults:
    scheduler = "Euler trailing x0" if steps == 1 else "Euler trailing"
    return ModelDefaults("lightning", steps, (steps, steps), 0.0, (scheduler,), reason)


def _hyper(steps: int, cfg: bool, reason: str) -> ModelDefaults:
    if steps == 1:  # the 1-step unified LoRA samples with TCD at any step count
        return ModelDefaults("hyper-sd", 1, (1, 8), 0.0, ("TCD",), reason)
    guidance = 5.0 if cfg else 0.0  # the CFG-preserved LoRAs take guidance 5-8
    return ModelDefaults(
        "hyper-sd", steps, (steps, steps), guidance, ("DDIM trailing", "TCD"), reason
    )


# Names as the hub and the model cards spell them (case-insensitive), matched on a model's or a
# LoRA's last path component without its suffix.
_NAMED: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"sd-?_?(xl-?_?)?turbo(_1\.0)?(_fp16)?"), lambda m, r: _turbo(r)),
    (
        re.compile(r"sdxl_lightning_(\d)step(_unet|_lora)?"),
        lambda m, r: _lightning(int(m[1]), r),
    ),
    (
        re.compile(r"hyper-sd(?:15|xl)-(\d+)-?steps?(-cfg)?-lora"),
        lambda m, r: _hyper(int(m[1]), bool(m[2]), r),
    ),
    (re.compile(r"lcm[-_]?lora.*"), lambda m, r: _lcm(r, embedding=False)),
    (re.compile(r"tcd-.*lora"), lambda m, r: _tcd(r)),
]


def named_defaults(name: str) -> ModelDefaults | None:
    """Defaults from a hub id, a folder or a file whose name a few-step model card uses."""
    stem = PurePath(name.rstrip("/")).name
    stem = re.sub(r"\.(safetensors|ckpt)$", "", stem, flags=re.IGNORECASE).lower()
    for pattern, make in _NAMED:
        match = pattern.fullmatch(stem)
        if match:
            return make(match, f"the name {stem}")
    return None


def recognise(
    model: str, pipe: DiffusionPipeline, lora_sources: Iterable[str] = ()
) -> ModelDefaults | None:
    """The model's few-step defaults, or None for an ordinary model.

    A LoRA that makes a model few-step (LCM-LoRA, Hyper-SD, Lightning, TCD) decides; then the
    model's own files; then its name.
    """
    for source in lora_sources:
        found = named_defaults(source)
        if found:
            return found
    embedding = pipe.unet.config.get("time_cond_proj_dim") is not None
    scheduler = pipe.scheduler.config.get("_class_name", type(pipe.scheduler).__name__)
    if scheduler == "LCMScheduler" or embedding:
        reason = "the UNet's time_cond_proj_dim" if embedding else "its LCMScheduler config"
        return _lcm(reason, embedding)
    if scheduler == "TCDScheduler":
        return _tcd("its TCDScheduler config")
    return named_defaults(model)
