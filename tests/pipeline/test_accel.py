"""Speed switches: which ones the app turns on where, and that they leave the images alone."""

import numpy as np
import pytest
import torch

from pipeline.accel import VAE_SLICE_OVER, Speedups, apply, attention_kind, slice_vae
from pipeline.tiny import build_tiny_pipeline


def render(pipe) -> np.ndarray:
    generators = [torch.Generator().manual_seed(seed) for seed in (0, 1)]
    return pipe(
        prompt=["a lighthouse"] * 2, generator=generators, num_inference_steps=3, output_type="np"
    ).images


def test_the_gpu_gets_channels_last_and_the_settings_are_opt_in() -> None:
    assert Speedups.for_device("cuda") == Speedups(channels_last=True)
    assert Speedups.for_device("cpu") == Speedups()
    assert Speedups.for_device("cpu", attention_slicing=True, compile=True) == Speedups(
        attention_slicing=True, compile=True
    )


def test_attention_is_pytorch_sdpa_by_default() -> None:
    assert attention_kind(build_tiny_pipeline()) == "AttnProcessor2_0"


def test_channels_last_and_attention_slicing_leave_the_images_alone() -> None:
    pipe = build_tiny_pipeline()
    before = render(pipe)
    apply(pipe, Speedups(channels_last=True, attention_slicing=True))
    conv = pipe.unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert attention_kind(pipe) == "SlicedAttnProcessor"
    np.testing.assert_allclose(render(pipe), before, atol=1e-4)


def test_compile_wraps_the_unet_in_place() -> None:
    pipe = build_tiny_pipeline()
    unet, keys = pipe.unet, list(pipe.unet.state_dict())
    apply(pipe, Speedups(compile=True))
    assert pipe.unet is unet and unet._compiled_call_impl is not None  # compiled on first call
    assert list(unet.state_dict()) == keys  # the weights hash reads the same names


def test_the_cpu_never_slices_the_vae() -> None:
    pipe = build_tiny_pipeline()
    slice_vae(pipe, VAE_SLICE_OVER + 4)
    assert not pipe.vae.use_slicing


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_large_calls_slice_the_vae_on_cuda() -> None:
    pipe = build_tiny_pipeline().to("cuda")
    slice_vae(pipe, VAE_SLICE_OVER + 1)
    assert pipe.vae.use_slicing
    slice_vae(pipe, VAE_SLICE_OVER)
    assert not pipe.vae.use_slicing
