"""A1111's variation noise on fixed tensors; expected values from its formula, written here."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor

from pipeline import philox
from pipeline.variation import (
    cpu_noise,
    nv_noise,
    slerp,
    start_noise,
    step_generator,
    travel_strengths,
)

SHAPE = (4, 8, 6)  # (C, H, W), H != W so that the normalised dimension shows


def fresh(seed: int, shape: Sequence[int]) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed))


def hand_slerp(t: float, low: torch.Tensor, high: torch.Tensor) -> np.ndarray:
    """A1111's slerp written out: one angle per (channel, column), the vector running down H."""
    low64, high64 = low.double().numpy(), high.double().numpy()
    out = np.empty_like(low64)
    channels, _, columns = low64.shape
    for c in range(channels):
        for w in range(columns):
            a, b = low64[c, :, w], high64[c, :, w]
            omega = math.acos(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
            out[c, :, w] = (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(
                omega
            )
    return out


def position_noise(seed: int, shape: Sequence[int]) -> torch.Tensor:
    """A fake noise source whose every value says its seed, row and column."""
    channels, rows, columns = shape
    row = torch.arange(rows, dtype=torch.float32).view(1, -1, 1) * 100
    column = torch.arange(columns, dtype=torch.float32).view(1, 1, -1)
    return (seed * 10000 + row + column).expand(channels, rows, columns).clone()


def test_strength_0_is_the_seeds_noise_and_1_the_variation_seeds_exactly() -> None:
    assert torch.equal(start_noise(3, SHAPE), fresh(3, SHAPE))
    assert torch.equal(start_noise(3, SHAPE, variation_seed=9, strength=0.0), fresh(3, SHAPE))
    assert torch.equal(start_noise(3, SHAPE, variation_seed=9, strength=1.0), fresh(9, SHAPE))


@pytest.mark.parametrize("strength", [0.1, 0.3, 0.5, 0.9])
def test_midpoints_are_a1111s_slerp_over_dim_1(strength: float) -> None:
    noise = start_noise(3, SHAPE, variation_seed=9, strength=strength)
    expected = hand_slerp(strength, fresh(3, SHAPE), fresh(9, SHAPE))
    np.testing.assert_allclose(noise.numpy(), expected, atol=2e-5)
    # Normalising over another dimension gives other noise: the test can tell.
    other = hand_slerp(strength, fresh(3, SHAPE).transpose(1, 2), fresh(9, SHAPE).transpose(1, 2))
    assert not np.allclose(noise.numpy(), other.transpose(0, 2, 1), atol=1e-3)


def test_a_variation_of_a_variation_slerps_from_the_first_blend() -> None:
    first = hand_slerp(0.5, fresh(3, SHAPE), fresh(9, SHAPE))
    expected = hand_slerp(0.25, torch.from_numpy(first).float(), fresh(11, SHAPE))
    noise = start_noise(3, SHAPE, variation_seed=11, strength=0.25, base=[(9, 0.5)])
    np.testing.assert_allclose(noise.numpy(), expected, atol=5e-5)
    pinned = start_noise(3, SHAPE, variation_seed=9, strength=0.5)
    assert torch.equal(
        start_noise(3, SHAPE, variation_seed=11, strength=0, base=[(9, 0.5)]), pinned
    )


def test_near_parallel_noise_is_lerped_with_a1111s_weights() -> None:
    low = fresh(1, SHAPE)
    high = low + 0.01 * fresh(2, SHAPE)
    mixed = slerp(0.25, low, high)
    torch.testing.assert_close(mixed, low * 0.25 + high * 0.75, rtol=0, atol=1e-6)


def test_resize_pastes_the_smaller_seed_noise_into_the_centre() -> None:
    # Target 4x4 latent, from 16x16 pixels = 2x2 latent: offsets (4 - 2) // 2 = 1.
    noise = start_noise(5, (1, 4, 4), position_noise, resize_from=(16, 16))
    canvas = position_noise(5, (1, 4, 4))
    expected = canvas.clone()
    expected[0, 1:3, 1:3] = torch.tensor([[50000.0, 50001.0], [50100.0, 50101.0]])
    assert torch.equal(noise, expected)


def test_resize_from_larger_cuts_its_centre_with_a1111s_floor_offsets() -> None:
    # Target 2x2 latent from 40 wide x 32 high pixels = 4 rows x 5 columns. Rows: (2 - 4) // 2
    # = -1, both rows copied from source rows 1-2. Columns: (2 - 5) // 2 = -2, so the copy is
    # 5 - 4 = 1 column wide, from source column 2; target column 1 keeps its own noise.
    noise = start_noise(5, (1, 2, 2), position_noise, resize_from=(40, 32))
    expected = torch.tensor([[[50102.0, 50001.0], [50202.0, 50101.0]]])
    assert torch.equal(noise, expected)


def test_a_resized_variation_is_slerped_at_the_source_shape_and_framed_by_the_seed() -> None:
    target, source = (4, 8, 8), (4, 4, 4)  # from 32x32 pixels
    noise = start_noise(3, target, variation_seed=9, strength=0.5, resize_from=(32, 32))
    centre = hand_slerp(0.5, fresh(3, source), fresh(9, source))
    np.testing.assert_allclose(noise[:, 2:6, 2:6].numpy(), centre, atol=2e-5)
    frame = fresh(3, target)
    frame[:, 2:6, 2:6] = 0
    unframed = noise.clone()
    unframed[:, 2:6, 2:6] = 0
    assert torch.equal(unframed, frame)


def test_no_resize_when_a_side_is_zero_and_none_under_one_latent_pixel() -> None:
    assert torch.equal(start_noise(3, SHAPE, resize_from=(0, 512)), fresh(3, SHAPE))
    with pytest.raises(ValueError, match="under one latent pixel"):
        start_noise(3, SHAPE, resize_from=(4, 64))


def test_the_noise_source_is_the_engines_choice() -> None:
    nv = start_noise(3, SHAPE, nv_noise, variation_seed=9, strength=1.0)
    assert nv.dtype == torch.float32
    assert np.array_equal(nv.numpy(), philox.randn(9, SHAPE))
    assert torch.equal(start_noise(3, SHAPE, cpu_noise), fresh(3, SHAPE))


def test_travel_runs_0_to_1_evenly() -> None:
    assert travel_strengths(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert travel_strengths(2) == [0.0, 1.0]
    with pytest.raises(ValueError, match="at least 2 frames"):
        travel_strengths(1)


def test_strength_0_is_the_grid_tiles_latents_and_step_noise_continues_alike() -> None:
    drawn = torch.Generator().manual_seed(3)
    latents = randn_tensor((1, *SHAPE), generator=[drawn])  # the engine's draw for one tile
    assert torch.equal(start_noise(3, SHAPE, variation_seed=9, strength=0.0), latents[0])
    ours = step_generator(3, SHAPE)
    assert torch.equal(torch.randn(SHAPE, generator=ours), torch.randn(SHAPE, generator=drawn))
    assert not torch.equal(torch.randn(SHAPE, generator=step_generator(3, SHAPE)), fresh(3, SHAPE))
