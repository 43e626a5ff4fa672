"""The one cached pipeline: a hub id, a local diffusers folder, a single-file checkpoint or a
transformer on its own (pipeline/checkpoints.py) or a built-in tiny model, with the LoRAs given
at start-up (pipeline/lora.py) fused in, quantized and offloaded as asked (pipeline/quantize.py).

Loaded once per process and shared by every tab and every user. The pipeline never goes into
gr.State (Gradio deep-copies state per session); it lives here. A pipeline of a family the app
does not render (pipeline/families.py) is refused by its class name, before its weights load.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import huggingface_hub.constants
import torch
from diffusers import DiffusionPipeline
from huggingface_hub import snapshot_download, try_to_load_from_cache
from huggingface_hub.utils import get_session

from pipeline.checkpoints import (
    CheckpointError,
    ModelIdentity,
    check_single_file,
    check_transformer_file,
    folder_identity,
    is_single_file,
    is_transformer_file,
    load_single_file,
    load_transformer_file,
    model_index,
    single_file_identity,
)
from pipeline.families import Family, UnsupportedFamily, family_for_class, family_of
from pipeline.fewstep import ModelDefaults, recognise
from pipeline.lora import LoadedLora, LoraError, LoraSpec, apply_loras
from pipeline.plan import Defaults
from pipeline.quantize import (
    QUANT_HINT,
    QuantizeError,
    check_offload,
    check_quantize,
    pipeline_quantization,
    quantized_components,
)
from pipeline.quiet import quiet_loading
from pipeline.schedulers import FLOW_FEW_STEPS, SchedulerRegistry, flow_samplers
from pipeline.tiny import TINY_FLOW_MODELS, TINY_MODELS, build_tiny_pipeline

DEFAULT_MODEL_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
HUB_PROBE_S = 3.0  # one request to the hub says whether it answers; then no retries
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
# diffusers' ValueError for a repo or folder without the variant's files (pipeline_utils and
# pipeline_loading_utils word it the same way); any other failure is reported as it happened.
_NO_FP16_VARIANT = re.compile(r"variant=fp16`, but no such modeling files are available")
_COMMIT = re.compile(r"[0-9a-f]{40}")  # a hub snapshot folder is named by its commit
CHECKPOINT_HINT = (
    "a single file is an SD 1.x, 2.x or XL text-to-image checkpoint as .safetensors; offline, "
    "--config DIR|ID names its diffusers configs"
)
FAMILY_HINT = "start with a Stable Diffusion 1.x, 2.x, XL, 3 or Flux.1 model, or --model tiny-flux"
LORA_HINT = (
    "pass LoRAs made for this model's family and files diffusers can read, or leave --lora out"
)


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
    identity: ModelIdentity | None = None  # the weight files' hash; None for a tiny model
    safety_checker: bool = False  # the model ships one and it is on
    config: str | None = None  # --config: where a single file's configs came from
    loras: tuple[LoadedLora, ...] = ()
    overrides: Defaults = field(default_factory=Defaults)  # --default-steps and the like
    offload: str | None = None  # --offload: diffusers' "model" or "sequential" CPU offload
    quantize: str | None = None  # --quantize: the backend, as pipeline/quantize.py names it

    @property
    def is_tiny(self) -> bool:
        return self.model_id in TINY_MODELS

    @cached_property
    def family(self) -> Family:
        return family_of(self.pipe)

    @cached_property
    def few_step(self) -> ModelDefaults | None:
        """What a few-step model (or LoRA) is meant to run with, or a flow family's model card
        defaults; None for an ordinary Stable Diffusion model."""
        card = self.family.card_defaults(self.model_id, self.pipe)
        if card is not None:
            return card
        return recognise(self.model_id, self.pipe, [lora.source for lora in self.loras])

    @cached_property
    def registry(self) -> SchedulerRegistry:
        """The schedulers this model can use, built from its own scheduler, and those a
        few-step model samples with; a flow family's are the flow samplers that fit it."""
        if self.family.flow:
            few = self.few_step is not None and self.few_step.steps <= FLOW_FEW_STEPS
            return SchedulerRegistry(self.pipe.scheduler, offered=flow_samplers(few))
        fitting = self.few_step.schedulers if self.few_step else ()
        return SchedulerRegistry(self.pipe.scheduler, fitting)

    @property
    def guidance_kind(self) -> str:
        return self.family.guidance_kind(self.pipe)

    @cached_property
    def defaults(self) -> Defaults:
        """The few-step model's defaults, each overridden where `--default-*` says."""
        own, told = self.few_step, self.overrides
        guidance = own.guidance_scale if own else None
        return Defaults(
            scheduler=told.scheduler or (own.schedulers[0] if own else None),
            steps=told.steps or (own.steps if own else None),
            guidance_scale=guidance if told.guidance_scale is None else told.guidance_scale,
            compare=own.schedulers if own else None,
        )

    @property
    def native_size(self) -> int:
        """The resolution the model was trained at: its sample size times the VAE's scale."""
        return self.family.native_size(self.pipe)


_Key = tuple[str, str, str, bool, str | None, tuple[LoraSpec, ...], str | None, str | None]
_cache: dict[_Key, LoadedModel] = {}
_cache_lock = threading.Lock()


def pick_device(requested: str = "auto") -> str:
    """'auto' takes CUDA, then Apple's MPS, then the CPU; a device that is not there is refused."""
    if requested == "cuda" and not torch.cuda.is_available():
        build = (
            "a CPU-only build" if torch.version.cuda is None else "a CUDA build that sees no GPU"
        )
        raise ModelLoadError(
            f"--device cuda, but this torch {torch.__version__} is {build}",
            "use --device cpu or auto, or install a torch build for this machine's GPU",
        )
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(
            "--device mps, but Apple's MPS is not available", "use --device cpu or auto"
        )
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(requested: str, device: str, flow: bool = False) -> torch.dtype:
    """'auto' is float16 on CUDA (bfloat16 for a flow family: fp16 overflows in T5 and Flux)
    and float32 elsewhere; float16, bfloat16, float32 on request."""
    if requested == "auto":
        if not device.startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if flow else torch.float16
    if requested not in DTYPES:
        raise ModelLoadError(f"dtype must be auto or one of {', '.join(DTYPES)}, got {requested!r}")
    return DTYPES[requested]


def model_dtype(model: str, config: str | None, requested: str, device: str) -> torch.dtype:
    """The dtype `model` loads in on `device`: `requested`, or for "auto" its family's, known
    from its files before the weights load (a flow family's bfloat16 on CUDA)."""
    return pick_dtype(requested, device, requested == "auto" and _is_flow(model, config))


def load_model(
    model: str,
    device: str = "auto",
    safety_checker: bool = True,
    dtype: str = "auto",
    config: str | None = None,
    loras: tuple[LoraSpec, ...] = (),
    offload: str | None = None,
    quantize: str | None = None,
) -> LoadedModel:
    """The cached pipeline for `model` on `device` in `dtype` with `loras` fused in, loading it
    on first use (thread-safe). `config` is where a single file's configs come from
    (--config). A safety checker the model ships stays on unless `safety_checker` is False.
    `offload`: diffusers' "model" or "sequential" CPU offload; `quantize`: a backend of
    pipeline/quantize.py for the denoiser and the big text encoders.
    """
    device = pick_device(device)
    try:
        check_offload(offload, device)
        check_quantize(quantize, device)
    except QuantizeError as error:
        raise ModelLoadError(str(error), QUANT_HINT if quantize else "run on CUDA") from error
    key = (model, device, dtype, safety_checker, config, loras, offload, quantize)
    with _cache_lock, quiet_loading():
        if key not in _cache:
            torch_dtype = model_dtype(model, config, dtype, device)
            started = time.perf_counter()
            pipe, identity = _build(model, torch_dtype, safety_checker, config, quantize)
            try:
                applied = tuple(apply_loras(pipe, loras))
            except LoraError as error:
                raise ModelLoadError(str(error), LORA_HINT) from error
            if offload == "model":
                pipe.enable_model_cpu_offload(device=device)
            elif offload == "sequential":
                pipe.enable_sequential_cpu_offload(device=device)
            else:
                pipe = pipe.to(device)
            pipe.set_progress_bar_config(disable=True)
            _cache[key] = LoadedModel(
                pipe,
                model,
                device,
                torch_dtype,
                time.perf_counter() - started,
                revision=_revision(model),
                identity=identity,
                safety_checker=getattr(pipe, "safety_checker", None) is not None,
                config=config,
                loras=applied,
                offload=offload,
                quantize=quantize,
            )
        return _cache[key]


def load_model_or_tiny(
    model: str,
    explicit: bool,
    device: str = "auto",
    safety_checker: bool = True,
    dtype: str = "auto",
    loras: tuple[LoraSpec, ...] = (),
    offload: str | None = None,
    quantize: str | None = None,
) -> LoadedModel:
    """A model the user named must load; the default model may fall back to the tiny one
    (without the LoRAs, which are for the default model), but not for a LoRA that failed nor
    a setting this machine cannot run (offload, quantization). The default model out of reach
    (offline, not cached) falls back at once: no lookups, no retries."""
    why = None if explicit else _out_of_reach(model)
    if why is None:
        try:
            return load_model(
                model,
                device,
                safety_checker,
                dtype,
                loras=loras,
                offload=offload,
                quantize=quantize,
            )
        except ModelLoadError as error:
            if explicit or isinstance(error.__cause__, (LoraError, QuantizeError)):
                raise
            why = f"could not be loaded: {error}"
    notice = (
        f"The default model {model} {why}, so the built-in tiny model is running (its images "
        "are noise): start with --model tiny to say so, or --model <a local diffusers folder>, "
        "or run once online to cache the model."
    )
    return replace(load_model(TINY_MODELS[0], device, safety_checker, dtype), notice=notice)


def _out_of_reach(model: str) -> str | None:
    """Why a hub model cannot load before anything tries, in words; None when it may: it is
    cached, or the hub answers. Asked once, quickly, instead of a lookup per file with
    retries."""
    if Path(model).expanduser().exists():
        return None
    if try_to_load_from_cache(model, "model_index.json") is not None:
        return None
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return "is not in the Hugging Face cache and this machine is offline (HF_HUB_OFFLINE)"
    try:
        get_session().head(huggingface_hub.constants.ENDPOINT, timeout=HUB_PROBE_S)
    except Exception:  # DNS, refused, timed out, a proxy's refusal: the hub is out of reach
        return (
            "is not in the Hugging Face cache and this machine is offline "
            f"({huggingface_hub.constants.ENDPOINT} does not answer)"
        )
    return None


def _build(
    model: str,
    dtype: torch.dtype,
    safety_checker: bool,
    config: str | None,
    quantize: str | None = None,
) -> tuple[DiffusionPipeline, ModelIdentity | None]:
    """The pipeline in `dtype` on the CPU, and what identifies its weights."""
    if model in TINY_MODELS:
        if quantize:
            return _quantized_tiny(model, dtype, quantize), None
        pipe = build_tiny_pipeline(model)
        return (pipe if dtype == torch.float32 else pipe.to(dtype=dtype)), None
    if is_single_file(model):
        try:
            if is_transformer_file(Path(model), config):
                checked = check_transformer_file(Path(model), config)
                _family_of_index(checked.model_index)
                quantization = _quantization(checked.model_index, quantize, dtype, True)
                pipe = load_transformer_file(checked, dtype, quantization)
                return pipe, single_file_identity(checked.path)
            if quantize:
                raise CheckpointError(
                    "--quantize is for a diffusers folder, a hub id or a transformer file; "
                    f"{Path(model).name} is a whole Stable Diffusion checkpoint"
                )
            checked = check_single_file(Path(model), config)
            return load_single_file(checked, dtype), single_file_identity(checked.path)
        except CheckpointError as error:
            raise ModelLoadError(str(error), CHECKPOINT_HINT) from error
        except UnsupportedFamily as error:
            raise ModelLoadError(str(error), FAMILY_HINT) from None
    if config:
        raise ModelLoadError(
            f"--config is for a single-file checkpoint; {model} has its own configs",
            "leave --config out",
        )
    looks_like_path = model.startswith((".", "/", "~")) or Path(model).exists()
    if looks_like_path:
        folder = Path(model).expanduser()
        if not (folder / "model_index.json").is_file():
            raise ModelLoadError(f"{model} is not a diffusers folder (no model_index.json)")
        model = str(folder)
    try:
        index = model_index(model)
        _family_of_index(index)
        quantization = _quantization(index, quantize, dtype)
        pipe = _from_pretrained(model, dtype, safety_checker, quantization)
        family_of(pipe)  # the class named the family; the loaded pipeline must agree
        # A hub id's weights are the files of the snapshot it was loaded from.
        files = Path(model if looks_like_path else snapshot_download(model, local_files_only=True))
        identity = folder_identity(files, name=None if looks_like_path else model)
    except UnsupportedFamily as error:
        raise ModelLoadError(str(error), FAMILY_HINT) from None
    except Exception as error:  # any failure to load is reported as one line, not a trace
        raise ModelLoadError(_first_line(error)) from error
    return pipe, identity


def _family_of_index(index: dict) -> Family:
    """Refuse another family by the pipeline class model_index.json names, before the weights
    load."""
    return family_for_class(str(index.get("_class_name", "an unnamed pipeline")))


def _quantization(
    index: dict, quantize: str | None, dtype: torch.dtype, transformer_file: bool = False
) -> object | None:
    """diffusers' quantization config for this pipeline, or None without --quantize."""
    if quantize is None:
        return None
    return pipeline_quantization(quantize, quantized_components(index, transformer_file), dtype)


def _quantized_tiny(model: str, dtype: torch.dtype, quantize: str) -> DiffusionPipeline:
    """A tiny model through the path a real one takes: saved, then loaded with
    `--quantize`'s config."""
    with tempfile.TemporaryDirectory() as folder:
        build_tiny_pipeline(model).save_pretrained(folder)
        index = model_index(folder)
        return _from_pretrained(folder, dtype, True, _quantization(index, quantize, dtype))


def _is_flow(model: str, config: str | None) -> bool:
    """Whether the model is of a flow family (its default dtype on CUDA is bfloat16), known
    before its weights load; a model that cannot say is refused later, by `_build`."""
    if model in TINY_MODELS:
        return model in TINY_FLOW_MODELS
    try:
        if is_transformer_file(Path(model), config):
            return _family_of_index(check_transformer_file(Path(model), config).model_index).flow
        if is_single_file(model) or config:
            return False
        path = Path(model).expanduser()
        return _family_of_index(model_index(str(path) if path.exists() else model)).flow
    except Exception:  # `_build` says why the model cannot load
        return False


def _from_pretrained(
    model: str, dtype: torch.dtype, safety_checker: bool, quantization: object | None = None
) -> DiffusionPipeline:
    """Safetensors only, no remote code; the fp16 weights variant where the model has one."""
    kwargs: dict = {"dtype": dtype, "use_safetensors": True, "quantization_config": quantization}
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


def _revision(model: str) -> str | None:
    """The hub commit a hub id's files were loaded from: the name of its snapshot folder in
    the hub cache. None for a folder, a single file or a tiny model."""
    if model in TINY_MODELS or is_single_file(model) or Path(model).exists():
        return None
    try:
        folder = Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not a hub id, or not cached: nothing to name
        return None
    return folder.name if _COMMIT.fullmatch(folder.name) else None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    line = text.splitlines()[0]
    return line if len(line) <= 240 else line[:239] + "…"
