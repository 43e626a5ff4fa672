"""What a browser session remembers between clicks.

Kept in gr.State, which Gradio deep-copies per session and never sends to the browser, so it
holds small plain values only (recipes, file paths), never images or the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.recipe import Recipe


@dataclass(frozen=True)
class TileRef:
    """A shown tile: its recipe, the PNG the app wrote for it, where the manifest has it."""

    recipe: Recipe
    file: str  # the PNG served to the browser, written by the app (never a client's path)
    caption: str
    entry: int | None  # the session manifest's entry that rendered it (None: a loaded PNG)
    index: int  # its place in that entry
    saved: str | None = None  # its copy in the outputs folder, when saving is on

    @property
    def seed(self) -> int:
        return self.recipe.seed
