"""One way to set up an engine: the app, `python -m pipeline.replay` and the benchmarks.

Loading, precision, LoRAs, the safety-checker setting and the speed switches are applied here
and nowhere else, so a replay or a benchmark renders on the same setup the app would, and every
recipe records it (Recipe.safety_checker, Recipe.speedups, dtype, loras, model_config).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pipeline import accel
from pipeline.accel import Speedups
from pipeline.engine import DEFAULT_MICRO_BATCH, Engine
from pipeline.engines import Engines
from pipeline.loading import LoadedModel, ModelLoadError, load_model, load_model_or_tiny
from pipeline.lora import LoraSpec
from pipeline.plan import Defaults
from pipeline.recipe import Recipe, offload_of
from pipeline.requests import Limits, RequestError
from pipeline.sharing import default_rows

log = logging.getLogger("seed_explorer")
# Noise that is the same on any machine: CPU generators, and A1111's NV noise made on the CPU.
PORTABLE = ("cpu", "nv")


@dataclass(frozen=True)
class EngineSettings:
    """How to set up an engine; the defaults are the app's."""

    model: str
    device: str = "auto"
    dtype: str = "auto"
    safety_checker: bool = True
    attention_slicing: bool = False
    compile: bool = False
    offload: str | None = None  # diffusers' "model" or "sequential" CPU offload (--offload)
    quantize: str | None = None  # --quantize's backend (pipeline/quantize.py)
    generator_device: str = "cpu"  # "cpu", "nv" (A1111's NV noise), or "model": its device
    micro_batch: int | None = DEFAULT_MICRO_BATCH
    limits: Limits = field(default_factory=Limits)
    fall_back_to_tiny: bool = False  # the default model, not one a user named
    config: str | None = None  # --config, for a single-file checkpoint
    loras: tuple[LoraSpec, ...] = ()
    defaults: Defaults = field(default_factory=Defaults)  # --default-steps and the like
    # Runs share denoiser calls step by step (pipeline/sharing.py), in calls of `max_batch`
    # rows (None: the device's default); off: one run at a time under the model lock.
    share_steps: bool = False
    max_batch: int | None = None

    @classmethod
    def for_recipe(cls, recipe: Recipe, model: str | None = None, device: str | None = None):
        """The setup that rendered a recipe (its model and device unless told otherwise)."""
        speedups = recipe.speedups or {}
        return cls(
            model=model or recipe.model_id,
            device=device or recipe.device,
            dtype=recipe.dtype,
            safety_checker=recipe.safety_checker,
            attention_slicing=bool(speedups.get("attention_slicing")),
            compile=bool(speedups.get("compile")),
            offload=offload_of(recipe),
            quantize=recipe.quantize,
            generator_device=recipe.generator_device
            if recipe.generator_device in PORTABLE
            else "model",
            config=recipe.model_config,
            loras=tuple(LoraSpec(lora["source"], lora["weight"]) for lora in recipe.loras),
        )


def build_engine(settings: EngineSettings) -> Engine:
    """Load the model (cached per process), switch it as the settings say, wrap it."""
    return _engine_on(_load(settings), settings)


def build_engines(settings: EngineSettings, devices: Sequence[str]) -> Engine | Engines:
    """One engine per device, each on its own copy of the model (a device named twice gets a
    second copy), as one engine; one device is a plain engine."""
    engines: list[Engine] = []
    for device in devices:
        on_device = replace(settings, device=device)
        model = _load(on_device)
        if any(engine.model.pipe is model.pipe for engine in engines):
            model = replace(model, pipe=copy.deepcopy(model.pipe))
        engines.append(_engine_on(model, on_device))
    return engines[0] if len(engines) == 1 else Engines(engines)


def _load(settings: EngineSettings) -> LoadedModel:
    """The model the settings name, cached per process."""
    if settings.fall_back_to_tiny:
        model = load_model_or_tiny(
            settings.model,
            False,
            settings.device,
            settings.safety_checker,
            settings.dtype,
            settings.loras,
            settings.offload,
            settings.quantize,
        )
    else:
        model = load_model(
            settings.model,
            settings.device,
            settings.safety_checker,
            settings.dtype,
            settings.config,
            settings.loras,
            settings.offload,
            settings.quantize,
        )
    if settings.defaults != Defaults():
        model = replace(model, overrides=settings.defaults)
    return model


def _engine_on(model: LoadedModel, settings: EngineSettings) -> Engine:
    """The engine on a loaded model, with the settings' speed switches applied."""
    speedups = Speedups.for_device(model.device, settings.attention_slicing, settings.compile)
    accel.apply(model.pipe, speedups)
    log.info(
        "Attention %s; channels_last UNet %s; attention slicing %s; torch.compile %s",
        accel.attention_kind(model.pipe),
        *("on" if on else "off" for on in speedups.as_dict().values()),
    )
    generator_device = settings.generator_device
    generator_device = generator_device if generator_device in PORTABLE else model.device
    rows = (settings.max_batch or default_rows(model.device)) if settings.share_steps else None
    engine = Engine(model, settings.limits, generator_device, settings.micro_batch, speedups, rows)
    try:
        engine.planner.defaults()  # a default that cannot run stops start-up, not every run
    except RequestError as error:
        raise ModelLoadError(
            f"the default {error}",
            "fix --default-steps, --default-guidance or --default-scheduler (or their variables)",
        ) from None
    return engine
