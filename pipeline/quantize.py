"""Big models on smaller cards: diffusers' quantization backends and CPU offload.

`--quantize` names a backend as diffusers does (`bitsandbytes_4bit`, `bitsandbytes_8bit`,
`torchao`), the last with torchao's own name for its setting (`int8wo`, int8 weight-only);
bitsandbytes' 4-bit is NF4. It applies to the denoiser (transformer or UNet) and the big text
encoders (T5, Qwen, Mistral: every text encoder but CLIP, which is small and whose pooled output
some families lean on), through `PipelineQuantizationConfig` at `from_pretrained`. A backend
that cannot run here is refused in one line before any weights load.

`--offload model|sequential`: diffusers' model CPU offload (each module on the GPU while it
runs) or sequential offload (each layer; least memory, slowest). Both need CUDA.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import diffusers
import torch
import transformers
from diffusers.quantizers import PipelineQuantizationConfig

# --quantize NAME -> the package it needs
QUANTIZE = {
    "bitsandbytes_4bit": "bitsandbytes",
    "bitsandbytes_8bit": "bitsandbytes",
    "torchao_int8wo": "torchao",
}
OFFLOAD = ("model", "sequential")
QUANT_HINT = "pip install -r requirements-quant.txt (bitsandbytes: on a CUDA machine)"
# Text encoders small enough to leave in the model's dtype.
_SMALL_ENCODERS = ("CLIPTextModel", "CLIPTextModelWithProjection")


class QuantizeError(ValueError):
    """A quantization or offload setting this machine cannot run, in one line."""


def package_missing(package: str) -> bool:
    """Whether an optional package is absent (found without importing it)."""
    return importlib.util.find_spec(package) is None


def check_offload(offload: str | None, device: str) -> None:
    """`--offload` moves modules between the CPU and a GPU: refused elsewhere."""
    if offload is None:
        return
    if offload not in OFFLOAD:
        raise QuantizeError(f"--offload must be one of {', '.join(OFFLOAD)}, got {offload!r}")
    if not device.startswith("cuda"):
        raise QuantizeError(
            f"--offload {offload} moves modules to a GPU while they run; the device is {device}"
        )


def check_quantize(quantize: str | None, device: str) -> None:
    """Refuse, in one line naming what is missing, a backend that cannot run here."""
    if quantize is None:
        return
    if quantize not in QUANTIZE:
        raise QuantizeError(f"--quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    package = QUANTIZE[quantize]
    if package == "bitsandbytes" and not device.startswith("cuda"):
        raise QuantizeError(
            f"--quantize {quantize} needs CUDA (bitsandbytes' kernels); the device is {device}"
        )
    if package_missing(package):
        raise QuantizeError(f"--quantize {quantize} needs the {package} package")


def quantized_components(model_index: dict[str, Any], transformer_file: bool = False) -> list[str]:
    """What `--quantize` applies to in a pipeline whose model_index.json is `model_index`:
    the denoiser (unless it comes from a single file, quantized or not already) and every
    text encoder but CLIP."""
    names = [] if transformer_file else [n for n in ("transformer", "unet") if n in model_index]
    for name, value in model_index.items():
        big = isinstance(value, list) and value[1] and value[1] not in _SMALL_ENCODERS
        if name.startswith("text_encoder") and big:
            names.append(name)
    return names


def pipeline_quantization(
    quantize: str, components: list[str], dtype: torch.dtype
) -> PipelineQuantizationConfig:
    """diffusers' PipelineQuantizationConfig for `components`: diffusers' config class for its
    own models, transformers' for the text encoders (their signatures differ, so a mapping)."""

    def config(library: Any) -> Any:
        if quantize == "torchao_int8wo":
            from torchao.quantization import Int8WeightOnlyConfig

            return library.TorchAoConfig(quant_type=Int8WeightOnlyConfig())
        if quantize == "bitsandbytes_8bit":
            return library.BitsAndBytesConfig(load_in_8bit=True)
        return library.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )

    mapping = {
        name: config(transformers if name.startswith("text_encoder") else diffusers)
        for name in components
    }
    return PipelineQuantizationConfig(quant_mapping=mapping)
