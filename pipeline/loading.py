"""The one cached pipeline: a hub id, a local diffusers folder, or a built-in tiny model.

Loaded once per process and shared by every tab and every user. The pipeline never goes into
gr.State (Gradio deep-copies state per session); it lives here. A pipeline of a family the app
does not render (pipeline/families.py) is refused by its class name, before its weights load.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from pipeline.families import Family, UnsupportedFamily, family_for_class, family_of
from pipeline.schedulers import SchedulerRegistry
from pipeline.tiny import TINY_MODELS, build_tiny_pipeline

DEFAULT_MODEL_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded, with one line on why and, where it helps, what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class LoadedModel:
    """The cached pipeline and what the UI says about it."""

    pipe: DiffusionPipeline
    model_id: str
    device: str
    dtype: torch.dtype
    seconds: float
    notice: str | None = None
    revision: str | None = None  # the hub commit the weights came from
    weights_hash: str | None = None  # sha256 of the UNet weights, first 10 hex digits
    safety_checker: bool = False  # the model ships one and it is on

    @property
    def is_tiny(self) -> bool:
        return self.model_id in TINY_MODELS

    @cached_property
    def family(self) -> Family:
        return family_of(self.pipe)

    @cached_property
    def registry(self) -> SchedulerRegistry:
        """The schedulers this model can use, built from its own scheduler."""
        return SchedulerRegistry(self.pipe.scheduler)

    @property
    def native_size(self) -> int:
        """The resolution the model was trained at: UNet sample size times the VAE's scale."""
        return self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor


_cache: dict[tuple[str, str, str, bool], LoadedModel] = {}
_cache_lock = threading.Lock()


def pick_device(requested: str = "auto") -> str:
    """'auto' takes CUDA, then Apple's MPS, then the CPU."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(requested: str, device: str) -> torch.dtype:
    """'auto' is float16 on CUDA and float32 elsewhere; float16, bfloat16, float32 on request."""
    if requested == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    if requested not in DTYPES:
        raise ModelLoadError(f"dtype must be auto or one of {', '.join(DTYPES)}, got {requested!r}")
    return DTYPES[requested]


def load_model(
    model: str, device: str = "auto", safety_checker: bool = True, dtype: str = "auto"
) -> LoadedModel:
    """The cached pipeline for `model` on `device` in `dtype`, loading it on first use
    (thread-safe). A safety checker the model ships stays on unless `safety_checker` is False.
    """
    device = pick_device(device)
    key = (model, device, dtype, safety_checker)
    with _cache_lock:
        if key not in _cache:
            torch_dtype = pick_dtype(dtype, device)
            started = time.perf_counter()
            pipe = _build(model, torch_dtype, safety_checker).to(device)
            pipe.set_progress_bar_config(disable=True)
            _cache[key] = LoadedModel(
                pipe,
                model,
                device,
                torch_dtype,
                time.perf_counter() - started,
                revision=_revision(pipe),
                weights_hash=_weights_hash(pipe),
                safety_checker=getattr(pipe, "safety_checker", None) is not None,
            )
        return _cache[key]


def load_model_or_tiny(
    model: str,
    explicit: bool,
    device: str = "auto",
    safety_checker: bool = True,
    dtype: str = "auto",
) -> LoadedModel:
    """A model the user named must load; the default model may fall back to the tiny one."""
    try:
        return load_model(model, device, safety_checker, dtype)
    except ModelLoadError as error:
        if explicit:
            raise
        notice = (
            f"The default model {model} could not be loaded ({error}), so the built-in tiny "
            "model is running and its images are noise. Fix: run once with internet access "
            "to cache the model, or start with --model pointing at a local diffusers folder."
        )
        return replace(load_model(TINY_MODELS[0], device, safety_checker, dtype), notice=notice)


def _build(model: str, dtype: torch.dtype, safety_checker: bool) -> DiffusionPipeline:
    if model in TINY_MODELS:
        pipe = build_tiny_pipeline(model)
        return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
    looks_like_path = model.startswith((".", "/", "~")) or Path(model).exists()
    if looks_like_path:
        folder = Path(model).expanduser()
        if not (folder / "model_index.json").is_file():
            raise ModelLoadError(f"{model} is not a diffusers folder (no model_index.json)")
        model = str(folder)
    try:
        _check_family(model, looks_like_path)
        pipe = _from_pretrained(model, dtype, safety_checker)
        family_of(pipe)  # the class named the family; the loaded pipeline must agree
    except UnsupportedFamily as error:
        hint = "start with a Stable Diffusion 1.x, 2.x or XL model, or try --model tiny-sdxl"
        raise ModelLoadError(str(error), hint) from None
    except Exception as error:  # any failure to load is reported as one line, not a trace
        raise ModelLoadError(_first_line(error)) from error
    return pipe


def _check_family(model: str, is_folder: bool) -> None:
    """Refuse another family by the pipeline class model_index.json names, before the weights
    load (a hub id fetches that one small file only)."""
    if is_folder:
        config = json.loads((Path(model) / "model_index.json").read_text(encoding="utf-8"))
    else:
        config = DiffusionPipeline.load_config(model)
    family_for_class(str(config.get("_class_name", "an unnamed pipeline")))


def _from_pretrained(model: str, dtype: torch.dtype, safety_checker: bool) -> DiffusionPipeline:
    """Safetensors only, no remote code; the fp16 weights variant where the model has one."""
    kwargs: dict = {"dtype": dtype, "use_safetensors": True}
    if not safety_checker:
        kwargs |= {"safety_checker": None, "requires_safety_checker": False}
    if dtype == torch.float16:
        try:
            return DiffusionPipeline.from_pretrained(model, variant="fp16", **kwargs)
        except (OSError, ValueError):
            pass  # no fp16 variant in this repo or folder: the full weights, cast on load
    return DiffusionPipeline.from_pretrained(model, **kwargs)


def _revision(pipe: DiffusionPipeline) -> str | None:
    """The hub commit of a pipeline loaded from the hub cache (.../snapshots/<commit>/)."""
    match = re.search(r"snapshots[/\\]([0-9a-f]{40})", str(pipe.config.get("_name_or_path", "")))
    return match.group(1) if match else None


def _weights_hash(pipe: DiffusionPipeline) -> str:
    """A short fingerprint of the UNet weights (A1111's "Model hash" is the same idea)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(pipe.unet.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:10]


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    line = text.splitlines()[0]
    return line if len(line) <= 240 else line[:239] + "…"
