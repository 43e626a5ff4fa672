"""Each speed switch on and off, interleaved, on one plain call of a model's pipeline.

The switches are those of `pipeline.accel` plus the ones it leaves alone: fp16 itself,
classic attention against SDPA, cuDNN autotuning. A switch that changes a shared module is set
back to what the app runs with once its rounds are over.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from PIL import Image

from benchmarks.probe import PROMPT
from benchmarks.timing import Pair, interleave, seconds
from pipeline import accel
from pipeline.loading import LoadedModel


@dataclass(frozen=True)
class Switch:
    """How to run with the switch on and off, and how to leave things afterwards."""

    name: str
    on: Callable[[], list[Image.Image]]
    off: Callable[[], list[Image.Image]]
    restore: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Measured:
    name: str
    pair: Pair  # `app` is on, `plain` is off
    peak_on_mib: float | None
    peak_off_mib: float | None
    note: str = ""


def measure(model: LoadedModel, repeats: int, images: int, steps: int) -> list[Measured]:
    """Every switch that means something on this device; torch.compile only on CUDA (on the
    CPU it needs a C++ toolchain and minutes of compiling, for a UNet the app runs eagerly)."""
    pipe = _sharing(model.pipe)
    cuda = model.device.startswith("cuda")
    app = accel.Speedups.for_device(model.device)

    def render(target: DiffusionPipeline = pipe) -> Callable[[], list[Image.Image]]:
        return lambda: (
            target(
                prompt=[PROMPT] * images,
                generator=[torch.Generator().manual_seed(seed) for seed in range(images)],
                num_inference_steps=steps,
            ).images
        )

    def toggled(name: str, set_state: Callable[[bool], None], default: bool) -> Switch:
        run = render()

        def side(state: bool) -> Callable[[], list[Image.Image]]:
            def switched() -> list[Image.Image]:
                set_state(state)
                return run()

            return switched

        return Switch(name, side(True), side(False), lambda: set_state(default))

    def channels_last(on: bool) -> None:
        layout = torch.channels_last if on else torch.contiguous_format
        pipe.unet.to(memory_format=layout)

    def sdpa(on: bool) -> None:
        for module in (pipe.unet, pipe.vae):
            module.set_attn_processor(AttnProcessor2_0() if on else AttnProcessor())

    def attention_slicing(on: bool) -> None:
        if on:
            pipe.enable_attention_slicing()
        else:
            sdpa(True)

    def vae_slicing(on: bool) -> None:
        if on:
            pipe.vae.enable_slicing()
        else:
            pipe.vae.disable_slicing()

    switches = [
        toggled("channels_last UNet", channels_last, app.channels_last),
        toggled("SDPA attention (off: classic AttnProcessor)", sdpa, True),
        toggled("attention slicing", attention_slicing, False),
        toggled(f"VAE slicing ({images} images in one call)", vae_slicing, False),
    ]
    notes = {}
    if cuda:
        switches.append(toggled("cuDNN autotuning (cudnn.benchmark)", _cudnn_benchmark, False))
        switches.append(Switch("fp16 (off: float32 copy)", render(), render(_float32(pipe))))
        compiled = _sharing(pipe, unet=torch.compile(pipe.unet))
        warm_up, _ = seconds(render(compiled))
        switches.append(Switch("torch.compile UNet", render(compiled), render()))
        notes["torch.compile UNet"] = f"first call (compiling): {warm_up:.1f} s"
    results = []
    for switch in switches:
        peaks: dict[bool, list[float]] = {True: [], False: []}
        on, off = _peak(switch.on, peaks[True], cuda), _peak(switch.off, peaks[False], cuda)
        on()  # warm-up, untimed: a first call at a new layout or processor pays once
        off()
        pair = interleave(on, off, repeats)
        switch.restore()
        results.append(
            Measured(
                switch.name,
                pair,
                max(peaks[True]) if cuda else None,
                max(peaks[False]) if cuda else None,
                notes.get(switch.name, ""),
            )
        )
    return results


def _cudnn_benchmark(on: bool) -> None:
    torch.backends.cudnn.benchmark = on


def _float32(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """A float32 copy of the pipeline's modules (same weights, twice the memory)."""
    copies = {
        name: copy.deepcopy(getattr(pipe, name)).to(torch.float32)
        for name in ("unet", "vae", "text_encoder")
    }
    return _sharing(pipe, **copies)


def _sharing(pipe: DiffusionPipeline, **replaced: object) -> DiffusionPipeline:
    """A pipeline of `pipe`'s modules (some `replaced`), their dtype untouched: `from_pipe`
    without a dtype would cast the shared modules to float32 in place."""
    options = {"requires_safety_checker": False} if "safety_checker" in pipe.components else {}
    other = type(pipe)(**{**pipe.components, **replaced}, **options)
    other.set_progress_bar_config(disable=True)
    return other


def _peak(
    run: Callable[[], list[Image.Image]], peaks: list[float], cuda: bool
) -> Callable[[], list[Image.Image]]:
    """`run`, noting torch's peak CUDA allocation during it (MiB)."""
    if not cuda:
        return run

    def measured() -> list[Image.Image]:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        images = run()
        peaks.append(torch.cuda.max_memory_allocated() / 2**20)
        return images

    return measured
