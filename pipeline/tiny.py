"""The built-in tiny models: Stable Diffusion's architectures, shrunk, with random weights.

Built in memory in well under a second with no download, so the interface can be tried
offline and the tests exercise the real code paths (scheduler swaps, generator lists,
saving and loading a local folder). Their images are noise: they prove mechanics, not art.

- `tiny`: Stable Diffusion 1.x's layout (one CLIP text encoder, PNDM as SD 1.5 ships).
- `tiny-sd2`: the same layout with SD 2.x-v's scheduler config (v-prediction).
- `tiny-sdxl`: SDXL's layout: two text encoders (the second with a projection), a UNet with
  `addition_embed_type="text_time"`, and a VAE with `force_upcast`, Euler as SDXL ships.
"""

from __future__ import annotations

import json
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

TINY_MODEL_ID = "tiny"
TINY_SD2_ID = "tiny-sd2"
TINY_SDXL_ID = "tiny-sdxl"

# Stable Diffusion 1.5's own scheduler config, so the registry sees what it would see there.
SD15_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
}

# Stable Diffusion 2.x-v's (768 px) scheduler config: the UNet predicts v, not the noise.
SD2_V_SCHEDULER_CONFIG = {
    **SD15_SCHEDULER_CONFIG,
    "prediction_type": "v_prediction",
}
# SDXL base's scheduler config (EulerDiscreteScheduler, leading timesteps), whole: the keys
# Euler ignores set DDIM's and PNDM's behaviour when the registry builds them from it.
SDXL_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "interpolation_type": "linear",
    "use_karras_sigmas": False,
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "clip_sample": False,
}
SDXL_VAE_SCALING = 0.13025  # SDXL's VAE: another latent scale than SD 1.x's 0.18215

_WEIGHTS_SEED = 0


@dataclass(frozen=True)
class RandomArchitecture:
    """Stable Diffusion's layout at a chosen size: UNet levels, VAE levels, text encoder."""

    unet_channels: tuple[int, ...]
    unet_down: tuple[str, ...]
    unet_up: tuple[str, ...]
    sample_size: int
    vae_channels: tuple[int, ...]
    text_width: int
    text_layers: int
    text_intermediate: int
    text_heads: int = 4
    vae_layers: int = 1  # ResNet blocks per VAE level (Stable Diffusion's VAE: 2)
    norm_groups: int = 32  # GroupNorm groups in the UNet and the VAE (Stable Diffusion's: 32)


TINY = RandomArchitecture(
    unet_channels=(32, 64),
    unet_down=("DownBlock2D", "CrossAttnDownBlock2D"),
    unet_up=("CrossAttnUpBlock2D", "UpBlock2D"),
    sample_size=32,
    vae_channels=(32, 64),
    text_width=32,
    text_layers=5,
    text_intermediate=37,
)


def _vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """CLIP's byte-level alphabet, plus merges of lowercase letter pairs.

    The merges make a prompt about two characters a token, so ordinary prompts and their
    refine suffixes fit the 77-token window as they would with a real tokenizer.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    symbols = [chr(b) for b in printable]
    extra = 0
    for b in range(256):
        if b not in printable:
            symbols.append(chr(256 + extra))
            extra += 1
    letters = string.ascii_lowercase
    merges = [f"{a} {b}" for a in letters for b in letters]
    merges += [f"{a} {b}</w>" for a in letters for b in letters]
    pairs = [m.replace(" ", "") for m in merges]
    tokens = symbols + [s + "</w>" for s in symbols] + pairs
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def _tokenizer() -> CLIPTokenizer:
    # transformers 5 ignores vocab_file/merges_file passed to the constructor; from_pretrained
    # on a folder is the way that reads them.
    vocab, merges = _vocab_and_merges()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "vocab.json").write_text(json.dumps(vocab))
        Path(folder, "merges.txt").write_text("\n".join(["#version: 0.2", *merges]) + "\n")
        return CLIPTokenizer.from_pretrained(folder, model_max_length=77)


def _text_config(arch: RandomArchitecture, tokenizer: CLIPTokenizer, **extra) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_size=arch.text_width,
        intermediate_size=arch.text_intermediate,
        num_attention_heads=arch.text_heads,
        num_hidden_layers=arch.text_layers,
        max_position_embeddings=77,
        layer_norm_eps=1e-5,
        **extra,
    )


def _unet(arch: RandomArchitecture, **extra) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        block_out_channels=arch.unet_channels,
        layers_per_block=2,
        sample_size=arch.sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=arch.unet_down,
        up_block_types=arch.unet_up,
        norm_num_groups=arch.norm_groups,
        **extra,
    )


def _vae(arch: RandomArchitecture, **extra) -> AutoencoderKL:
    levels = len(arch.vae_channels)
    return AutoencoderKL(
        block_out_channels=arch.vae_channels,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        latent_channels=4,
        norm_num_groups=arch.norm_groups,
        layers_per_block=arch.vae_layers,
        **extra,
    )


def build_random_pipeline(
    arch: RandomArchitecture, scheduler_config: dict | None = None
) -> StableDiffusionPipeline:
    """A Stable Diffusion pipeline of the given size with seeded random weights, float32, CPU."""
    tokenizer = _tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHTS_SEED)
        unet = _unet(arch, cross_attention_dim=arch.text_width)
        vae = _vae(arch)
        text_encoder = CLIPTextModel(_text_config(arch, tokenizer))
    pipe = StableDiffusionPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        scheduler=PNDMScheduler.from_config(scheduler_config or SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_random_xl_pipeline(arch: RandomArchitecture) -> StableDiffusionXLPipeline:
    """An SDXL pipeline of the given size with seeded random weights, float32, CPU.

    As SDXL: the UNet reads both encoders' hidden states side by side (cross attention of
    twice the text width) and an added embedding of the second encoder's pooled projection
    and six size-conditioning numbers (`time_ids`).
    """
    tokenizer = _tokenizer()
    time_dim = 8
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHTS_SEED)
        unet = _unet(
            arch,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=time_dim,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=6 * time_dim + arch.text_width,
            cross_attention_dim=2 * arch.text_width,
        )
        vae = _vae(arch, force_upcast=True, scaling_factor=SDXL_VAE_SCALING)
        text_encoder = CLIPTextModel(_text_config(arch, tokenizer))
        text_encoder_2 = CLIPTextModelWithProjection(
            _text_config(arch, tokenizer, projection_dim=arch.text_width)
        )
    pipe = StableDiffusionXLPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG),
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_tiny_pipeline(model_id: str = TINY_MODEL_ID) -> DiffusionPipeline:
    """A built-in tiny model by id: the same random weights in every process."""
    if model_id == TINY_SDXL_ID:
        return build_random_xl_pipeline(TINY)
    if model_id == TINY_SD2_ID:
        return build_random_pipeline(TINY, SD2_V_SCHEDULER_CONFIG)
    return build_random_pipeline(TINY)


TINY_MODELS = (TINY_MODEL_ID, TINY_SD2_ID, TINY_SDXL_ID)
