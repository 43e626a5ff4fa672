"""The one cached pipeline: a hub id, a local diffusers folder, or the built-in tiny model.

Loaded once per process and shared by every tab and every user. The pipeline never goes into
gr.State (Gradio deep-copies state per session); it lives here.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from pipeline.tiny import TINY_MODEL_ID, build_tiny_pipeline

DEFAULT_MODEL_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
_NEEDED_CALL_ARGS = ("prompt", "negative_prompt", "generator", "callback_on_step_end", "width")
# diffusers' ValueError for a repo or folder without the variant's files (pipeline_utils and
# pipeline_loading_utils word it the same way); any other failure is reported as it happened.
_NO_FP16_VARIANT = re.compile(r"variant=fp16`, but no such modeling files are available")


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded, with one line on why."""


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
        return self.model_id == TINY_MODEL_ID

    @property
    def native_size(self) -> int:
        """The resolution the model was trained at: UNet sample size times the VAE's scale."""
        return self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor


_cache: dict[tuple[str, str], LoadedModel] = {}
_cache_lock = threading.Lock()


def pick_device(requested: str = "auto") -> str:
    """'auto' takes CUDA, then Apple's MPS, then the CPU; a device that is not there is refused."""
    if requested == "cuda" and not torch.cuda.is_available():
        build = (
            "a CPU-only build" if torch.version.cuda is None else "a CUDA build that sees no GPU"
        )
        raise ModelLoadError(
            f"--device cuda, but this torch {torch.__version__} is {build}; use --device cpu "
            "or auto"
        )
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("--device mps, but Apple's MPS is not available; use --device cpu")
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_model(model: str, device: str = "auto", safety_checker: bool = True) -> LoadedModel:
    """The cached pipeline for `model` on `device`, loading it on first use (thread-safe).

    A safety checker the model ships stays on unless `safety_checker` is False.
    """
    device = pick_device(device)
    key = (model, device, safety_checker)
    with _cache_lock:
        if key not in _cache:
            dtype = torch.float16 if device == "cuda" else torch.float32
            started = time.perf_counter()
            pipe = _build(model, dtype, safety_checker).to(device)
            pipe.set_progress_bar_config(disable=True)
            _cache[key] = LoadedModel(
                pipe,
                model,
                device,
                dtype,
                time.perf_counter() - started,
                revision=_revision(pipe),
                weights_hash=_weights_hash(pipe),
                safety_checker=getattr(pipe, "safety_checker", None) is not None,
            )
        return _cache[key]


def load_model_or_tiny(
    model: str, explicit: bool, device: str = "auto", safety_checker: bool = True
) -> LoadedModel:
    """A model the user named must load; the default model may fall back to the tiny one."""
    try:
        return load_model(model, device, safety_checker)
    except ModelLoadError as error:
        if explicit:
            raise
        notice = (
            f"The default model {model} could not be loaded ({error}), so the built-in tiny "
            "model is running and its images are noise. Fix: run once with internet access "
            "to cache the model, or start with --model pointing at a local diffusers folder."
        )
        return replace(load_model(TINY_MODEL_ID, device, safety_checker), notice=notice)


def _build(model: str, dtype: torch.dtype, safety_checker: bool) -> DiffusionPipeline:
    if model == TINY_MODEL_ID:
        pipe = build_tiny_pipeline()
        return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
    looks_like_path = model.startswith((".", "/", "~")) or Path(model).exists()
    if looks_like_path:
        folder = Path(model).expanduser()
        if not (folder / "model_index.json").is_file():
            raise ModelLoadError(f"{model} is not a diffusers folder (no model_index.json)")
        model = str(folder)
    try:
        pipe = _from_pretrained(model, dtype, safety_checker)
    except Exception as error:  # any failure to load is reported as one line, not a trace
        raise ModelLoadError(_first_line(error)) from error
    missing = [a for a in _NEEDED_CALL_ARGS if a not in inspect.signature(pipe.__call__).parameters]
    if missing or not hasattr(pipe, "unet"):
        raise ModelLoadError(
            f"{type(pipe).__name__} is not a UNet text-to-image pipeline "
            "(Stable Diffusion 1.x, 2.x or XL)"
        )
    return pipe


def _from_pretrained(model: str, dtype: torch.dtype, safety_checker: bool) -> DiffusionPipeline:
    """Safetensors only, no remote code; the fp16 weights variant where the model has one."""
    kwargs: dict = {"dtype": dtype, "use_safetensors": True}
    if not safety_checker:
        kwargs |= {"safety_checker": None, "requires_safety_checker": False}
    if dtype == torch.float16:
        try:
            return DiffusionPipeline.from_pretrained(model, variant="fp16", **kwargs)
        except ValueError as error:
            if not _NO_FP16_VARIANT.search(str(error)):
                raise
            # no fp16 variant in this repo or folder: the full weights, cast on load
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
