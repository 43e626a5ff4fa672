"""A1111's NV noise: the Philox core against published answers, the draws against known values."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from pipeline.philox import PhiloxGenerator, philox4x32, randn


@pytest.mark.parametrize(
    ("counter", "key", "expected"),
    [
        # Random123's known-answer vectors for philox4x32_10 (kat_vectors).
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        (
            (0xFFFFFFFF,) * 4,
            (0xFFFFFFFF, 0xFFFFFFFF),
            (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
        ),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_philox_block_gives_the_published_answers(
    counter: tuple[int, ...], key: tuple[int, int], expected: tuple[int, ...]
) -> None:
    words = np.array(counter, dtype=np.uint32).reshape(4, 1)
    assert tuple(int(v) for v in philox4x32(words, key)[:, 0]) == expected
    assert tuple(int(v) for v in words[:, 0]) == counter  # the input is not consumed


def test_seed_0_gives_the_values_in_a1111s_docstring() -> None:
    # modules/rng_philox.py: "g = Generator(seed=0); g.randn(shape=(3, 4))", which is also what
    # torch.randn((3, 4), generator=torch.Generator("cuda").manual_seed(0)) prints.
    expected = [
        [-0.92466259, -0.42534415, -2.6438457, 0.14518388],
        [-0.12086647, -0.57972564, -0.62285122, -0.32838709],
        [-1.07454231, -0.36314407, -1.67105067, 2.26550497],
    ]
    noise = randn(0, (3, 4))
    assert noise.dtype == np.float32
    np.testing.assert_allclose(noise, expected, atol=5e-7)


def test_element_i_depends_on_its_index_only_so_shapes_share_a_prefix() -> None:
    flat = randn(1234, (24,))
    assert np.array_equal(randn(1234, (2, 3, 4)).reshape(-1), flat)
    assert np.array_equal(randn(1234, (8,)), flat[:8])


def test_each_draw_moves_the_counter_on_and_seeds_differ() -> None:
    generator = PhiloxGenerator(7)
    first, second = generator.randn((16,)), generator.randn((16,))
    assert np.array_equal(first, randn(7, (16,)))
    assert not np.array_equal(first, second)
    assert generator.offset == 2
    assert not np.array_equal(randn(7, (16,)), randn(8, (16,)))
    # The key's high word: seeds 2**32 apart are different streams.
    assert not np.array_equal(randn(5, (16,)), randn(5 + 2**32, (16,)))


def test_a_latent_is_standard_normal_and_fast() -> None:
    start = time.perf_counter()
    noise = randn(2**64 - 1, (4, 128, 128))
    assert time.perf_counter() - start < 1.0
    assert noise.shape == (4, 128, 128)
    assert abs(float(noise.mean())) < 0.02
    assert abs(float(noise.std()) - 1.0) < 0.02
    assert np.isfinite(noise).all()


def test_out_of_range_seeds_are_refused() -> None:
    with pytest.raises(ValueError, match="seed"):
        PhiloxGenerator(-1)
    with pytest.raises(ValueError, match="seed"):
        PhiloxGenerator(2**64)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("shape", [(3, 4), (4, 64, 64), (4, 128, 128)])
def test_equals_torch_randn_on_cuda(shape: tuple[int, ...]) -> None:
    """The GPU's float32 sincos/log intrinsics round differently: equal to about 1e-6."""
    for seed in (0, 1, 123456789, 2**40 + 3):
        generator = torch.Generator("cuda").manual_seed(seed)
        ours = PhiloxGenerator(seed)
        for _ in range(2):  # the second draw checks the counter's step
            cuda = torch.randn(shape, generator=generator, device="cuda").cpu().numpy()
            np.testing.assert_allclose(ours.randn(shape), cuda, atol=2e-5, rtol=0)
