"""NVIDIA-GPU noise on any CPU: A1111's "NV" RNG (Philox 4x32-10 and Box-Muller, as curand does).

An image made in AUTOMATIC1111 with its default "GPU" noise on an NVIDIA card, or with "NV" on
any machine, started from `torch.randn(shape, generator=torch.Generator("cuda").manual_seed(s))`.
A CPU generator gives other numbers for the same seed, so without this such an image cannot be
rendered again here. A1111's `modules/rng_philox.py` imitates the CUDA kernel; this module has
its semantics exactly, vectorised over the elements with numpy's uint32/uint64 arithmetic.

How torch on CUDA fills a tensor of n elements (`calc_execution_policy` in ATen's
DistributionTemplates.h): element i is drawn by thread i with Philox subsequence i, from the
first two of the four 32-bit words, through Box-Muller's sine branch. That holds while n is at
most the GPU's resident threads (SMs x max threads per SM: 16384 for a 512x512 SD latent and
65536 for SDXL's 1024x1024 fit on any recent card; larger tensors wrap around on the GPU, and
there A1111's NV and a GPU part ways). Each later draw from the same generator moves the
counter's first word on by one, as A1111's `Generator.offset` does.

The GPU computes Box-Muller with float32 intrinsics; A1111 (and this module) in float64 rounded
to float32, so values agree with CUDA's to about 1e-6 and with A1111's NV exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Philox 4x32 multipliers and Weyl key increments (Salmon et al., "Parallel random numbers: as
# easy as 1, 2, 3", SC 2011; curand and Random123 use the same).
PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
ROUNDS = 10

_MASK32 = 0xFFFFFFFF
# curand's CURAND_2POW32_INV and CURAND_2POW32_INV_2PI, float32 as curand (and A1111) keep them.
_TWO_POW32_INV = np.float32(2.3283064e-10)
_TWO_POW32_INV_2PI = np.float32(2.3283064e-10 * 6.2831855)
_MAX_ELEMENTS = 2**32  # counter word 2 holds the element index


def philox4x32(counter: np.ndarray, key: tuple[int, int], rounds: int = ROUNDS) -> np.ndarray:
    """Philox 4x32 on each column of a (4, n) uint32 counter under one 64-bit key (two words).

    Returns a new (4, n) uint32 array; the input is left as it was.
    """
    if counter.dtype != np.uint32 or counter.ndim != 2 or counter.shape[0] != 4:
        raise ValueError(
            f"counter must be a (4, n) uint32 array, got {counter.dtype} {counter.shape}"
        )
    c0, c1, c2, c3 = (word.astype(np.uint64) for word in counter)
    k0, k1 = key[0] & _MASK32, key[1] & _MASK32
    m0, m1 = np.uint64(PHILOX_M[0]), np.uint64(PHILOX_M[1])
    shift, low = np.uint64(32), np.uint64(_MASK32)
    for round_index in range(rounds):
        if round_index:
            k0 = (k0 + PHILOX_W[0]) & _MASK32
            k1 = (k1 + PHILOX_W[1]) & _MASK32
        product0 = c0 * m0  # a 32x32-bit product fits in 64 bits: no wrap-around
        product1 = c2 * m1
        c0, c1, c2, c3 = (
            (product1 >> shift) ^ c1 ^ np.uint64(k0),
            product1 & low,
            (product0 >> shift) ^ c3 ^ np.uint64(k1),
            product0 & low,
        )
    return np.stack([c0, c1, c2, c3]).astype(np.uint32)


def box_muller(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The sine branch of curand's Box-Muller on two uint32 words, float32 as A1111 rounds it.

    (x + 0.5) / 2**32 is never 0, so the logarithm is finite.
    """
    u = x.astype(np.float64) * _TWO_POW32_INV + np.float64(_TWO_POW32_INV / np.float32(2))
    v = y.astype(np.float64) * _TWO_POW32_INV_2PI + np.float64(_TWO_POW32_INV_2PI / np.float32(2))
    return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)


class PhiloxGenerator:
    """A1111's NV generator: one seed, and a draw count that moves the counter on."""

    def __init__(self, seed: int) -> None:
        if not 0 <= seed < 2**64:
            raise ValueError(f"seed {seed} is outside 0..2**64-1")
        self.seed = seed
        self.offset = 0

    def randn(self, shape: Sequence[int]) -> np.ndarray:
        """The next standard-normal float32 tensor of `shape`, as CUDA's torch.randn draws it."""
        count = math.prod(shape)
        if count > _MAX_ELEMENTS:
            raise ValueError(f"{count} elements is more than one draw can index (2**32)")
        counter = np.zeros((4, count), dtype=np.uint32)
        counter[0] = self.offset & _MASK32
        counter[2] = np.arange(count, dtype=np.uint32)
        self.offset += 1
        words = philox4x32(counter, (self.seed & _MASK32, self.seed >> 32))
        return box_muller(words[0], words[1]).reshape(tuple(shape))


def randn(seed: int, shape: Sequence[int]) -> np.ndarray:
    """A fresh generator's first draw: the start noise an NV (or NVIDIA GPU) seed gives."""
    return PhiloxGenerator(seed).randn(shape)
