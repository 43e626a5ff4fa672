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
whole group: a tile is re-rendered bit-exact by rendering its whole group again. Calls padded
to a fixed number of rows (`predict`'s `rows`, pipeline/sharing.py) make a lane's pixels its
own: in a call of a fixed shape a row depends on nothing else in it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
            chunk = pending[first : first + per_call]
            predictions = predict([(lane, guidance) for lane in chunk])
            for lane, own in zip(chunk, predictions, strict=True):
                advance(lane, own)
            yield iteration


@torch.no_grad()
def predict(
    entries: Sequence[tuple[Lane, Guidance]], rows: int | None = None
) -> list[torch.Tensor]:
    """One denoiser call for the next evaluation of each lane, guided by its own Guidance:
    each lane's guided prediction. Nothing of a lane changes (a failed call can be made again).

    The rows are laid out as the pipeline lays out a batch: every unconditional row (of the
    lanes that guide by CFG), then every conditional one. `rows`: the call is padded to exactly
    that many rows (copies of its last), so that its shape never depends on what shares it;
    what the family's denoiser reads as one number (`Family.call_scale`) and the extras are
    the first entry's, which the caller keeps equal for every entry.
    """
    first, guidance = entries[0]
    family = guidance.family
    scales = [family.cfg_scale(lane.view, own.scale, own.true_cfg) for lane, own in entries]
    timesteps = [lane.timesteps[lane.done] for lane, _ in entries]
    counts = [lane.latents.shape[0] for lane, _ in entries]
    guided = [index for index, cfg in enumerate(scales) if cfg is not None]
    # Per lane as the pipeline does: its latents doubled for guidance, scaled by its scheduler.
    inputs = [
        family.model_input(
            lane.view.scheduler, torch.cat([lane.latents] * (1 + (cfg is not None))), t
        )
        for (lane, _), cfg, t in zip(entries, scales, timesteps, strict=True)
    ]
    # (lane, half): 0 its unconditional rows, 1 its conditional ones.
    order = [(index, 0) for index in guided] + [(index, 1) for index in range(len(entries))]
    samples = [
        inputs[i][counts[i] :] if half and scales[i] is not None else inputs[i][: counts[i]]
        for i, half in order
    ]
    texts = [entries[i][0].prompt if half else entries[i][0].negative for i, half in order]
    per_sample = [timesteps[i].expand(counts[i]) for i, _ in order]
    used = sum(counts[i] for i, _ in order)
    if rows is not None:
        if used > rows:
            raise ValueError(f"{used} rows do not fit a call of {rows}")
        padding = rows - used
        samples.append(samples[-1][-1:].expand(padding, *samples[-1].shape[1:]))
        texts.append(_repeat_last(texts[-1], padding))
        per_sample.append(per_sample[-1][-1:].expand(padding))
    output = family.predict(
        first.view,
        torch.cat(samples),
        torch.cat(per_sample),
        texts,
        guidance.scale,
        guidance.extras,
        first.size,
    )
    parts = iter(output[:used].split([counts[i] for i, _ in order]))
    unconditional = {index: next(parts) for index in guided}
    predictions = []
    for index, text in enumerate(parts):
        cfg = scales[index]
        if cfg is not None:
            uncond = unconditional[index]
            text = family.guide(uncond, text, cfg)
        predictions.append(text)
    return predictions


@torch.no_grad()
def advance(lane: Lane, prediction: torch.Tensor) -> None:
    """The lane's scheduler steps with its own prediction: its next latents."""
    t = lane.timesteps[lane.done]
    step = lane.view.scheduler.step(
        prediction, t, lane.latents, **lane.extra_step_kwargs, return_dict=False
    )
    lane.latents = step[0]
    lane.done += 1


def _repeat_last(text: Embedding, count: int) -> Embedding:
    """The text's last row, `count` times: a padding row's."""
    pooled, mask = text.pooled, text.mask
    return Embedding(
        text.hidden[-1:].expand(count, *text.hidden.shape[1:]),
        None if pooled is None else pooled[-1:].expand(count, *pooled.shape[1:]),
        None if mask is None else mask[-1:].expand(count, *mask.shape[1:]),
    )


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
