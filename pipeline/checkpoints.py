"""Single-file checkpoints (A1111 / ComfyUI / civitai `.safetensors`) and what identifies weights.

A single file holds the UNet, VAE and text encoder in the original (CompVis) layout but no
configs: diffusers' `from_single_file` takes those from a diffusers folder or a hub id
(`--config`). The family is read from the file's key names and shapes exactly as diffusers reads
them, without loading a tensor, so a wrong file is refused before gigabytes are read.

A big flow model's transformer often comes alone, as ComfyUI users keep it: a GGUF file
(`Q8_0`, `Q4_K`, ... read with diffusers' `GGUFQuantizationConfig`, dequantised layer by layer
as it runs) or an fp8 `.safetensors` (kept in fp8, each layer cast up as it runs). The rest of
the pipeline (text encoders, VAE, scheduler) comes from `--config`, weights and all.

Identity is what the recipe and the infotext say about the weights, the same on every device:
a single file's sha256 (A1111's `Model hash` is its first 10 hex digits, civitai's AutoV2); a
diffusers folder's hash over its weight files on disk, which is ours and never written as
A1111's `Model hash`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffusers
import huggingface_hub.constants
import torch
from diffusers import (
    DiffusionPipeline,
    GGUFQuantizationConfig,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from diffusers.loaders.single_file_utils import (
    DIFFUSERS_DEFAULT_PIPELINE_PATHS,
    LDM_UNET_KEY,
    infer_diffusers_model_type,
)
from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors import SafetensorError, safe_open

from pipeline.metadata import write_atomic
from pipeline.quantize import package_missing

SINGLE_FILE_SUFFIX = ".safetensors"
GGUF_SUFFIX = ".gguf"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# diffusers' model types this app renders, and the family each one is.
FAMILY_OF_TYPE = {"v1": "sd1", "v2": "sd2", "xl_base": "sdxl", "playground-v2-5": "sdxl"}
PIPELINE_OF_FAMILY: dict[str, type[DiffusionPipeline]] = {
    "sd1": StableDiffusionPipeline,
    "sd2": StableDiffusionPipeline,
    "sdxl": StableDiffusionXLPipeline,
}
# What `from_single_file` reads from a hub config repo (as diffusers downloads it).
_CONFIG_PATTERNS = ["**/*.json", "*.json", "*.txt", "**/*.txt", "**/*.model"]
_REFUSED_TYPES = {
    "inpainting": "an inpainting checkpoint (9 input channels)",
    "inpainting_v2": "an SD 2 inpainting checkpoint (9 input channels)",
    "xl_inpaint": "an SDXL inpainting checkpoint (9 input channels)",
    "xl_refiner": "an SDXL refiner (it refines images, it does not start them)",
    "upscale": "an x4 upscaler",
}
_LORA_MARKERS = ("lora_down", "lora_up", "lora_A", "lora_B", "lora_unet_", "lora_te")
_HUB_BLOB = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with one line on why and what to do."""


@dataclass(frozen=True)
class ModelIdentity:
    """What identifies the weights in a recipe, whatever device or dtype they run in."""

    name: str  # infotext `Model`: a file's stem, a folder's name, a hub id
    sha256: str  # a file's sha256, or ours over a folder's weight files
    a1111_hash: str | None  # infotext `Model hash` (AutoV2); single files only


@dataclass(frozen=True)
class SingleFile:
    """A checked single-file checkpoint: its family and where its configs come from."""

    path: Path
    model_type: str  # diffusers' name: "v1", "v2", "xl_base", ...
    family: str  # "sd1", "sd2", "sdxl"
    config: str  # a diffusers folder, or a hub id diffusers will fetch the configs of


@dataclass(frozen=True)
class TransformerFile:
    """A checked transformer on its own and the pipeline (`--config`) it goes into."""

    path: Path
    config: str  # a diffusers folder or a hub id: the pipeline's other weights
    model_index: dict[str, Any]  # the config's model_index.json
    gguf: bool  # a GGUF file; else a .safetensors
    fp8: bool  # its weights are float8 (kept so, cast up layer by layer as it runs)


def is_single_file(model: str) -> bool:
    """`--model` names one weights file (to check or refuse) rather than a folder or a hub id."""
    return model.lower().endswith((SINGLE_FILE_SUFFIX, GGUF_SUFFIX, *PICKLE_SUFFIXES))


def is_transformer_file(path: Path, config: str | None) -> bool:
    """A GGUF file, or a .safetensors with no Stable Diffusion UNet given a `--config`: a
    transformer on its own (pipeline/loading.py loads it into the config's pipeline)."""
    if path.suffix.lower() == GGUF_SUFFIX:
        return True
    if config is None or path.suffix.lower() != SINGLE_FILE_SUFFIX or not path.is_file():
        return False
    return LDM_UNET_KEY + "input_blocks.0.0.weight" not in read_key_shapes(path)


def file_sha256(path: Path) -> str:
    """The file's sha256, read in 1 MiB chunks (checkpoints are several GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_cache() -> Path:
    """Where file hashes are remembered between starts (XDG's cache folder)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "seed-explorer" / "sha256.json"


def remembered_sha256(path: Path) -> str:
    """The file's sha256, remembered by path, size and modification time: a multi-GB
    checkpoint is read once, not at every start. A cache that cannot be read or written
    only costs the reading."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    store = hash_cache()
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(key), str):
        return known[key]
    known[key] = file_sha256(path)
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(store, json.dumps(known, indent=1).encode())
    except OSError:
        pass
    return known[key]


def single_file_identity(path: Path) -> ModelIdentity:
    """A1111's identity of a checkpoint: `Model` is the stem, `Model hash` sha256[:10]."""
    sha256 = remembered_sha256(path)
    return ModelIdentity(name=path.stem, sha256=sha256, a1111_hash=sha256[:10])


def folder_identity(folder: Path, name: str | None = None) -> ModelIdentity:
    """A diffusers folder's weight files on disk, hashed by relative path and content.

    Every variant present counts, so the hash does not change with the device or dtype the
    pipeline is loaded in. A hub-cache file is a link to a blob named by its sha256: that name
    is used instead of reading gigabytes again.
    """
    digest = hashlib.sha256()
    for path in _weight_files(folder):
        digest.update(f"{path.relative_to(folder).as_posix()}\t{_content_sha256(path)}\n".encode())
    return ModelIdentity(name=name or folder.name, sha256=digest.hexdigest(), a1111_hash=None)


def _weight_files(folder: Path) -> list[Path]:
    """The .safetensors files of the components model_index.json lists (what the app loads)."""
    index = json.loads((folder / "model_index.json").read_text())
    components = sorted(key for key, value in index.items() if isinstance(value, list))
    return sorted(path for name in components for path in (folder / name).glob("*.safetensors"))


def _content_sha256(path: Path) -> str:
    resolved = path.resolve()
    if path.is_symlink() and resolved.parent.name == "blobs" and _HUB_BLOB.fullmatch(resolved.name):
        return resolved.name
    return file_sha256(path)


class _KeyShapes(dict):
    """A checkpoint's key -> shape, standing in for tensors in diffusers' detection code."""

    def __getitem__(self, key: str) -> Any:
        return _Shaped(super().__getitem__(key))


@dataclass(frozen=True)
class _Shaped:
    shape: tuple[int, ...]


def read_key_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape from the safetensors header; no tensor is read."""
    try:
        with safe_open(str(path), framework="pt") as file:
            return {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as error:
        raise CheckpointError(
            f"{path.name} is not a readable .safetensors file ({error})"
        ) from None


def check_single_file(
    path: Path, config: str | None = None, offline: bool | None = None
) -> SingleFile:
    """The checkpoint's family and its config source, or a one-line refusal.

    `config` is `--config`: a diffusers folder or a hub id. Without it the family's usual hub
    repo is used (as diffusers does), which offline only works when that repo is cached.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path.name} is a pickle file ({path.suffix}), which can run code when it is loaded; "
            "Seed Explorer loads .safetensors only (civitai and the hub offer most checkpoints "
            "as .safetensors)"
        )
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    model_type = _model_type(path)
    family = FAMILY_OF_TYPE[model_type]
    return SingleFile(path, model_type, family, _resolve_config(path, model_type, config, offline))


def _model_type(path: Path) -> str:
    shapes = read_key_shapes(path)
    if LDM_UNET_KEY + "input_blocks.0.0.weight" not in shapes:
        if any(marker in key for key in shapes for marker in _LORA_MARKERS):
            raise CheckpointError(f"{path.name} is a LoRA, not a checkpoint: pass it with --lora")
        raise CheckpointError(
            f"{path.name} holds no Stable Diffusion UNet ({LDM_UNET_KEY}* weights): not a "
            "checkpoint in the original layout (a transformer on its own? pass --config DIR|ID, "
            "its pipeline's diffusers folder or hub id)"
        )
    model_type = infer_diffusers_model_type(_KeyShapes(shapes))
    if model_type in _REFUSED_TYPES:
        raise CheckpointError(
            f"{path.name} is {_REFUSED_TYPES[model_type]}; Seed Explorer renders text-to-image "
            "with SD 1.x, 2.x and SDXL base checkpoints"
        )
    if model_type not in FAMILY_OF_TYPE:
        raise CheckpointError(
            f"{path.name} is a {model_type} checkpoint; Seed Explorer renders SD 1.x, 2.x and SDXL"
        )
    return model_type


def _resolve_config(path: Path, model_type: str, config: str | None, offline: bool | None) -> str:
    """A local folder for the configs where one exists, so a cached repo needs no network."""
    wanted = config or DIFFUSERS_DEFAULT_PIPELINE_PATHS[model_type]["pretrained_model_name_or_path"]
    folder = Path(wanted).expanduser()
    if folder.is_dir():
        if not (folder / "model_index.json").is_file():
            raise CheckpointError(
                f"--config {wanted} is not a diffusers folder (no model_index.json)"
            )
        return str(folder)
    if wanted.startswith((".", "/", "~")) or wanted.count("/") != 1:
        raise CheckpointError(f"--config {wanted} is neither a diffusers folder nor a hub id")
    try:
        return snapshot_download(wanted, allow_patterns=_CONFIG_PATTERNS, local_files_only=True)
    except LocalEntryNotFoundError:
        if huggingface_hub.constants.HF_HUB_OFFLINE if offline is None else offline:
            raise CheckpointError(
                f"{path.name} is an {FAMILY_OF_TYPE[model_type]} checkpoint whose configs "
                f"({wanted}) are not cached and the hub is offline: pass --config DIR|ID, the "
                "matching diffusers folder or a cached hub id"
            ) from None
        return wanted


def load_single_file(checked: SingleFile, dtype: torch.dtype) -> DiffusionPipeline:
    """The family's pipeline from the file's weights and the config's folders.

    A single file has no safety checker; none is loaded for it (as in A1111).
    """
    local = Path(checked.config).is_dir()
    pipeline_class = PIPELINE_OF_FAMILY[checked.family]
    try:
        return pipeline_class.from_single_file(
            str(checked.path), config=checked.config, torch_dtype=dtype, local_files_only=local
        )
    except Exception as error:  # a config that does not fit, a truncated file, the network
        hint = "" if local else "; offline, pass --config DIR|ID"
        raise CheckpointError(
            f"{checked.path.name} did not load with the configs of {checked.config}: "
            f"{_first_line(error)}{hint}"
        ) from error


def check_transformer_file(path: Path, config: str | None) -> TransformerFile:
    """A transformer file and the pipeline it goes into, or a one-line refusal naming what is
    missing (the file, `--config`, the `gguf` package)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    if config is None:
        raise CheckpointError(
            f"{path.name} is a transformer on its own: pass --config DIR|ID, the diffusers folder "
            "or hub id of its pipeline (text encoders, VAE, scheduler)"
        )
    gguf = path.suffix.lower() == GGUF_SUFFIX
    if gguf and package_missing("gguf"):
        raise CheckpointError(f"{path.name} is a GGUF file: reading it needs the gguf package")
    index = _config_index(config)
    if "transformer" not in index:
        raise CheckpointError(
            f"--config {config} is a {index.get('_class_name')} with no transformer for "
            f"{path.name} to be"
        )
    fp8 = not gguf and any("F8" in dtype for dtype in _dtypes(path))
    return TransformerFile(path, config, index, gguf, fp8)


def model_index(source: str) -> dict[str, Any]:
    """A pipeline's model_index.json from a diffusers folder or a hub id (cached, or fetched
    when online: that one small file), read before any weights load."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    return dict(DiffusionPipeline.load_config(source))


def _config_index(config: str) -> dict[str, Any]:
    try:
        return model_index(config)
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"--config {config} is neither a diffusers folder nor a hub id that can be read "
            f"({_first_line(error)})"
        ) from None


def _dtypes(path: Path) -> set[str]:
    """The tensors' dtypes named in a safetensors header (F8_E4M3, BF16, ...)."""
    with safe_open(str(path), framework="pt") as file:
        return {file.get_slice(key).get_dtype() for key in file.keys()}  # noqa: SIM118


def load_transformer_file(
    checked: TransformerFile, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    """The config's pipeline with the file's transformer in it (`quantization`: for the rest).

    A GGUF transformer stays quantized and computes in `dtype`; an fp8 one is stored in fp8
    and each layer cast to `dtype` while it runs (diffusers' layerwise casting): what the file
    holds is what renders, in a fraction of the memory.
    """
    config, local = checked.config, Path(checked.config).expanduser().is_dir()
    index = checked.model_index
    kwargs: dict[str, Any] = {}
    if checked.gguf:
        kwargs["quantization_config"] = GGUFQuantizationConfig(compute_dtype=dtype)
    try:
        transformer_class = getattr(diffusers, index["transformer"][1])
        transformer = transformer_class.from_single_file(
            str(checked.path),
            config=config,
            subfolder="transformer",
            torch_dtype=dtype,
            **kwargs,
        )
        if checked.fp8:
            transformer.enable_layerwise_casting(
                storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype
            )
        return DiffusionPipeline.from_pretrained(
            config,
            transformer=transformer,
            dtype=dtype,
            use_safetensors=True,
            quantization_config=quantization,
        )
    except Exception as error:  # a file that does not fit the config, a truncated file
        where = "" if local else " (offline: the hub id must be cached)"
        raise CheckpointError(
            f"{checked.path.name} did not load into {index.get('_class_name')} from "
            f"{config}{where}: {_first_line(error)}"
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    line = text.splitlines()[0]
    return line if len(line) <= 200 else line[:199] + "…"
