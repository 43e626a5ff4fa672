"""Live previews of Stable Diffusion latents while they denoise, without the VAE.

The VAE decode costs as much as several UNet steps on the CPU, far too much to pay every step.
A fixed linear map from the four latent channels to RGB (AUTOMATIC1111's "Approx cheap",
ComfyUI's `latent_rgb_factors`; each model family has its own, pipeline/families.py) shows the
composition forming for the price of a 4x3 matrix product: enough to see where a seed is
going, and to cancel it early.
"""

from __future__ import annotations

import torch
from PIL import Image

Factors = tuple[tuple[float, float, float], ...]


def latents_to_previews(
    latents: torch.Tensor,
    factors: Factors,
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0),
    size: tuple[int, int] | None = None,
) -> list[Image.Image]:
    """One RGB preview per latent in the batch (N, C, H, W), optionally resized to (w, h):
    `factors` the R, G, B weights of each latent channel, `bias` added to each colour.

    Latents of another channel count than the factors get a grey mean-of-channels preview
    instead of an error: a preview must never stop a run. Non-finite values show as grey.
    """
    if latents.ndim != 4:
        raise ValueError(f"latents must be (batch, channels, height, width), got {latents.shape}")
    latents = latents.detach().to(device="cpu", dtype=torch.float32)
    if latents.shape[1] == len(factors):
        rgb = torch.einsum("nchw,cr->nhwr", latents, torch.tensor(factors)) + torch.tensor(bias)
    else:
        rgb = latents.mean(dim=1).unsqueeze(-1).expand(-1, -1, -1, 3)
    pixels = ((rgb.nan_to_num(0.0).clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    previews = [Image.fromarray(array) for array in pixels.contiguous().numpy()]
    if size is not None:
        previews = [preview.resize(size, Image.Resampling.BILINEAR) for preview in previews]
    return previews
