"""Each flow family's architecture at real size, random weights, on a CUDA card: what a person
with that card waits for and how much memory it takes, plain bf16, offloaded and quantized.

    python -m benchmarks.gpu_families                      # Flux.1 [dev], SD3.5 Large on CUDA
    python -m benchmarks.gpu_families --modes bf16 int8wo --steps 28
    python -m benchmarks.gpu_families --tiny               # the tiny models on the CPU: a check

Real sizes are the published configs (FLUX.1-dev's 12B transformer with T5-XXL and CLIP-L;
SD3.5 Large's 8B MMDiT with CLIP-L, CLIP-G and T5-XXL), built on the GPU in bf16 with random
weights around the tiny models' tokenizers and schedulers, so nothing is downloaded. A family
of pipeline/tiny.py's flow models with no real-size config here is named and skipped.

Per model and mode: peak GPU memory of a one-image grid, seconds per image (after a 2-step
warm-up), the grid tile and two lockstep lanes against the plain diffusers pipeline (max pixel
difference). Modes: `bf16`; `offload` (diffusers' model CPU offload); `int8wo` (torchao's
int8 weight-only on the transformer and the big text encoders, as --quantize torchao_int8wo).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, FluxTransformer2DModel, SD3Transformer2DModel
from PIL import Image
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    T5Config,
    T5EncoderModel,
)

from pipeline.engine import Engine
from pipeline.loading import LoadedModel, load_model
from pipeline.quantize import package_missing, quantized_components
from pipeline.requests import CompareRequest, GridRequest
from pipeline.tiny import TINY_FLOW_MODELS, TINY_FLUX_ID, TINY_SD3_ID, build_tiny_pipeline

PROMPT = "a lighthouse at dusk, oil painting"
SEED = 7
MODES = ("bf16", "offload", "int8wo")
_QUANTIZE = {"int8wo": "torchao_int8wo"}
FLOW_VAE = {
    "latent_channels": 16,
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}
T5_XXL = T5Config(
    vocab_size=32128,
    d_model=4096,
    d_ff=10240,
    d_kv=64,
    num_heads=64,
    num_layers=24,
    feed_forward_proj="gated-gelu",
    dropout_rate=0.0,
)


def clip(width: int, layers: int, heads: int, act: str = "quick_gelu") -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=width,
        intermediate_size=width * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        projection_dim=width,
        hidden_act=act,
        max_position_embeddings=77,
    )


def flux_modules() -> dict[str, Callable[[], torch.nn.Module]]:
    """FLUX.1-dev's published configs."""
    return {
        "transformer": lambda: FluxTransformer2DModel(
            in_channels=64,
            num_layers=19,
            num_single_layers=38,
            attention_head_dim=128,
            num_attention_heads=24,
            joint_attention_dim=4096,
            pooled_projection_dim=768,
            guidance_embeds=True,
            axes_dims_rope=(16, 56, 56),
        ),
        "text_encoder": lambda: CLIPTextModel(clip(768, 12, 12)),
        "text_encoder_2": lambda: T5EncoderModel(T5_XXL),
        "vae": lambda: AutoencoderKL(**FLOW_VAE, scaling_factor=0.3611, shift_factor=0.1159),
    }


def sd35_large_modules() -> dict[str, Callable[[], torch.nn.Module]]:
    """Stable Diffusion 3.5 Large's published configs."""
    return {
        "transformer": lambda: SD3Transformer2DModel(
            sample_size=128,
            patch_size=2,
            in_channels=16,
            out_channels=16,
            num_layers=38,
            attention_head_dim=64,
            num_attention_heads=38,
            joint_attention_dim=4096,
            caption_projection_dim=2432,
            pooled_projection_dim=2048,
            pos_embed_max_size=192,
            qk_norm="rms_norm",
        ),
        "text_encoder": lambda: CLIPTextModelWithProjection(clip(768, 12, 12)),
        "text_encoder_2": lambda: CLIPTextModelWithProjection(clip(1280, 32, 20, "gelu")),
        "text_encoder_3": lambda: T5EncoderModel(T5_XXL),
        "vae": lambda: AutoencoderKL(**FLOW_VAE, scaling_factor=1.5305, shift_factor=0.0609),
    }


# The tiny model whose tokenizers and scheduler a real-size build borrows, and the model id
# whose card gives the defaults.
REAL = {
    TINY_FLUX_ID: ("black-forest-labs/FLUX.1-dev", flux_modules),
    TINY_SD3_ID: ("stabilityai/stable-diffusion-3.5-large", sd35_large_modules),
}


def build_real(tiny_id: str, dtype: torch.dtype) -> LoadedModel:
    """The family's pipeline at real size, every module made on the GPU in `dtype`."""
    model_id, modules = REAL[tiny_id]
    started = time.perf_counter()
    pipe = build_tiny_pipeline(tiny_id)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("cuda"):
            built = {name: make().eval() for name, make in modules().items()}
    finally:
        torch.set_default_dtype(previous)
    pipe = type(pipe)(**{**pipe.components, **built})
    pipe.set_progress_bar_config(disable=True)
    return LoadedModel(pipe, model_id, "cuda", dtype, time.perf_counter() - started)


def real_model(tiny_id: str, mode: str) -> LoadedModel:
    """The real-size model in bf16, offloaded or int8 weight-only (torchao's, on what
    --quantize torchao_int8wo quantizes: weights made on the GPU cannot take the loading path)."""
    model = build_real(tiny_id, torch.bfloat16)
    pipe = model.pipe
    if mode == "offload":
        pipe.enable_model_cpu_offload(device="cuda")
    if mode == "int8wo":
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        index = {
            name: [type(module).__module__.split(".")[0], type(module).__name__]
            for name, module in pipe.components.items()
            if isinstance(module, torch.nn.Module)
        }
        for name in quantized_components(index):
            quantize_(getattr(pipe, name), Int8WeightOnlyConfig())
    offload, quantize = ("model" if mode == "offload" else None), _QUANTIZE.get(mode)
    return replace(model, offload=offload, quantize=quantize)


def tiny_model(tiny_id: str, mode: str) -> LoadedModel:
    """The tiny model on the CPU in bf16 through the app's loading path."""
    return load_model(tiny_id, device="cpu", dtype="bfloat16", quantize=_QUANTIZE.get(mode))


def plain(engine: Engine, config: dict[str, Any], guidance: float, side: int, steps: int) -> Any:
    """The family's own diffusers pipeline with the same modules and scheduler config."""
    pipe = engine.model.pipe
    view = type(pipe)(**{**pipe.components, "scheduler": engine.model.registry.make_exact(config)})
    view.set_progress_bar_config(disable=True)
    return view(
        PROMPT,
        num_inference_steps=steps,
        width=side,
        height=side,
        guidance_scale=guidance,
        generator=torch.Generator().manual_seed(SEED),
    ).images[0]


def max_diff(first: Image.Image, second: Image.Image) -> int:
    a, b = (np.asarray(image.convert("RGB"), dtype=np.int16) for image in (first, second))
    return int(np.abs(a - b).max())


def measure(engine: Engine, side: int, steps: int) -> dict[str, Any]:
    """Peak memory and seconds of a one-image grid; grid and lockstep lanes against plain."""
    cuda = engine.model.device.startswith("cuda")
    size = {"width": side, "height": side}
    engine.run(GridRequest(PROMPT, str(SEED), steps=2, **size))  # warm-up
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    tile = engine.run(GridRequest(PROMPT, str(SEED), steps=steps, **size))[0]
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    recipe = tile.recipe
    grid_diff = max_diff(
        tile.image, plain(engine, recipe.scheduler_config, recipe.guidance_scale, side, steps)
    )
    names = [name for name in ("Euler", "Euler Beta", "UniPC") if name in engine.schedulers][:2]
    lanes = engine.run(CompareRequest(PROMPT, SEED, names, steps=steps, **size))
    lane_diff = max(
        max_diff(
            lane.image,
            plain(engine, lane.recipe.scheduler_config, recipe.guidance_scale, side, steps),
        )
        for lane in lanes
    )
    return {"peak": peak, "seconds": seconds, "grid": grid_diff, "lanes": lane_diff}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_families")
    parser.add_argument("--tiny", action="store_true", help="the tiny models on the CPU")
    parser.add_argument("--models", nargs="+", default=list(TINY_FLOW_MODELS))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--side", type=int, help="default: 1024, or 32 with --tiny")
    args = parser.parse_args(argv)
    side = args.side or (32 if args.tiny else 1024)
    if not args.tiny and not torch.cuda.is_available():
        raise SystemExit("error: real sizes need CUDA; --tiny runs the tiny models on the CPU")
    device = "cpu" if args.tiny else "cuda"
    print(f"{args.steps} steps at {side}x{side} on {device}\n")
    print("| model | mode | load s | peak GiB | s/image | grid vs plain | lockstep vs plain |")
    print("|---|---|---|---|---|---|---|")
    for tiny_id in args.models:
        if not args.tiny and tiny_id not in REAL:
            print(f"| {tiny_id} | - | skipped: no real-size config in this script | | | | |")
            continue
        for mode in args.modes:
            skipped = (
                "needs CUDA"
                if mode == "offload" and device == "cpu"
                else "needs torchao"
                if mode == "int8wo" and package_missing("torchao")
                else None
            )
            if skipped:
                print(f"| {tiny_id} | {mode} | skipped: {skipped} | | | | |")
                continue
            model = tiny_model(tiny_id, mode) if args.tiny else real_model(tiny_id, mode)
            row = measure(Engine(model), side, args.steps)
            peak = "-" if row["peak"] is None else f"{row['peak']:.1f}"
            print(
                f"| {model.model_id} | {mode} | {model.seconds:.1f} | {peak} | "
                f"{row['seconds']:.2f} | {row['grid']} | {row['lanes']} |",
                flush=True,
            )
            del model
            if device == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
