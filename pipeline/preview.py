"""Live previews of Stable Diffusion latents while they denoise, without the VAE.

The VAE decode costs as much as several UNet steps on the CPU, far too much to pay every step.
A fixed linear map from the four latent channels to RGB (AUTOMATIC1111's "Approx cheap",
ComfyUI's `latent_rgb_factors`; each model family has its own, pipeline/families.py) shows the
composition forming for the price of a 4x3 matrix product: enough to see where a seed is
going, and to cancel it early.

`Previewer` keeps that work off the denoising thread: the step callback only offers the
latents; at most one offer per `interval` seconds is taken (a clone, then back to denoising),
and a thread of its own turns it into small RGB images (longest side at most `PREVIEW_SIDE`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import torch
from PIL import Image

Factors = tuple[tuple[float, float, float], ...]
PREVIEW_SIDE = 256  # longest side of a preview: replaced by the lossless tile a moment later
PREVIEW_INTERVAL = 1.0  # seconds between previews, whatever the step count


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


def preview_size(width: int, height: int, side: int = PREVIEW_SIDE) -> tuple[int, int]:
    """The image's aspect at a longest side of at most `side` pixels."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


class Previewer:
    """Turns offered latents into previews on its own thread, at most one per `interval`.

    `deliver(first, images)` is called on that thread. `close()` drops what is pending and
    waits for a preview being made, so none arrives after the run's tiles.
    """

    def __init__(
        self,
        deliver: Callable[[int, list[Image.Image]], None],
        factors: Factors,
        bias: tuple[float, float, float],
        size: tuple[int, int],
        interval: float = PREVIEW_INTERVAL,
    ) -> None:
        self._deliver = deliver
        self._convert = lambda latents: latents_to_previews(latents, factors, bias, size)
        self._interval = interval
        self._last = time.monotonic()  # the first preview comes `interval` into the run
        self._pending: tuple[int, torch.Tensor] | None = None
        self._busy = False
        self._closed = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="previews", daemon=True)
        self._thread.start()

    def offer(self, first: int, latents: Callable[[], torch.Tensor]) -> bool:
        """Take the latents of tiles `first`... if a preview is due and none is being made;
        `latents` is only called (and cloned) then. Cheap enough to call every step."""
        now = time.monotonic()
        with self._ready:
            if self._closed or self._busy or now - self._last < self._interval:
                return False
            self._last = now
            self._busy = True
            self._pending = (first, latents().detach().clone())
            self._ready.notify()
        return True

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._pending = None
            self._ready.notify()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._closed or self._pending is not None)
                if self._closed:
                    return
                first, latents = self._pending  # type: ignore[misc]
                self._pending = None
            try:
                images = self._convert(latents)
                with self._ready:
                    if self._closed:
                        return
                # Delivered outside the lock; close() waits for it (it joins the thread).
                self._deliver(first, images)
            finally:
                with self._ready:
                    self._busy = False
