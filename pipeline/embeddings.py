"""Prompt embeddings: each text encoded once, kept for the next request that uses it.

Re-running a grid, a refinement or a comparison encodes nothing again: the text encoder's
output is kept in a bounded least-recently-used cache keyed by the text. Each text is encoded
alone (batch 1), so a cached embedding is the same tensor whatever request first asked for it;
measured on this CPU, the CLIP text encoder gives bit-identical rows at batch 1 and batch 4.
A negative prompt is encoded the same way: the pipeline's unconditional branch tokenizes and
encodes it exactly as a prompt, except where the family guides an empty one by zeros (SDXL).
How a text is encoded is the model family's (pipeline/families.py).

Seed variance: a distilled or turbo model (Z-Image Turbo, Flux schnell) gives nearly the same
image for every seed. Noise added to each tile's prompt embedding, drawn from a generator seeded
by the tile's seed and scaled by the embedding's own spread times a strength, spreads them
again, reproducibly (InvokeAI's seed variance enhancer does the like for Z-Image). The negative
prompt and the pooled vector stay as they are; at strength 0 nothing is drawn.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch
from diffusers import DiffusionPipeline

from pipeline.families import Embedding, Family

DEFAULT_SIZE = 32
# Added to the tile's seed (splitmix64's increment) so the text's noise is not the latents'.
_VARIANCE_SALT = 0x9E3779B97F4A7C15


class PromptEmbeddings:
    """Text -> its Embedding (hidden states (1, tokens, width); SDXL: and pooled), at most
    `size` kept.

    Thread-safe: one lock guards the cache and the encoding. The engine already serialises all
    model work under its own lock, so this one never waits in the app; it keeps the cache
    correct for any other caller. Callers must not change the tensors they get in place.
    """

    def __init__(self, pipe: DiffusionPipeline, family: Family, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError(f"the cache must hold at least one text, got {size}")
        self._pipe = pipe
        self._family = family
        self.size = size
        self.hits = 0
        self.misses = 0
        self._cache: OrderedDict[str, Embedding] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def get(self, text: str) -> Embedding:
        """One text's embedding, encoded on first use."""
        with self._lock:
            if text in self._cache:
                self.hits += 1
                self._cache.move_to_end(text)
                return self._cache[text]
            self.misses += 1
            embedding = self._encode(text)
            self._cache[text] = embedding
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
            return embedding

    def batch(self, texts: list[str]) -> Embedding:
        """The embeddings of `texts` stacked in order, one row each (a text repeated is one
        encoding)."""
        return Embedding.cat([self.get(text) for text in texts])

    def seeded(self, texts: list[str], seeds: list[int], strength: float) -> Embedding:
        """The embeddings of `texts`, row i moved by seed i's noise at `strength` (seed
        variance); `strength` 0 is `batch` exactly."""
        embedding = self.batch(texts)
        if not strength:
            return embedding
        rows = [
            _varied(row, seed, strength) for row, seed in zip(embedding.hidden, seeds, strict=True)
        ]
        return Embedding(torch.stack(rows), embedding.pooled)

    def negative(self, text: str, rows: int) -> Embedding:
        """A negative prompt's embedding, `rows` times: zeros for an empty one where the
        family's pipeline guides by zeros (SDXL's force_zeros_for_empty_prompt)."""
        embedding = self.get(text)
        if not text and self._family.empty_negative_is_zeros(self._pipe):
            embedding = embedding.zeros()
        return Embedding.cat([embedding] * rows)

    @torch.no_grad()
    def _encode(self, text: str) -> Embedding:
        return self._family.encode(self._pipe, text)


def _varied(hidden: torch.Tensor, seed: int, strength: float) -> torch.Tensor:
    """One text's hidden states plus noise from a CPU generator seeded by `seed`: the same on
    any device, in float32 whatever the model's dtype."""
    generator = torch.Generator("cpu").manual_seed((seed + _VARIANCE_SALT) % 2**64)
    noise = torch.randn(hidden.shape, generator=generator, dtype=torch.float32)
    values = hidden.detach().to("cpu", torch.float32)
    return (values + strength * values.std() * noise).to(hidden.device, hidden.dtype)
