"""LoRAs given at start-up (`--lora SPEC`, repeatable): found, checked against the model, applied.

SPEC is a `.safetensors` file, a folder holding diffusers' `pytorch_lora_weights.safetensors`,
a hub id (`owner/name`, the same file) or a file in a hub repo (`owner/name/file.safetensors`),
with an optional `:weight` (1.0 by default). Every spec becomes one local file first, so that
what was loaded can be hashed and recorded.

diffusers only warns about LoRA layers the model lacks and then ignores them, so a LoRA made for
another architecture would quietly change nothing; it is checked layer by layer before loading
and refused in one line. A1111 identifies a LoRA by kohya's "addnet" hash of the file (the
sha256 of what follows the safetensors header), the first 12 hex digits, and writes
`Lora hashes: "name: hash, ..."` (pipeline/metadata.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import torch
from diffusers import DiffusionPipeline
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"
_HUB_REPO = re.compile(r"[\w.-]+/[\w.-]+")
_CHUNK = 1 << 20
# diffusers-format LoRA keys: <component>.<module path>.<role>[.<adapter>].weight
_LORA_KEY = re.compile(
    r"(?P<component>unet|text_encoder|text_encoder_2)\.(?P<module>.+?)\."
    r"(?P<role>lora\.down|lora\.up|lora_linear_layer\.down|lora_linear_layer\.up|lora_A|lora_B)"
    r"(?:\.[\w-]+)?\.weight"
)
_DOWN_ROLES = {"lora.down", "lora_linear_layer.down", "lora_A"}


class LoraError(ValueError):
    """A LoRA that cannot be used, with one line on why."""


@dataclass(frozen=True)
class LoraSpec:
    """One `--lora` value: where the LoRA is and how strongly it applies."""

    source: str
    weight: float = 1.0


@dataclass(frozen=True)
class LoadedLora:
    """A LoRA as applied, for the recipe (all fields) and the infotext (name and hash)."""

    name: str  # A1111's name: the file's stem, or a diffusers folder's / hub repo's name
    source: str  # the spec's source, as given
    weight: float
    sha256: str  # of the whole file
    a1111_hash: str  # A1111's short hash: kohya's addnet hash, first 12 hex digits

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_lora_spec(text: str) -> LoraSpec:
    """`path:0.8` -> weight 0.8; a colon not followed by a number stays part of the source."""
    text = text.strip()
    source, colon, tail = text.rpartition(":")
    if colon:
        try:
            weight = float(tail)
        except ValueError:
            return LoraSpec(text)
        if not math.isfinite(weight):
            raise LoraError(f"--lora {text}: the weight must be a finite number")
        if not source:
            raise LoraError(f"--lora {text}: no LoRA before the weight")
        return LoraSpec(source, weight)
    if not text:
        raise LoraError("--lora needs a file, a folder or a hub id")
    return LoraSpec(text)


def parse_lora_list(values: Iterable[str]) -> list[LoraSpec]:
    """Repeated `--lora` values, each of which may be comma-separated (SEED_EXPLORER_LORA)."""
    return [parse_lora_spec(part) for value in values for part in value.split(",") if part.strip()]


def resolve_lora_file(spec: LoraSpec, offline: bool | None = None) -> tuple[Path, str]:
    """The local .safetensors file a spec names, and the LoRA's name."""
    path = Path(spec.source).expanduser()
    if path.is_dir():
        file = path / DIFFUSERS_LORA_FILE
        if not file.is_file():
            raise LoraError(f"LoRA folder {spec.source} holds no {DIFFUSERS_LORA_FILE}")
        return file, path.name
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise LoraError(
                f"LoRA {path.name} is not a .safetensors file; pickle files ({path.suffix}) "
                "can run code when loaded and are not read"
            )
        return path, path.stem
    if spec.source.startswith((".", "/", "~")):
        raise LoraError(f"LoRA {spec.source} does not exist")
    parts = spec.source.split("/")
    if len(parts) >= 3 and spec.source.endswith(".safetensors"):
        repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
        return _hub_file(spec.source, repo, filename, offline), Path(filename).stem
    if _HUB_REPO.fullmatch(spec.source):
        return _hub_file(spec.source, spec.source, DIFFUSERS_LORA_FILE, offline), parts[1]
    raise LoraError(f"LoRA {spec.source} is neither a file, a folder nor a hub id")


def _hub_file(source: str, repo: str, filename: str, offline: bool | None) -> Path:
    if offline is None:
        offline = huggingface_hub.constants.HF_HUB_OFFLINE
    try:
        return Path(hf_hub_download(repo, filename, local_files_only=offline))
    except LocalEntryNotFoundError:
        raise LoraError(
            f"LoRA {source}: {filename} of {repo} is not cached and the hub is offline "
            "(download it once online, or pass a local file)"
        ) from None
    except EntryNotFoundError:
        raise LoraError(
            f"LoRA {source}: {repo} has no {filename} (name the file: {repo}/FILE.safetensors)"
        ) from None
    except Exception as error:  # the network, a private repo, a wrong id
        raise LoraError(f"LoRA {source}: {_first_line(error)}") from error


def lora_hashes(path: Path) -> tuple[str, str]:
    """The file's sha256, and A1111's short hash (sha256 of the data after the header, 12 hex)."""
    whole, body = hashlib.sha256(), hashlib.sha256()
    with open(path, "rb") as file:
        head = file.read(8)
        whole.update(head)
        header = file.read(int.from_bytes(head, "little"))
        whole.update(header)
        while chunk := file.read(_CHUNK):
            whole.update(chunk)
            body.update(chunk)
    return whole.hexdigest(), body.hexdigest()[:12]


def _base_model(path: Path) -> str | None:
    """What kohya's trainer wrote the LoRA was for (`ss_base_model_version`), if anything."""
    with open(path, "rb") as file:
        size = int.from_bytes(file.read(8), "little")
        try:
            metadata = json.loads(file.read(size)).get("__metadata__", {})
        except ValueError:
            return None
    return metadata.get("ss_base_model_version") or metadata.get("ss_sd_model_name")


def check_lora_fits(
    pipe: DiffusionPipeline, state_dict: dict[str, torch.Tensor], name: str
) -> None:
    """Every LoRA layer names a layer of this model with the same input and output sizes."""
    layers = 0
    for key, tensor in state_dict.items():
        match = _LORA_KEY.fullmatch(key)
        if not match:
            continue
        layers += 1
        problem = _misfit(pipe, match, tensor.shape)
        if problem:
            raise LoraError(f"LoRA {name} does not fit this model: {problem}")
    if not layers:
        raise LoraError(f"LoRA {name}: no LoRA layers that diffusers can read")


def _misfit(pipe: DiffusionPipeline, match: re.Match, shape: torch.Size) -> str | None:
    component, path = match["component"], match["module"]
    root = getattr(pipe, component, None)
    if root is None:
        return f"it has {component} layers and the model has no {component} (made for SDXL?)"
    module = _find(root, path)
    if module is None:
        return f"{component}.{path} is not a layer of this model"
    module = getattr(module, "base_layer", module)  # a layer another LoRA already wraps
    if isinstance(module, torch.nn.Linear):
        sizes = (module.in_features, module.out_features)
    elif isinstance(module, torch.nn.Conv2d):
        sizes = (module.in_channels, module.out_channels)
    else:
        return None
    down = match["role"] in _DOWN_ROLES
    have, want = (shape[1], sizes[0]) if down else (shape[0], sizes[1])
    if have != want:
        side = "inputs" if down else "outputs"
        return f"{component}.{path} has {want} {side}, the LoRA {have}"
    return None


def _find(root: torch.nn.Module, path: str) -> torch.nn.Module | None:
    # transformers 5 flattened CLIPTextModel; LoRAs made before keep its `text_model.` level.
    for candidate in (path, path.removeprefix("text_model.")):
        try:
            return root.get_submodule(candidate)
        except AttributeError:
            continue
    return None


def apply_loras(
    pipe: DiffusionPipeline,
    specs: Iterable[LoraSpec],
    offline: bool | None = None,
    fuse: bool = True,
) -> list[LoadedLora]:
    """Check every LoRA against the model, then load and activate them with their weights.

    All are checked before any is loaded, so a misfit stops start-up with the model untouched.

    Fused into the weights by default: the LoRAs are fixed for the process, and a fused model
    runs at the base model's speed.
    """
    found = []
    for spec in specs:
        file, name = resolve_lora_file(spec, offline)
        state_dict, _ = pipe.lora_state_dict(str(file))
        base = _base_model(file)
        try:
            check_lora_fits(pipe, state_dict, name)
        except LoraError as error:
            raise LoraError(f"{error}{f' (trained for {base})' if base else ''}") from None
        found.append((spec, file, name))
    loaded, adapters = [], []
    for index, (spec, file, name) in enumerate(found):
        adapter = f"lora{index}_{re.sub(r'[^0-9A-Za-z_]', '_', name)}"
        pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=adapter)
        adapters.append(adapter)
        sha256, short = lora_hashes(file)
        a1111_name = name.replace(":", "").replace(",", "")
        loaded.append(LoadedLora(a1111_name, spec.source, spec.weight, sha256, short))
    if adapters:
        pipe.set_adapters(adapters, adapter_weights=[lora.weight for lora in loaded])
        if fuse:
            pipe.fuse_lora(adapter_names=adapters)
    return loaded


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    line = text.splitlines()[0]
    return line if len(line) <= 200 else line[:199] + "…"
