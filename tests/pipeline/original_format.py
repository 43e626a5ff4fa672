"""Test helper: a diffusers SD 1.x pipeline written as one original-format (CompVis) file.

The layout A1111, ComfyUI and civitai use: `model.diffusion_model.*` (the UNet as LDM named it),
`first_stage_model.*` (the VAE) and `cond_stage_model.transformer.*` (the CLIP text encoder).
The mapping is the inverse of diffusers' single-file conversion, derived from the UNet's and the
VAE's config, so it fits the tiny architecture as well as SD 1.5's. The tests check it by
converting back with diffusers' own functions.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING
from safetensors.torch import save_file

_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def _resnet(rest: str) -> str:
    layer, _, tail = rest.partition(".")
    return f"{_RESNET.get(layer, layer)}.{tail}"


def _unet_key(key: str, layers: int, attention_up_blocks: set[int]) -> str:
    """One diffusers UNet key in LDM's `input_blocks / middle_block / output_blocks` names."""
    fixed = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    if key in fixed:
        return fixed[key]
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = 1 + block * (layers + 1) + j
        return (
            f"input_blocks.{index}.0.{_resnet(rest)}"
            if kind == "resnets"
            else (f"input_blocks.{index}.1.{rest}")
        )
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(m[1]) + 1) * (layers + 1)}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = block * (layers + 1) + j
        return (
            f"output_blocks.{index}.0.{_resnet(rest)}"
            if kind == "resnets"
            else (f"output_blocks.{index}.1.{rest}")
        )
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(m[1])
        slot = 2 if block in attention_up_blocks else 1
        return f"output_blocks.{block * (layers + 1) + layers}.{slot}.conv.{m[2]}"
    raise KeyError(f"no original-format name for UNet key {key}")


def unet_to_original(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    layers = unet.config.layers_per_block
    attention_up = {
        i for i, kind in enumerate(unet.config.up_block_types) if kind.startswith("CrossAttn")
    }
    return {
        "model.diffusion_model." + _unet_key(key, layers, attention_up): value
        for key, value in unet.state_dict().items()
    }


def _vae_key(key: str, up_blocks: int) -> tuple[str, bool]:
    """One diffusers VAE key in LDM's names, and whether it is an attention projection."""
    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    if key in fixed:
        return fixed[key], False
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return (
            f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}",
            False,
        )
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}", False
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        block = up_blocks - 1 - int(m[1])
        return (
            f"decoder.up.{block}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}",
            False,
        )
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        return f"decoder.up.{up_blocks - 1 - int(m[1])}.upsample.conv.{m[2]}", False
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        rest = m[3].replace("conv_shortcut", "nin_shortcut")
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{rest}", False
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
        name = _VAE_ATTENTION[m[2]]
        return f"{m[1]}.mid.attn_1.{name}.{m[3]}", name != "norm"
    raise KeyError(f"no original-format name for VAE key {key}")


def vae_to_original(vae: AutoencoderKL) -> dict[str, torch.Tensor]:
    """LDM's VAE attention is 1x1 convolutions where diffusers has linear layers."""
    up_blocks = len(vae.config.up_block_types)
    out = {}
    for key, value in vae.state_dict().items():
        name, projection = _vae_key(key, up_blocks)
        if projection and value.ndim == 2:
            value = value[:, :, None, None]
        out["first_stage_model." + name] = value
    return out


def pipeline_to_original(pipe: StableDiffusionPipeline) -> dict[str, torch.Tensor]:
    """The whole SD 1.x checkpoint, as one state dict in the original layout."""
    # transformers 5 flattened CLIPTextModel; the original layout keeps its `text_model.` level.
    text = {
        "cond_stage_model.transformer.text_model." + key.removeprefix("text_model."): value
        for key, value in pipe.text_encoder.state_dict().items()
    }
    state = {**unet_to_original(pipe.unet), **vae_to_original(pipe.vae), **text}
    return {key: value.detach().contiguous() for key, value in state.items()}


def write_single_file(pipe: StableDiffusionPipeline, path: Path) -> Path:
    """`pipe` as one original-format .safetensors file at `path`."""
    save_file(pipeline_to_original(pipe), str(path))
    return path
