"""Model families: what differs between Stable Diffusion 1.x, 2.x, XL, SD3, Flux.1, Chroma,
Z-Image and Qwen-Image, in one place each.

A family owns how a prompt is encoded (SDXL: two text encoders and a pooled embedding; Flux and
SD3: T5 as well), what the denoiser needs beyond the latents and the text (SDXL: `text_embeds`
and `time_ids`; Flux: packed latents, `img_ids`, `txt_ids` and a guidance embedding), how its
latents are laid out and become pixels (SDXL: the VAE upcast in fp16; Flux and SD3: the VAE's
shift factor), the shift of a flow-matching schedule, how it combines guided predictions
(Z-Image conditional-first, Qwen-Image rescaled to the conditional norm), its live preview
colours, its defaults and the schedulers a comparison starts with. Everything else in the app
is the same for every family.

A pipeline of any other family (Flux.2, HiDream, Hunyuan Image, Lumina 2, Sana, ...) is refused
by name, in one line naming the supported ones, before its weights load: `family_for_class` is
asked with the class `model_index.json` names.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
import torch
from diffusers import (
    ChromaPipeline,
    DiffusionPipeline,
    FluxPipeline,
    QwenImagePipeline,
    SchedulerMixin,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    ZImagePipeline,
)
from diffusers.pipelines.flux.pipeline_flux import calculate_shift
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import retrieve_timesteps

from pipeline.fewstep import ModelDefaults

SUPPORTED = (
    "Stable Diffusion 1.x, 2.x, XL, 3/3.5, Flux.1, Chroma, Z-Image and Qwen-Image "
    "(StableDiffusionPipeline, StableDiffusionXLPipeline, StableDiffusion3Pipeline, FluxPipeline, "
    "ChromaPipeline, ZImagePipeline, QwenImagePipeline)"
)
# How a family guides: classifier-free guidance batched unconditional-then-conditional, an
# embedding of the scale the denoiser reads (Flux.1 [dev]: "Distilled CFG"), or not at all.
CFG, EMBEDDING, NO_GUIDANCE = "cfg", "embedding", "none"
ETA = 0.0  # the pipelines' default; the app never sets eta


class UnsupportedFamily(ValueError):
    """A pipeline class the app cannot render with."""


@dataclass(frozen=True)
class Embedding:
    """One or more texts as the denoiser reads them: hidden states, SDXL's and Flux.1's pooled
    vector, and which tokens it attends to where texts differ in length (Chroma, Z-Image)."""

    hidden: torch.Tensor  # (texts, tokens, width)
    pooled: torch.Tensor | None = None  # (texts, projection); SDXL, SD3, Flux.1
    mask: torch.Tensor | None = None  # (texts, tokens): the tokens read; None: all of them

    @staticmethod
    def cat(parts: list[Embedding]) -> Embedding:
        """The texts one after another; with masks, each padded (masked out) to the longest."""
        tokens = max(part.hidden.shape[1] for part in parts)
        padded = [part.padded(tokens) for part in parts]
        pooled = [part.pooled for part in padded]
        masks = [part.mask for part in padded]
        return Embedding(
            torch.cat([part.hidden for part in padded]),
            None if pooled[0] is None else torch.cat(pooled),  # type: ignore[arg-type]
            None if masks[0] is None else torch.cat(masks),  # type: ignore[arg-type]
        )

    def padded(self, tokens: int) -> Embedding:
        """These texts with zero tokens after their own up to `tokens`, masked out."""
        pad = tokens - self.hidden.shape[1]
        if not pad or self.mask is None:
            return self
        hidden, mask = self.hidden, self.mask
        return Embedding(
            torch.cat([hidden, hidden.new_zeros((hidden.shape[0], pad, hidden.shape[2]))], 1),
            self.pooled,
            torch.cat([mask, mask.new_zeros((mask.shape[0], pad))], 1),
        )

    def zeros(self) -> Embedding:
        return Embedding(
            torch.zeros_like(self.hidden),
            None if self.pooled is None else torch.zeros_like(self.pooled),
            self.mask,
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

    flow: bool = False  # a flow-matching transformer, denoised in our own loop (lockstep.py)
    # Guides by a true CFG scale beside its own guidance (Flux.1's `true_cfg_scale`).
    true_cfg: bool = False

    def denoiser(self, pipe: DiffusionPipeline) -> torch.nn.Module:
        """The model that predicts each step: the UNet, or a flow family's transformer."""
        return pipe.unet

    def native_size(self, pipe: DiffusionPipeline) -> int:
        """The resolution the model was trained at: its sample size times the VAE's scale."""
        return pipe.unet.config.sample_size * pipe.vae_scale_factor

    def size_step(self, model: Any) -> int:
        """What a loaded model's sides must be a multiple of: one latent pixel here."""
        return 8

    def latent_shape(self, pipe: DiffusionPipeline, width: int, height: int) -> tuple[int, ...]:
        """One image's (C, H, W) start noise, the shape diffusers draws it at."""
        scale = pipe.vae_scale_factor
        return (self.denoiser(pipe).config.in_channels, height // scale, width // scale)

    def guidance_kind(self, pipe: DiffusionPipeline) -> str:
        return CFG

    def card_defaults(self, model_id: str, pipe: DiffusionPipeline) -> ModelDefaults | None:
        """The settings the model card gives, where the family has its own (flow families)."""
        return None

    def default_shift(self, model: Any, width: int, height: int) -> tuple[float | None, ...]:
        """A flow schedule's shift at this size and the `mu` it came from; (None, None) here."""
        return None, None

    def truncated(self, pipe: DiffusionPipeline, prompt: str) -> bool:
        """Whether the text encoder cuts the prompt's tail off (CLIP reads 77 tokens)."""
        tokenizer = pipe.tokenizer
        return len(tokenizer(prompt).input_ids) > tokenizer.model_max_length

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

    def prepare(
        self,
        view: DiffusionPipeline,
        steps: int,
        noise: torch.Tensor,
        generator: list[torch.Generator],
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """A run set up as the pipeline sets one up: the timesteps first (`init_noise_sigma`
        depends on them), then the noise (N, C, H, W) as the denoiser's latents; also the
        keywords of the scheduler's `step`."""
        device = view._execution_device
        timesteps, _ = retrieve_timesteps(view.scheduler, steps, device)
        images, channels, height, width = noise.shape
        scale = view.vae_scale_factor
        latents = view.prepare_latents(
            images, channels, height * scale, width * scale, noise.dtype, device, generator, noise
        )
        return latents, timesteps, view.prepare_extra_step_kwargs(generator, ETA)

    def model_input(
        self, scheduler: SchedulerMixin, latents: torch.Tensor, timestep: torch.Tensor
    ) -> torch.Tensor:
        return scheduler.scale_model_input(latents, timestep)

    def cfg_scale(self, view: DiffusionPipeline, scale: float, true_cfg: float) -> float | None:
        """The classifier-free guidance scale of a step, None where the pipeline guides none
        (scale up to 1, or an LCM UNet's guidance embedding)."""
        guided = scale > 1 and view.unet.config.time_cond_proj_dim is None
        return scale if guided else None

    def guide(self, uncond: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
        """Classifier-free guidance of one step's predictions, as the pipeline combines them."""
        return uncond + scale * (text - uncond)

    def call_scale(self, view: DiffusionPipeline, scale: float) -> float | None:
        """The guidance scale `predict` feeds the denoiser itself (an LCM UNet's guidance
        embedding), None where it feeds none: rows that differ in it cannot share a call."""
        return None if view.unet.config.time_cond_proj_dim is None else scale

    def predict(
        self,
        view: DiffusionPipeline,
        sample: torch.Tensor,
        timesteps: torch.Tensor,
        texts: list[Embedding],
        scale: float,
        extras: dict[str, Any],
        size: tuple[int, int],
    ) -> torch.Tensor:
        """One denoiser call on `sample` (rows of every lane, the unconditional ones first),
        a timestep per row, the rows' texts."""
        return view.unet(
            sample,
            timesteps.float(),
            timestep_cond=_timestep_cond(view, scale, sample.shape[0], sample.dtype),
            return_dict=False,
            **self.unet_arguments(view, texts, extras),
        )[0]

    def unpack(self, latents: torch.Tensor, size: tuple[int, int], scale: int) -> torch.Tensor:
        """The denoiser's latents as (N, C, H, W) images of latent pixels."""
        return latents

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


@dataclass(frozen=True)
class FlowFamily(Family):
    """A flow-matching transformer: Stable Diffusion 3/3.5, and Flux.1 (`FluxFamily`).

    Prompts are read by two CLIP encoders (pooled, side by side) and T5 (`text_tokens`); the
    transformer predicts a flow, one call per step, guided uncond-then-cond where the scale is
    over 1; the schedule is shifted (a fixed shift, or `exp(mu)` from the image's token count
    where the scheduler config shifts dynamically, the same curve); the VAE has a shift
    factor. Rendered in our own loop (pipeline/lockstep.py), so every sampler gets the shift
    and a stochastic one the tile's generator.
    """

    flow: bool = True
    text_tokens: int = 256  # what T5 reads: SD3 256, Flux 512
    patch: int = 2  # latent pixels per transformer patch side
    max_shift: float = 1.16  # StableDiffusion3Pipeline's default; FluxPipeline's is 1.15

    def denoiser(self, pipe: DiffusionPipeline) -> torch.nn.Module:
        return pipe.transformer

    def native_size(self, pipe: DiffusionPipeline) -> int:
        return pipe.default_sample_size * pipe.vae_scale_factor

    def size_step(self, model: Any) -> int:
        """A patch of latent pixels (2x2: 16 pixels at the VAE's scale of 8)."""
        return model.pipe.vae_scale_factor * self.patch

    def card_defaults(self, model_id: str, pipe: DiffusionPipeline) -> ModelDefaults:
        """Stable Diffusion 3.5's model cards: Large 28 steps at CFG 3.5, Medium (MMDiT-X's
        dual attention layers) 40 at 4.5, Large Turbo 4 without guidance; SD3 Medium 28 at 7."""
        config = pipe.transformer.config
        if "turbo" in PurePath(model_id.rstrip("/")).name.lower():
            turbo = ("Euler", "LCM", "Euler Beta")
            return _card("sd3.5-large-turbo", 4, (4, 8), 0.0, turbo, "its name")
        if config.dual_attention_layers:
            return _card(
                "sd3.5-medium", 40, (28, 50), 4.5, self.compare, "its dual attention layers"
            )
        if config.num_layers >= 38:
            return _card("sd3.5-large", 28, (20, 50), 3.5, self.compare, "its 38 layers")
        return _card("sd3-medium", 28, (20, 50), 7.0, self.compare, "its layout")

    def default_shift(self, model: Any, width: int, height: int) -> tuple[float | None, ...]:
        """The scheduler config's shift, or `exp(mu)` with `mu` from the image's token count
        where it shifts dynamically (diffusers' `calculate_shift`, as the pipeline calls it)."""
        config = model.pipe.scheduler.config
        if not config.get("use_dynamic_shifting"):
            return float(config.get("shift", 1.0)), None
        scale = model.pipe.vae_scale_factor * self.patch
        mu = calculate_shift(
            (height // scale) * (width // scale),
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5),
            config.get("max_shift", self.max_shift),
        )
        return math.exp(mu), mu

    def truncated(self, pipe: DiffusionPipeline, prompt: str) -> bool:
        """T5 reads the whole prompt up to `text_tokens`; CLIP's 77 only give the pooled
        vector (and SD3's first tokens), so T5's count is the one that loses text."""
        tokenizer = self._t5_tokenizer(pipe)
        if tokenizer is None:
            return super().truncated(pipe, prompt)
        return len(tokenizer(prompt).input_ids) > self.text_tokens

    def _t5_tokenizer(self, pipe: DiffusionPipeline) -> Any:
        return pipe.tokenizer_3

    def encode(self, pipe: DiffusionPipeline, text: str) -> Embedding:
        hidden, _, pooled, _ = pipe.encode_prompt(
            text,
            None,
            None,
            device=pipe._execution_device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
            max_sequence_length=self.text_tokens,
        )
        return Embedding(hidden, pooled)

    def prepare(
        self,
        view: DiffusionPipeline,
        steps: int,
        noise: torch.Tensor,
        generator: list[torch.Generator],
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """The timesteps as the pipeline sets them (the shift is in the scheduler's config),
        the noise in the transformer's layout, and the tile's generators for `step`: the
        pipeline passes none, which would leave a stochastic sampler to the global RNG."""
        scheduler = view.scheduler
        self.set_timesteps(scheduler, steps, view._execution_device)
        accepts = inspect.signature(scheduler.step).parameters
        extra = {"generator": generator} if "generator" in accepts else {}
        return self.pack(noise), scheduler.timesteps, extra

    def set_timesteps(self, scheduler: SchedulerMixin, steps: int, device: Any) -> None:
        retrieve_timesteps(scheduler, steps, device)

    def pack(self, noise: torch.Tensor) -> torch.Tensor:
        return noise

    def model_input(
        self, scheduler: SchedulerMixin, latents: torch.Tensor, timestep: torch.Tensor
    ) -> torch.Tensor:
        return latents  # the flow pipelines scale nothing

    def cfg_scale(self, view: DiffusionPipeline, scale: float, true_cfg: float) -> float | None:
        return scale if scale > 1 else None

    def call_scale(self, view: DiffusionPipeline, scale: float) -> float | None:
        return None

    def predict(
        self,
        view: DiffusionPipeline,
        sample: torch.Tensor,
        timesteps: torch.Tensor,
        texts: list[Embedding],
        scale: float,
        extras: dict[str, Any],
        size: tuple[int, int],
    ) -> torch.Tensor:
        return view.transformer(
            hidden_states=sample,
            timestep=timesteps,
            encoder_hidden_states=torch.cat([text.hidden for text in texts]),
            pooled_projections=torch.cat([text.pooled for text in texts]),  # type: ignore[misc]
            return_dict=False,
        )[0]

    def decode(
        self, pipe: DiffusionPipeline, latents: torch.Tensor, generator: list[torch.Generator]
    ) -> torch.Tensor:
        """As the flow pipelines decode: by the VAE's scale, then its shift factor."""
        config = pipe.vae.config
        latents = latents / config.scaling_factor + config.shift_factor
        return pipe.vae.decode(latents.to(pipe.vae.dtype), return_dict=False)[0]

    def check_and_finish(
        self, pipe: DiffusionPipeline, images: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, list[bool]]:
        """No safety checker and no watermark in these pipelines."""
        return images, [False] * len(images)


@dataclass(frozen=True)
class FluxFamily(FlowFamily):
    """Flux.1: CLIP's pooled vector and T5's 512 tokens; latents packed into 2x2 patches as
    tokens with `img_ids` (and zero `txt_ids`); [dev]'s guidance an embedding of its scale
    ("Distilled CFG", one pass per step, a value per row), true CFG only with
    `true_cfg_scale` over 1 (the negative prompt's pass); sigmas from 1 to 1/steps, shifted."""

    text_tokens: int = 512
    max_shift: float = 1.15
    true_cfg: bool = True

    def latent_shape(self, pipe: DiffusionPipeline, width: int, height: int) -> tuple[int, ...]:
        scale = pipe.vae_scale_factor * 2
        channels = pipe.transformer.config.in_channels // 4
        return (channels, 2 * (height // scale), 2 * (width // scale))

    def guidance_kind(self, pipe: DiffusionPipeline) -> str:
        return EMBEDDING if pipe.transformer.config.guidance_embeds else NO_GUIDANCE

    def card_defaults(self, model_id: str, pipe: DiffusionPipeline) -> ModelDefaults:
        """FLUX.1 [dev]'s card: 28 steps at Distilled CFG 3.5; [schnell]'s: 4, no guidance."""
        if pipe.transformer.config.guidance_embeds:
            reason = "its guidance embedding"
            return _card("flux-dev", 28, (20, 50), 3.5, self.compare, reason)
        schnell = ("Euler", "LCM", "Euler Beta", "DPM++ 2M")
        return _card("flux-schnell", 4, (1, 4), 0.0, schnell, "no guidance embedding")

    def _t5_tokenizer(self, pipe: DiffusionPipeline) -> Any:
        return pipe.tokenizer_2

    def encode(self, pipe: DiffusionPipeline, text: str) -> Embedding:
        hidden, pooled, _ = pipe.encode_prompt(
            text,
            None,
            device=pipe._execution_device,
            num_images_per_prompt=1,
            max_sequence_length=self.text_tokens,
        )
        return Embedding(hidden, pooled)

    def set_timesteps(self, scheduler: SchedulerMixin, steps: int, device: Any) -> None:
        """FluxPipeline's sigmas, 1 to 1/steps, to a scheduler that takes them; a solver with
        flow sigmas makes its own, as the pipeline leaves it to."""
        accepts = "sigmas" in inspect.signature(scheduler.set_timesteps).parameters
        if accepts and not scheduler.config.get("use_flow_sigmas"):
            sigmas = np.linspace(1.0, 1 / steps, steps)
            retrieve_timesteps(scheduler, None, device, sigmas=sigmas)
        else:
            retrieve_timesteps(scheduler, steps, device)
        scheduler.set_begin_index(0)

    def pack(self, noise: torch.Tensor) -> torch.Tensor:
        images, channels, height, width = noise.shape
        return FluxPipeline._pack_latents(noise, images, channels, height, width)

    def unpack(self, latents: torch.Tensor, size: tuple[int, int], scale: int) -> torch.Tensor:
        width, height = size
        return FluxPipeline._unpack_latents(latents, height, width, scale)

    def cfg_scale(self, view: DiffusionPipeline, scale: float, true_cfg: float) -> float | None:
        return true_cfg if true_cfg > 1 else None

    def call_scale(self, view: DiffusionPipeline, scale: float) -> float | None:
        """[dev]'s Distilled CFG, embedded as one number for the whole call."""
        return scale if view.transformer.config.get("guidance_embeds") else None

    def predict(
        self,
        view: DiffusionPipeline,
        sample: torch.Tensor,
        timesteps: torch.Tensor,
        texts: list[Embedding],
        scale: float,
        extras: dict[str, Any],
        size: tuple[int, int],
    ) -> torch.Tensor:
        transformer = view.transformer
        hidden = torch.cat([text.hidden for text in texts])
        rows, device = sample.shape[0], sample.device
        _, height, width = self.latent_shape(view, *size)
        image_ids = view._prepare_latent_image_ids(
            rows, height // 2, width // 2, device, hidden.dtype
        )
        embedded = None
        if transformer.config.guidance_embeds:
            embedded = torch.full([rows], scale, device=device, dtype=torch.float32)
        return transformer(
            hidden_states=sample,
            timestep=timesteps.to(sample.dtype) / 1000,
            guidance=embedded,
            pooled_projections=torch.cat([text.pooled for text in texts]),  # type: ignore[misc]
            encoder_hidden_states=hidden,
            txt_ids=torch.zeros(hidden.shape[1], 3, device=device, dtype=hidden.dtype),
            img_ids=image_ids,
            return_dict=False,
        )[0]


@dataclass(frozen=True)
class ChromaFamily(FluxFamily):
    """Chroma: Flux.1's layout without CLIP or a guidance embedding; T5 alone reads the prompt,
    its padding masked out but for one token (the mask goes to the transformer beside the
    image's tokens), and real CFG: the negative prompt's pass when the scale is over 1."""

    true_cfg: bool = False

    def guidance_kind(self, pipe: DiffusionPipeline) -> str:
        return CFG

    def card_defaults(self, model_id: str, pipe: DiffusionPipeline) -> ModelDefaults:
        """Chroma1-HD's card: 40 steps at CFG 3; its users sample with Euler on the Beta
        schedule."""
        return _card("chroma", 40, (26, 50), 3.0, self.compare, "its T5-only transformer")

    def _t5_tokenizer(self, pipe: DiffusionPipeline) -> Any:
        return pipe.tokenizer

    def encode(self, pipe: DiffusionPipeline, text: str) -> Embedding:
        hidden, _, mask, *_ = pipe.encode_prompt(
            text,
            device=pipe._execution_device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.text_tokens,
        )
        return Embedding(hidden, mask=mask)

    cfg_scale = FlowFamily.cfg_scale  # real CFG over 1, where Flux.1 has only its true CFG

    def predict(
        self,
        view: DiffusionPipeline,
        sample: torch.Tensor,
        timesteps: torch.Tensor,
        texts: list[Embedding],
        scale: float,
        extras: dict[str, Any],
        size: tuple[int, int],
    ) -> torch.Tensor:
        text = Embedding.cat(texts)
        rows, tokens, device = sample.shape[0], sample.shape[1], sample.device
        _, height, width = self.latent_shape(view, *size)
        dtype = text.hidden.dtype
        return view.transformer(
            hidden_states=sample,
            timestep=timesteps.to(sample.dtype) / 1000,
            encoder_hidden_states=text.hidden,
            txt_ids=torch.zeros(text.hidden.shape[1], 3, device=device, dtype=dtype),
            img_ids=view._prepare_latent_image_ids(rows, height // 2, width // 2, device, dtype),
            attention_mask=view._prepare_attention_mask(rows, tokens, sample.dtype, text.mask),
            return_dict=False,
        )[0]


@dataclass(frozen=True)
class ZImageFamily(FlowFamily):
    """Z-Image (Turbo and base): Qwen3 reads the prompt through its chat template (the second
    to last layer, the padding dropped: texts of their own lengths); a single-stream
    transformer reading a list of unpacked latents and a list of texts, the time running from
    0 (noise) to 1, predicting the negative of the flow; Flux.1's sigmas and VAE; CFG with the
    conditional pass first, `text + g * (text - uncond)` for any scale over 0 (Turbo: 0)."""

    text_tokens: int = 512
    max_shift: float = 1.15

    def native_size(self, pipe: DiffusionPipeline) -> int:
        """ZImagePipeline's 1024 px, as 128 latent pixels (Flux.1's default sample size)."""
        return 128 * pipe.vae_scale_factor

    def latent_shape(self, pipe: DiffusionPipeline, width: int, height: int) -> tuple[int, ...]:
        scale = pipe.vae_scale_factor * 2
        channels = pipe.transformer.config.in_channels
        return (channels, 2 * (height // scale), 2 * (width // scale))

    def card_defaults(self, model_id: str, pipe: DiffusionPipeline) -> ModelDefaults:
        """Z-Image Turbo's card: 8 model calls (its example's 9 steps), no guidance, shift 3 in
        its scheduler; Z-Image (base): 50 steps at CFG 4."""
        if "turbo" in PurePath(model_id.rstrip("/")).name.lower():
            turbo = ("Euler", "Euler Beta", "DPM++ 2M", "UniPC")
            return _card("z-image-turbo", 8, (6, 12), 0.0, turbo, "its name")
        return _card("z-image", 50, (28, 50), 4.0, self.compare, "its name")

    def truncated(self, pipe: DiffusionPipeline, prompt: str) -> bool:
        """Qwen3 reads 512 tokens of the prompt in its chat template."""
        message = [{"role": "user", "content": prompt}]
        text = pipe.tokenizer.apply_chat_template(
            message, tokenize=False, add_generation_prompt=True, enable_thinking=True
        )
        return len(pipe.tokenizer(text).input_ids) > self.text_tokens

    def encode(self, pipe: DiffusionPipeline, text: str) -> Embedding:
        [hidden], _ = pipe.encode_prompt(
            text,
            pipe._execution_device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.text_tokens,
        )
        return Embedding(hidden[None], mask=hidden.new_ones(1, hidden.shape[0], dtype=torch.bool))

    set_timesteps = FluxFamily.set_timesteps  # Flux.1's sigmas, 1 to 1/steps

    def cfg_scale(self, view: DiffusionPipeline, scale: float, true_cfg: float) -> float | None:
        return scale if scale > 0 else None

    def guide(self, uncond: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
        return text + scale * (text - uncond)

    def predict(
        self,
        view: DiffusionPipeline,
        sample: torch.Tensor,
        timesteps: torch.Tensor,
        texts: list[Embedding],
        scale: float,
        extras: dict[str, Any],
        size: tuple[int, int],
    ) -> torch.Tensor:
        transformer = view.transformer
        text = Embedding.cat(texts)
        words = [hidden[mask] for hidden, mask in zip(text.hidden, text.mask, strict=True)]  # type: ignore[arg-type]
        latents = list(sample.to(transformer.dtype).unsqueeze(2).unbind(dim=0))
        flow = transformer(latents, (1000 - timesteps) / 1000, words, return_dict=False)[0]
        return -torch.stack([row.float() for row in flow]).squeeze(2)


@dataclass(frozen=True)
class QwenImageFamily(FluxFamily):
    """Qwen-Image: Qwen2.5-VL reads the prompt in the pipeline's description template (the
    template's first tokens dropped, texts of their own lengths); Flux.1's packed latents and
    sigmas, a video VAE decoding one frame with its latents' mean and std; its guidance is a
    true CFG scale (`true_cfg_scale`, 4 on its card) rescaled to the conditional prediction's
    norm, the negative prompt's pass whenever the scale is over 1."""

    true_cfg: bool = False

    def guidance_kind(self, pipe: DiffusionPipeline) -> str:
        return CFG

    def card_defaults(self, model_id: str, pipe: DiffusionPipeline) -> ModelDefaults:
        """Qwen-Image's card: 50 steps at true CFG 4."""
        return _card("qwen-image", 50, (20, 50), 4.0, self.compare, "its pipeline class")

    def truncated(self, pipe: DiffusionPipeline, prompt: str) -> bool:
        """The prompt's tokens in the template, less the template's dropped head, past the
        512 the pipeline keeps."""
        tokens = pipe.tokenizer(pipe.prompt_template_encode.format(prompt)).input_ids
        return len(tokens) - pipe.prompt_template_encode_start_idx > self.text_tokens

    def encode(self, pipe: DiffusionPipeline, text: str) -> Embedding:
        hidden, _ = pipe.encode_prompt(
            text, pipe._execution_device, max_sequence_length=self.text_tokens
        )
        return Embedding(hidden, mask=hidden.new_ones(hidden.shape[:2], dtype=torch.bool))

    cfg_scale = FlowFamily.cfg_scale

    def guide(self, uncond: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
        guided = super().guide(uncond, text, scale)
        rescale = torch.norm(text, dim=-1, keepdim=True) / torch.norm(guided, dim=-1, keepdim=True)
        return guided * rescale

    def predict(
        self,
        view: DiffusionPipeline,
        sample: torch.Tensor,
        timesteps: torch.Tensor,
        texts: list[Embedding],
        scale: float,
        extras: dict[str, Any],
        size: tuple[int, int],
    ) -> torch.Tensor:
        text = Embedding.cat(texts)
        _, height, width = self.latent_shape(view, *size)
        mask = None if text.mask.all() else text.mask  # type: ignore[union-attr]
        return view.transformer(
            hidden_states=sample,
            timestep=timesteps.to(sample.dtype) / 1000,
            encoder_hidden_states_mask=mask,
            encoder_hidden_states=text.hidden,
            img_shapes=[[(1, height // 2, width // 2)]] * sample.shape[0],
            return_dict=False,
        )[0]

    def decode(
        self, pipe: DiffusionPipeline, latents: torch.Tensor, generator: list[torch.Generator]
    ) -> torch.Tensor:
        """As QwenImagePipeline decodes: one video frame, by the VAE's latents' mean and std."""
        vae = pipe.vae
        latents = latents.unsqueeze(2).to(vae.dtype)
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents)
        std = 1.0 / torch.tensor(vae.config.latents_std).view(shape).to(latents)
        return vae.decode(latents / std + mean, return_dict=False)[0][:, :, 0]


def _card(*settings: Any) -> ModelDefaults:
    """A flow model's settings from its model card."""
    return ModelDefaults(*settings, title="model card")


def _timestep_cond(
    view: DiffusionPipeline, scale: float, rows: int, dtype: torch.dtype
) -> torch.Tensor | None:
    """The guidance-scale embedding a UNet with `time_cond_proj_dim` takes (LCM), one a row."""
    dim = view.unet.config.time_cond_proj_dim
    if dim is None:
        return None
    embedding = view.get_guidance_scale_embedding(
        torch.tensor(scale - 1).repeat(rows), embedding_dim=dim
    )
    return embedding.to(device=view._execution_device, dtype=dtype)


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
# What Compare starts with for a flow family: the card's sampler first where it is another.
_FLOW_COMPARE = ("Euler", "Euler Beta", "DPM++ 2M", "UniPC", "DEIS", "Heun")
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
# ComfyUI's latent formats for Flux and SD3 (comfy/latent_formats.py): 16 channels to RGB.
FLUX = FluxFamily(
    "flux",
    "Flux.1",
    3.5,
    _FLOW_COMPARE,
    (
        (-0.0346, 0.0244, 0.0681),
        (0.0034, 0.0210, 0.0687),
        (0.0275, -0.0668, -0.0433),
        (-0.0174, 0.0160, 0.0617),
        (0.0859, 0.0721, 0.0329),
        (0.0004, 0.0383, 0.0115),
        (0.0405, 0.0861, 0.0915),
        (-0.0236, -0.0185, -0.0259),
        (-0.0245, 0.0250, 0.1180),
        (0.1008, 0.0755, -0.0421),
        (-0.0515, 0.0201, 0.0011),
        (0.0428, -0.0012, -0.0036),
        (0.0817, 0.0765, 0.0749),
        (-0.1264, -0.0522, -0.1103),
        (-0.0280, -0.0881, -0.0499),
        (-0.1262, -0.0982, -0.0778),
    ),
    (-0.0329, -0.0718, -0.0851),
)
SD3 = FlowFamily(
    "sd3",
    "Stable Diffusion 3",
    7.0,
    _FLOW_COMPARE,
    (
        (-0.0922, -0.0175, 0.0749),
        (0.0311, 0.0633, 0.0954),
        (0.1994, 0.0927, 0.0458),
        (0.0856, 0.0339, 0.0902),
        (0.0587, 0.0272, -0.0496),
        (-0.0006, 0.1104, 0.0309),
        (0.0978, 0.0306, 0.0427),
        (-0.0042, 0.1038, 0.1358),
        (-0.0194, 0.0020, 0.0669),
        (-0.0488, 0.0130, -0.0268),
        (0.0922, 0.0988, 0.0951),
        (-0.0278, 0.0524, -0.0542),
        (0.0332, 0.0456, 0.0895),
        (-0.0069, -0.0030, -0.0810),
        (-0.0596, -0.0465, -0.0293),
        (-0.1448, -0.1463, -0.1189),
    ),
    (0.2394, 0.2135, 0.1925),
)
# Chroma decodes with Flux.1's VAE: Flux's preview colours.
CHROMA = ChromaFamily(
    "chroma",
    "Chroma",
    3.0,
    ("Euler Beta", "Euler", "DPM++ 2M", "UniPC", "DEIS", "Heun"),
    FLUX.preview_factors,
    FLUX.preview_bias,
)
# Z-Image decodes with Flux.1's VAE: Flux's preview colours.
Z_IMAGE = ZImageFamily(
    "z-image",
    "Z-Image",
    4.0,
    _FLOW_COMPARE,
    FLUX.preview_factors,
    FLUX.preview_bias,
)
# ComfyUI's Wan 2.1 latent format (comfy/latent_formats.py): Qwen-Image's VAE is Wan's.
QWEN_IMAGE = QwenImageFamily(
    "qwen-image",
    "Qwen-Image",
    4.0,
    _FLOW_COMPARE,
    (
        (-0.1299, -0.1692, 0.2932),
        (0.0671, 0.0406, 0.0442),
        (0.3568, 0.2548, 0.1747),
        (0.0372, 0.2344, 0.1420),
        (0.0313, 0.0189, -0.0328),
        (0.0296, -0.0956, -0.0665),
        (-0.3477, -0.4059, -0.2925),
        (0.0166, 0.1902, 0.1975),
        (-0.0412, 0.0267, -0.1364),
        (-0.1293, 0.0740, 0.1636),
        (0.0680, 0.3019, 0.1128),
        (0.0032, 0.0581, 0.0639),
        (-0.1251, 0.0927, 0.1699),
        (0.0060, -0.0633, 0.0005),
        (0.3477, 0.2275, 0.2950),
        (0.1984, 0.0913, 0.1861),
    ),
    (-0.1835, -0.0868, -0.3360),
)
FAMILIES = {
    family.name: family for family in (SD1, SD2, SDXL, FLUX, SD3, CHROMA, Z_IMAGE, QWEN_IMAGE)
}
_BY_CLASS = {
    "StableDiffusionPipeline": SD1,
    "StableDiffusionXLPipeline": SDXL,
    "FluxPipeline": FLUX,
    "StableDiffusion3Pipeline": SD3,
    "ChromaPipeline": CHROMA,
    "ZImagePipeline": Z_IMAGE,
    "QwenImagePipeline": QWEN_IMAGE,
}


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
    if isinstance(pipe, FluxPipeline):
        return FLUX
    if isinstance(pipe, StableDiffusion3Pipeline):
        return SD3
    if isinstance(pipe, ChromaPipeline):
        return CHROMA
    if isinstance(pipe, ZImagePipeline):
        return Z_IMAGE
    if isinstance(pipe, QwenImagePipeline):
        return QWEN_IMAGE
    if isinstance(pipe, StableDiffusionPipeline):
        v_prediction = pipe.scheduler.config.get("prediction_type") == "v_prediction"
        return SD2 if v_prediction or pipe.unet.config.cross_attention_dim == 1024 else SD1
    return family_for_class(type(pipe).__name__)
