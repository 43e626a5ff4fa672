"""Speed switches: which ones the app turns on where, and that they leave the images alone."""

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from pipeline.accel import (
    VAE_SLICE_OVER,
    Speedups,
    apply,
    attention_kind,
    compile_unet,
    slice_vae,
)
from pipeline.engine import Engine
from pipeline.loading import LoadedModel
from pipeline.requests import GridRequest, RefineRequest
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
    assert pipe.unet is unet and hasattr(unet.forward, "_torchdynamo_orig_callable")
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


def test_a_compiled_unet_compiles_once_for_every_grid_and_scheduler() -> None:
    """Calls padded to the micro-batch and one timestep form: no recompiles (counted by
    torch._dynamo; the eager backend traces and guards as inductor does, without compiling)."""
    pipe = build_tiny_pipeline()
    compile_unet(pipe.unet, backend="eager")
    model = LoadedModel(pipe, "tiny", "cpu", torch.float32, 0.0)
    engine = Engine(model, micro_batch=4, speedups=Speedups(compile=True))
    torch._dynamo.reset()
    counters.clear()
    grid = engine.run(GridRequest("a", tuple(range(6)), steps=2, scheduler="DPM++ 2M"))
    engine.run(GridRequest("a", (7,), steps=2, scheduler="Euler"))  # float timesteps
    engine.run(RefineRequest("a", 1, (", artsy", ", ink"), steps=2, scheduler="DDIM"))
    assert counters["frames"]["total"] == 1  # compiled once, never again
    last = grid[5]
    assert (last.recipe.batch_size, last.recipe.batch_index) == (4, 1)  # 4 and 2, padded to 4
    again = engine.replay(last.recipe)
    assert np.array_equal(np.asarray(again.image), np.asarray(last.image))  # replay: bit-exact
