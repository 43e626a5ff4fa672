"""The tiny model on disk (a diffusers folder, one original-format file) and LoRAs for it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from pipeline.tiny import build_tiny_pipeline
from tests.pipeline.original_format import write_single_file


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny-folder"
    build_tiny_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_single_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_single_file(
        build_tiny_pipeline(), tmp_path_factory.mktemp("models") / "tiny-original.safetensors"
    )


def make_lora(pipe: StableDiffusionPipeline, folder: Path, seed: int = 3) -> Path:
    """A random, non-zero LoRA on `pipe`'s UNet attention, saved as diffusers saves one.

    peft starts lora_B at zero (a LoRA that changes nothing); it is drawn at random instead.
    """
    pipe.unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in pipe.unet.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers)
    return folder / "pytorch_lora_weights.safetensors"


@pytest.fixture(scope="session")
def tiny_lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA for the tiny model, as a diffusers LoRA folder."""
    folder = tmp_path_factory.mktemp("loras") / "tiny-lora"
    make_lora(build_tiny_pipeline(), folder)
    return folder
