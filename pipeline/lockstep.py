"""Compare in lockstep: several schedulers denoise the same noise at once, one denoiser call
(UNet or transformer) a step.

Each scheduler keeps a *lane* of its own: a pipeline view owning its scheduler instance, its
own generator and its own latents. At each step the next pending model evaluation of every
unfinished lane goes through one batched denoiser call, with a timestep per sample; each lane's
`step()` then gets its own slice. Second-order schedulers (Heun, DPM2) list every model
evaluation in their `timesteps`, so a lane walks its own list, one evaluation per iteration;
a lane that is done leaves the batch.

Per lane everything follows the family's pipeline `__call__` (diffusers 0.42): timesteps
first, then the noise scaled by `init_noise_sigma`; `scale_model_input`; guidance as the
family combines it (`uncond + g * (text - uncond)`; the engine never sets `guidance_rescale`,
Qwen-Image rescales to the conditional prediction's norm); `timestep_cond` for
a UNet with `time_cond_proj_dim`; the family's UNet extras (SDXL: `text_embeds` and
`time_ids`, in the same unconditional-then-conditional order); `step()` with the pipeline's
`prepare_extra_step_kwargs`; then the family's decode (SDXL: the VAE upcast), its safety
checker or watermark, and `image_processor.postprocess`.

A flow family (Flux, SD3) is denoised here even for a grid (one lane of all its images): its
pipeline has no generator for a stochastic sampler's step and a shift some samplers reject,
so the loop follows `FluxPipeline.__call__` / `StableDiffusion3Pipeline.__call__` with the
shift in each scheduler's config and the tile's generators passed to `step()`. What differs
(latent packing, the transformer's inputs, how it guides) is the family's.

A lane's pixels depend on the batch shapes of the calls it took part in, which depend on the
whole group: a tile is re-rendered bit-exact by rendering its whole group again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from pipeline.families import Embedding, Family


@dataclass
class Lane:
    """One scheduler's run: its view (which owns its scheduler), generators and latents, and
    the text it is guided by (one row per image of the lane)."""

    view: DiffusionPipeline
    generator: list[torch.Generator]
    latents: torch.Tensor
    timesteps: torch.Tensor  # one entry per model evaluation
    extra_step_kwargs: dict[str, Any]
    prompt: Embedding
    negative: Embedding
    family: Family
    size: tuple[int, int]  # the image's (width, height)
    done: int = 0  # model evaluations made

    @property
    def evaluations(self) -> int:
        return len(self.timesteps)

    @property
    def finished(self) -> bool:
        return self.done == self.evaluations

    def images(self) -> torch.Tensor:
        """The latents as (N, C, H, W) images of latent pixels (Flux's unpacked): a preview's."""
        return self.family.unpack(self.latents, self.size, self.view.vae_scale_factor)


@dataclass(frozen=True)
class Guidance:
    """What every lane shares: the model family, the guidance scale (Flux.1 [dev]'s the
    embedded "Distilled CFG"), true CFG's scale where the family has both, the family's
    extras."""

    family: Family
    scale: float
    extras: dict[str, Any]
    true_cfg: float = 1.0


def start(
    family: Family,
    view: DiffusionPipeline,
    steps: int,
    generator: list[torch.Generator],
    noise: torch.Tensor,
    text: tuple[Embedding, Embedding],
    size: tuple[int, int],
) -> Lane:
    """A lane set up as the family's pipeline sets up a run; `text` is the prompt's and the
    negative prompt's embeddings, a row per image; `size` the image's (width, height)."""
    latents, timesteps, extra = family.prepare(view, steps, noise, generator)
    return Lane(view, generator, latents, timesteps, extra, *text, family, size)


@torch.no_grad()
def denoise(lanes: list[Lane], guidance: Guidance, per_call: int) -> Iterator[int]:
    """Run every lane to its end, `per_call` lanes per UNet call.

    Yields the iteration (1-based) after each UNet call: the caller's moment to report progress
    or stop. Iteration i is every unfinished lane's i-th evaluation.
    """
    iteration = 0
    while pending := [lane for lane in lanes if not lane.finished]:
        iteration += 1
        for first in range(0, len(pending), per_call):
            _evaluate(pending[first : first + per_call], guidance)
            yield iteration


def _evaluate(lanes: list[Lane], guidance: Guidance) -> None:
    """One denoiser call: the next evaluation of each lane, then each lane's step."""
    view = lanes[0].view
    family = guidance.family
    # The pipeline's do_classifier_free_guidance (Flux's do_true_cfg).
    cfg = family.cfg_scale(view, guidance.scale, guidance.true_cfg)
    halves = 1 if cfg is None else 2
    images = lanes[0].latents.shape[0]
    timesteps = [lane.timesteps[lane.done] for lane in lanes]
    # Per lane as the pipeline does: its latents doubled for guidance, scaled by its scheduler.
    inputs = [
        family.model_input(lane.view.scheduler, torch.cat([lane.latents] * halves), t)
        for lane, t in zip(lanes, timesteps, strict=True)
    ]
    # The pipeline's order for a batch: every unconditional sample, then every conditional one.
    parts = [slice(half * images, (half + 1) * images) for half in range(halves)]
    sample = torch.cat([scaled[part] for part in parts for scaled in inputs])
    texts = ([lane.negative for lane in lanes] if cfg else []) + [lane.prompt for lane in lanes]
    per_sample = torch.cat([t.expand(images) for _ in parts for t in timesteps])
    noise_pred = family.predict(
        view, sample, per_sample, texts, guidance.scale, guidance.extras, lanes[0].size
    )
    if cfg is not None:
        noise_pred = family.guide(*noise_pred.chunk(2), cfg)
    for lane, t, own in zip(lanes, timesteps, noise_pred.split(images), strict=True):
        step = lane.view.scheduler.step(
            own, t, lane.latents, **lane.extra_step_kwargs, return_dict=False
        )
        lane.latents = step[0]
        lane.done += 1


@torch.no_grad()
def decode(
    lanes: list[Lane], per_call: int, family: Family
) -> tuple[list[Image.Image], list[bool]]:
    """Every lane's final latents as images, `per_call` lanes per VAE call, as the pipeline
    ends a run: the family's decode and safety checker (or watermark), then postprocess.
    Also whether the checker blanked each."""
    view = lanes[0].view
    dtype = lanes[0].prompt.hidden.dtype
    images: list[Image.Image] = []
    flags: list[bool] = []
    for first in range(0, len(lanes), per_call):
        chunk = lanes[first : first + per_call]
        latents = torch.cat([lane.images() for lane in chunk])
        generator = [gen for lane in chunk for gen in lane.generator]
        decoded, nsfw = family.check_and_finish(
            view, family.decode(view, latents, generator), dtype
        )
        images += view.image_processor.postprocess(
            decoded, output_type="pil", do_denormalize=[not flag for flag in nsfw]
        )
        flags += nsfw
    return images, flags
