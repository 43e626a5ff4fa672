"""Live previews of Stable Diffusion latents while they denoise, without the VAE.

The VAE decode costs as much as several UNet steps on the CPU, far too much to pay every step.
A fixed linear map from the four latent channels to RGB (AUTOMATIC1111's "Approx cheap",
ComfyUI's `latent_rgb_factors` for SD1.x) shows the composition forming for the price of a
4x3 matrix product: enough to see where a seed is going, and to cancel it early.
"""

from __future__ import annotations

import torch
from PIL import Image

# R, G, B weights of each of the four SD1.x latent channels, measured by fitting latents to
# their decoded images (https://discuss.huggingface.co/t/decoding-latents-to-rgb-without-upscaling/23204/2).
SD_LATENT_RGB_FACTORS = torch.tensor(
    [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ]
)


def latents_to_previews(
    latents: torch.Tensor, size: tuple[int, int] | None = None
) -> list[Image.Image]:
    """One RGB preview per latent in the batch (N, C, H, W), optionally resized to (w, h).

    Latents that are not SD's four channels get a grey mean-of-channels preview instead of an
    error: a preview must never stop a run. Non-finite values (an fp16 overflow) show as grey.
    """
    if latents.ndim != 4:
        raise ValueError(f"latents must be (batch, channels, height, width), got {latents.shape}")
    latents = latents.detach().to(device="cpu", dtype=torch.float32)
    if latents.shape[1] == SD_LATENT_RGB_FACTORS.shape[0]:
        rgb = torch.einsum("nchw,cr->nhwr", latents, SD_LATENT_RGB_FACTORS)
    else:
        rgb = latents.mean(dim=1).unsqueeze(-1).expand(-1, -1, -1, 3)
    pixels = ((rgb.nan_to_num(0.0).clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    previews = [Image.fromarray(array) for array in pixels.contiguous().numpy()]
    if size is not None:
        previews = [preview.resize(size, Image.Resampling.BILINEAR) for preview in previews]
    return previews
