"""What a browser session remembers between clicks: the tiles shown and the pin.

Kept in gr.State, which Gradio deep-copies per session and never sends to the browser, so it
holds small plain values only (recipes, file paths), never images or the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Pin:
    """The pin: a seed, its variation (A1111's variation seed and strength, "Resize seed
    from"), and the tile it came from (None: a seed from a live preview or a loaded text).

    One value in one gr.State; the pinned-seed field and the note under it show it
    (ui/widgets.py's `SharedInputs.show_pin`)."""

    seed: int | str
    variation_seed: int | None = None
    variation_strength: float = 0.0
    resize_from: tuple[int, int] | None = None
    tile: TileRef | None = None
    # A variation of a variation: the blends the noise went through first, (seed, strength).
    base_variations: tuple[tuple[int, float], ...] = ()

    @classmethod
    def of_recipe(cls, recipe: Recipe, tile: TileRef | None = None) -> Pin:
        """A tile's whole pin: its seed and its variation, as its recipe has them."""
        varied = recipe.variation_seed is not None and bool(recipe.variation_strength)
        return cls(
            recipe.seed,
            recipe.variation_seed if varied else None,
            recipe.variation_strength if varied else 0.0,
            tuple(recipe.resize_from) if recipe.resize_from else None,
            tile,
            tuple((seed, strength) for seed, strength in recipe.base_variations),
        )

    @classmethod
    def of_tile(cls, tile: TileRef) -> Pin:
        return cls.of_recipe(tile.recipe, tile)

    def variation(self) -> dict[str, Any]:
        """The request fields a run that takes the whole pin adds (pipeline/requests.py's
        Pin); empty for a plain seed."""
        fields: dict[str, Any] = {}
        if self.variation_seed is not None:
            fields["variation_seed"] = self.variation_seed
            fields["variation_strength"] = self.variation_strength
        if self.resize_from:
            fields["resize_from"] = list(self.resize_from)
        if self.base_variations:
            fields["base_variations"] = [list(blend) for blend in self.base_variations]
        return fields

    def note(self) -> str:
        """What the pinned-seed field cannot show: the variation, the resized seed."""
        notes = [
            f"from variation seed **{seed}** at **{strength:g}**"
            for seed, strength in self.base_variations
        ]
        if self.variation_seed is not None:
            notes.append(
                f"with variation seed **{self.variation_seed}** at strength "
                f"**{self.variation_strength:g}**"
            )
        if self.resize_from:
            notes.append("seed resized from {}x{}".format(*self.resize_from))
        return " · ".join(notes)

    def parent(self, seed: int) -> TileRef | None:
        """The pinned tile a run grows from, when the run's seed is still the pin's and the
        tile is in this session's manifest."""
        tile = self.tile
        if tile is None or tile.entry is None or tile.seed != seed:
            return None
        return tile
