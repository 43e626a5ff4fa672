"""A pin's neighbours: A1111's variation seeds, "resize seed from", and seed travel.

AUTOMATIC1111 (`modules/rng.py`, `ImageRNG.first`) builds one image's start noise so:

1. noise(seed) at the "resize from" latent shape (the target shape when there is none);
2. with a variation strength other than 0, slerp(strength, that, noise(variation seed) of the
   same shape); a variation of a variation (Vary or Travel from a pinned variation) slerps
   from the pin's own blend, one blend after another, in order;
3. with a resize, noise(seed) at the target shape, with step 2's result pasted over its centre.

Every noise(...) above is a fresh generator's first draw, so a noise source is just a function
of a seed and a shape. Ancestral samplers then take their step noise from the image's own
generator for `seed` after it drew the target shape once (`ImageRNG.next`): the variation seed
never reaches them. `step_generator` gives a generator in that state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from pipeline import philox

NoiseSource = Callable[[int, Sequence[int]], torch.Tensor]
Blend = tuple[int, float]  # (variation seed, strength): one slerp of the start noise

# A1111's slerp falls back to a lerp when the two noises are this close to parallel.
PARALLEL_DOT = 0.9995
LATENT_SCALE = 8  # A1111 divides "resize seed from" by its latent factor, 8


def cpu_noise(seed: int, shape: Sequence[int]) -> torch.Tensor:
    """A1111's "CPU" RNG, and this app's default: float32 from a fresh CPU generator."""
    return torch.randn(tuple(shape), generator=torch.Generator("cpu").manual_seed(seed))


def nv_noise(seed: int, shape: Sequence[int]) -> torch.Tensor:
    """A1111's "NV" RNG: what an NVIDIA GPU's torch.randn draws for the seed, made on the CPU."""
    return torch.from_numpy(philox.randn(seed, shape))


def slerp(strength: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's slerp from `low` (strength 0) to `high` (strength 1), as `modules/rng.py` has it.

    A1111 applies it to one image's (C, H, W) noise and normalises along dim 1, so each
    (channel, column) pair is one vector over the rows, with its own angle. When the mean
    cosine is over 0.9995 it takes a lerp instead, with the weights the other way round
    (`low * strength + high * (1 - strength)`): kept, so that such noise matches A1111's.
    """
    low_unit = low / torch.norm(low, dim=1, keepdim=True)
    high_unit = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_unit * high_unit).sum(1)
    if dot.mean() > PARALLEL_DOT:
        return low * strength + high * (1 - strength)
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    low_weight = (torch.sin((1.0 - strength) * omega) / sin_omega).unsqueeze(1)
    high_weight = (torch.sin(strength * omega) / sin_omega).unsqueeze(1)
    return low_weight * low + high_weight * high


def start_noise(
    seed: int,
    shape: Sequence[int],
    noise: NoiseSource = cpu_noise,
    variation_seed: int | None = None,
    strength: float = 0.0,
    resize_from: tuple[int, int] | None = None,
    latent_scale: int = LATENT_SCALE,
    base: Sequence[Blend] = (),
) -> torch.Tensor:
    """One image's (C, H, W) start noise for a seed, a variation and "resize seed from" W x H.

    Strength 0 (or no variation seed) is noise(seed) exactly, strength 1 noise(variation seed)
    exactly. `base`: the blends the pin's own noise went through first, so that a variation
    of a pinned variation moves away from the pin's noise (strength 0 is the pin exactly).
    `resize_from` in pixels; None, or a side of 0, means none, as in A1111.
    """
    target = tuple(shape)
    if len(target) != 3:
        raise ValueError(f"the start noise of one image has a (C, H, W) shape, got {target}")
    source = _resize_shape(target, resize_from, latent_scale)
    blended = noise(seed, source)
    for other, weight in (*base, (variation_seed, strength)):
        if other is not None and weight != 0:
            blended = slerp(weight, blended, noise(other, source))
    if source == target:
        return blended
    return _centred(blended, noise(seed, target))


def travel_strengths(frames: int) -> list[float]:
    """Seed travel's strengths: 0 to 1 evenly, both ends included (the two seeds' own noise)."""
    if frames < 2:
        raise ValueError(f"seed travel needs at least 2 frames, got {frames}")
    return [index / (frames - 1) for index in range(frames)]


def step_generator(seed: int, shape: Sequence[int], device: str = "cpu") -> torch.Generator:
    """The generator an ancestral scheduler draws from, in the state A1111's `ImageRNG` leaves.

    A fresh generator for `seed` that has drawn the (C, H, W) target shape once, which is also
    where diffusers leaves a tile's generator after drawing its latents: a variation at
    strength 0 then equals the plain tile for ancestral schedulers too.
    """
    generator = torch.Generator(device).manual_seed(seed)
    torch.randn(tuple(shape), generator=generator, device=device)
    return generator


def _resize_shape(
    target: tuple[int, ...], resize_from: tuple[int, int] | None, latent_scale: int
) -> tuple[int, ...]:
    if resize_from is None or min(resize_from) <= 0:
        return target
    width, height = resize_from
    if width < latent_scale or height < latent_scale:
        raise ValueError(f"resize from {width}x{height} is under one latent pixel")
    return (target[0], height // latent_scale, width // latent_scale)


def _centred(small: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
    """`small` pasted over the centre of `canvas`, or `canvas` cut from the centre of `small`.

    A1111's arithmetic exactly: offsets by floor division, so a source wider by an odd count
    loses one more column on the left, and the canvas keeps its own noise in its last column.
    """
    dx = (canvas.shape[2] - small.shape[2]) // 2
    dy = (canvas.shape[1] - small.shape[1]) // 2
    width = small.shape[2] if dx >= 0 else small.shape[2] + 2 * dx
    height = small.shape[1] if dy >= 0 else small.shape[1] + 2 * dy
    to_x, to_y = max(dx, 0), max(dy, 0)
    from_x, from_y = max(-dx, 0), max(-dy, 0)
    canvas[:, to_y : to_y + height, to_x : to_x + width] = small[
        :, from_y : from_y + height, from_x : from_x + width
    ]
    return canvas
