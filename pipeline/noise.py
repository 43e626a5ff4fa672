"""The noise a call's images start from, and the generators their sampler then draws from.

Always drawn in float32 (then cast to the model's dtype): a seed's noise is the same whatever
the precision. Without a variation it is what diffusers draws from the image's own generator;
with one, A1111's blend of the seed's and the variation seed's (pipeline/variation.py). Either
way the generator an ancestral scheduler then draws from is the seed's, past that first draw.
"""

from __future__ import annotations

from typing import Any

import torch

from pipeline.loading import LoadedModel
from pipeline.plan import Item, Plan
from pipeline.variation import nv_noise, start_noise, step_generator

NV = "nv"  # the generator device that makes A1111's NV noise (NVIDIA's) on the CPU


def draw_noise(
    model: LoadedModel, items: list[Item], plan: Plan
) -> tuple[list[torch.Generator], torch.Tensor, torch.Tensor]:
    """Each item's generator, its float32 start noise (recorded in its recipe as a hash), and
    that noise as the model's latents."""
    pipe = model.pipe
    scale = pipe.vae_scale_factor
    shape = model.family.latent_shape(pipe, plan.width, plan.height)
    device = plan.generator_device

    def source(seed: int, size: Any) -> torch.Tensor:
        generator = torch.Generator(device).manual_seed(seed)
        return torch.randn(tuple(size), generator=generator, device=device)

    if device == NV:
        # A1111's NV noise starts the image; diffusers draws step noise from a
        # torch.Generator, so an ancestral scheduler's is the CPU generator's.
        source, device = nv_noise, "cpu"

    noise = torch.stack(
        [
            start_noise(
                item.seed,
                shape,
                source,
                item.variation_seed,
                item.strength,
                item.resize_from,
                scale,
                item.base_variations,
            )
            for item in items
        ]
    ).to(pipe._execution_device)  # under --offload, the GPU the modules run on
    gens = [step_generator(item.seed, shape, device) for item in items]
    return gens, noise, noise.to(model.family.denoiser(pipe).dtype)
