"""Model families: what differs between Stable Diffusion 1.x, 2.x and XL, in one place each.

A family owns how a prompt is encoded (SDXL: two text encoders and a pooled embedding), what
the UNet needs beyond the latents and the text (SDXL: `text_embeds` and `time_ids`, the size
conditioning), how latents become pixels (SDXL: the VAE upcast to float32 in fp16), its live
preview colours, its defaults and the schedulers a comparison starts with. Everything else in
the app is the same for every family.

A pipeline of any other family (SD3, Flux, PixArt, Kandinsky, ...) is refused by name before
its weights load: `family_for_class` is asked with the class `model_index.json` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

SUPPORTED = "Stable Diffusion 1.x, 2.x and XL (StableDiffusionPipeline, StableDiffusionXLPipeline)"


class UnsupportedFamily(ValueError):
    """A pipeline class the app cannot render with."""


@dataclass(frozen=True)
class Embedding:
    """One or more texts as the UNet reads them: hidden states, and SDXL's pooled vector."""

    hidden: torch.Tensor  # (texts, tokens, width)
    pooled: torch.Tensor | None = None  # (texts, projection); SDXL only

    @staticmethod
    def cat(parts: list[Embedding]) -> Embedding:
        pooled = [part.pooled for part in parts]
        return Embedding(
            torch.cat([part.hidden for part in parts]),
            None if pooled[0] is None else torch.cat(pooled),  # type: ignore[arg-type]
        )

    def zeros(self) -> Embedding:
        return Embedding(
            torch.zeros_like(self.hidden),
            None if self.pooled is None else torch.zeros_like(self.pooled),
        )


@dataclass(frozen=True)
class Family:
    """Stable Diffusion 1.x: one CLIP text encoder, no extra UNet inputs, a plain VAE decode."""

    name: str  # "sd1", "sd2", "sdxl": recorded in every recipe
    label: str  # "Stable Diffusion 1.x", for people
    default_guidance: float
    compare: tuple[str, ...]  # the schedulers Compare starts with, those the model offers
    # Latent channel -> RGB weights for live previews (ComfyUI's latent_rgb_factors) and bias.
    preview_factors: tuple[tuple[float, float, float], ...]
    preview_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def encode(self, pipe: DiffusionPipeline, text: str) -> Embedding:
        """One text alone (batch 1), as the pipeline encodes a prompt or a negative prompt."""
        hidden, _ = pipe.encode_prompt(text, pipe._execution_device, 1, False)
        return Embedding(hidden)

    def empty_negative_is_zeros(self, pipe: DiffusionPipeline) -> bool:
        """Whether the pipeline guides an empty negative prompt by zeros, not by its encoding."""
        return False

    def call_arguments(
        self, prompt: Embedding, negative: Embedding, extras: dict[str, Any]
    ) -> dict[str, Any]:
        """The embeddings (and the family's extras) as keywords of the pipeline's __call__."""
        return {"prompt_embeds": prompt.hidden, "negative_prompt_embeds": negative.hidden}

    def extras(self, width: int, height: int, recorded: dict[str, Any] | None) -> dict[str, Any]:
        """What the family adds to a plan at this size (a recipe's own, when replaying)."""
        return {}

    def unet_arguments(
        self,
        pipe: DiffusionPipeline,
        halves: list[Embedding],
        extras: dict[str, Any],
    ) -> dict[str, Any]:
        """The UNet's keywords beyond sample and timestep for rows whose text is `halves`
        concatenated (the unconditional rows first under guidance, as the pipeline orders)."""
        return {"encoder_hidden_states": torch.cat([half.hidden for half in halves])}

    def decode(
        self, pipe: DiffusionPipeline, latents: torch.Tensor, generator: list[torch.Generator]
    ) -> torch.Tensor:
        """Latents to images in -1..1, as `StableDiffusionPipeline.__call__` decodes them."""
        vae = pipe.vae
        return vae.decode(
            latents / vae.config.scaling_factor, return_dict=False, generator=generator
        )[0]

    def check_and_finish(
        self, pipe: DiffusionPipeline, images: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, list[bool]]:
        """The safety checker where the model ships one: the images and which it blanked."""
        images, nsfw = pipe.run_safety_checker(images, pipe._execution_device, dtype)
        flags = [bool(flag) for flag in nsfw] if nsfw is not None else [False] * len(images)
        return images, flags


@dataclass(frozen=True)
class XLFamily(Family):
    """Stable Diffusion XL: two text encoders (the second's pooled output is an extra input),
    `time_ids` from the size conditioning, and a VAE that overflows in fp16 (force_upcast)."""

    def encode(self, pipe: DiffusionPipeline, text: str) -> Embedding:
        hidden, _, pooled, _ = pipe.encode_prompt(
            text, device=pipe._execution_device, do_classifier_free_guidance=False
        )
        return Embedding(hidden, pooled)

    def empty_negative_is_zeros(self, pipe: DiffusionPipeline) -> bool:
        # StableDiffusionXLPipeline zeros the unconditional embeddings when no negative prompt
        # is given and the model says so (force_zeros_for_empty_prompt, True for SDXL base).
        return bool(pipe.config.get("force_zeros_for_empty_prompt", False))

    def call_arguments(
        self, prompt: Embedding, negative: Embedding, extras: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "prompt_embeds": prompt.hidden,
            "negative_prompt_embeds": negative.hidden,
            "pooled_prompt_embeds": prompt.pooled,
            "negative_pooled_prompt_embeds": negative.pooled,
            "original_size": tuple(extras["original_size"]),
            "crops_coords_top_left": tuple(extras["crops_coords_top_left"]),
            "target_size": tuple(extras["target_size"]),
        }

    def extras(self, width: int, height: int, recorded: dict[str, Any] | None) -> dict[str, Any]:
        # The pipeline's defaults: the rendered size as original and target size, no crop.
        if recorded:
            return recorded
        return {
            "original_size": [height, width],
            "crops_coords_top_left": [0, 0],
            "target_size": [height, width],
        }

    def unet_arguments(
        self,
        pipe: DiffusionPipeline,
        halves: list[Embedding],
        extras: dict[str, Any],
    ) -> dict[str, Any]:
        hidden = torch.cat([half.hidden for half in halves])
        pooled = torch.cat([half.pooled for half in halves])  # type: ignore[misc]
        time_ids = pipe._get_add_time_ids(
            tuple(extras["original_size"]),
            tuple(extras["crops_coords_top_left"]),
            tuple(extras["target_size"]),
            dtype=hidden.dtype,
            text_encoder_projection_dim=_projection_dim(pipe, pooled),
        ).to(hidden.device)
        return {
            "encoder_hidden_states": hidden,
            "added_cond_kwargs": {
                "text_embeds": pooled,
                "time_ids": time_ids.repeat(hidden.shape[0], 1),
            },
        }

    def decode(
        self, pipe: DiffusionPipeline, latents: torch.Tensor, generator: list[torch.Generator]
    ) -> torch.Tensor:
        """As `StableDiffusionXLPipeline.__call__`: in float32 when an fp16 VAE would overflow,
        and with the VAE's latents mean and std where it has them."""
        vae = pipe.vae
        upcast = vae.dtype == torch.float16 and vae.config.force_upcast
        if upcast:
            vae.to(dtype=torch.float32)
            latents = latents.to(torch.float32)
        config = vae.config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:
            shape = (1, len(mean), 1, 1)
            mean_t = torch.tensor(mean).view(shape).to(latents.device, latents.dtype)
            std_t = torch.tensor(std).view(shape).to(latents.device, latents.dtype)
            latents = latents * std_t / config.scaling_factor + mean_t
        else:
            latents = latents / config.scaling_factor
        try:
            return vae.decode(latents, return_dict=False)[0]
        finally:
            if upcast:
                vae.to(dtype=torch.float16)

    def check_and_finish(
        self, pipe: DiffusionPipeline, images: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, list[bool]]:
        """No safety checker in SDXL; its invisible watermark where the pipeline applies one."""
        if pipe.watermark is not None:
            images = pipe.watermark.apply_watermark(images)
        return images, [False] * len(images)


def _projection_dim(pipe: DiffusionPipeline, pooled: torch.Tensor) -> int:
    encoder = pipe.text_encoder_2
    return int(pooled.shape[-1]) if encoder is None else encoder.config.projection_dim


# ComfyUI's SD 1.5 latent preview factors (comfy/latent_formats.py, SD15); SD 2.x shares the VAE.
_SD_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
_SD_COMPARE = ("DPM++ 2M", "Euler", "Euler a", "DDIM", "PNDM", "UniPC")

SD1 = Family("sd1", "Stable Diffusion 1.x", 7.5, _SD_COMPARE, _SD_FACTORS)
SD2 = Family("sd2", "Stable Diffusion 2.x", 7.5, _SD_COMPARE, _SD_FACTORS)
# diffusers' StableDiffusionXLPipeline defaults to guidance 5.0; PNDM (PLMS) is rarely used
# with SDXL, Karras sigmas often are. ComfyUI's SDXL preview factors and bias.
SDXL = XLFamily(
    "sdxl",
    "Stable Diffusion XL",
    5.0,
    ("DPM++ 2M", "DPM++ 2M Karras", "Euler", "Euler a", "DDIM", "UniPC"),
    (
        (0.3651, 0.4232, 0.4341),
        (-0.2533, -0.0042, 0.1068),
        (0.1076, 0.1111, -0.0362),
        (-0.3165, -0.2492, -0.2188),
    ),
    (0.1084, -0.0175, -0.0011),
)
FAMILIES = {family.name: family for family in (SD1, SD2, SDXL)}
_BY_CLASS = {"StableDiffusionPipeline": SD1, "StableDiffusionXLPipeline": SDXL}


def family_for_class(class_name: str) -> Family:
    """The family of a pipeline class by name (as `model_index.json` gives it), before any
    weights load. SD 1.x and 2.x share a class: `family_of` tells them apart once loaded."""
    if class_name not in _BY_CLASS:
        raise UnsupportedFamily(f"{class_name} is not supported: Seed Explorer renders {SUPPORTED}")
    return _BY_CLASS[class_name]


def family_of(pipe: DiffusionPipeline) -> Family:
    """A loaded pipeline's family. SD 2.x: OpenCLIP's 1024-wide text (cross_attention_dim) or a
    v-prediction scheduler (the 768 px models)."""
    if isinstance(pipe, StableDiffusionXLPipeline):
        return SDXL
    if isinstance(pipe, StableDiffusionPipeline):
        v_prediction = pipe.scheduler.config.get("prediction_type") == "v_prediction"
        return SD2 if v_prediction or pipe.unet.config.cross_attention_dim == 1024 else SD1
    return family_for_class(type(pipe).__name__)
