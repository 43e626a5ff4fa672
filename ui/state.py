"""What a browser session remembers between clicks: the tiles each gallery shows.

Kept in gr.State, which Gradio deep-copies per session, so it holds small plain values only,
never images or the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TileRef:
    """Enough of a shown tile to pin it: its seed and the prompt it was rendered with."""

    seed: int
    prompt: str
