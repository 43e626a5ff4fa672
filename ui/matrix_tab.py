"""Matrix: any two settings as rows and columns around the pin, as A1111's X/Y plot."""

from __future__ import annotations

import gradio as gr
from PIL import Image

from pipeline import axes
from pipeline.contact_sheet import labelled_grid
from pipeline.metadata import grid_png_bytes
from pipeline.recipe import Recipe
from ui import specs, wiring
from ui.context import Services
from ui.state import Pin, TileRef
from ui.widgets import SharedInputs, Updates, run_buttons, tab_results

VALUES_INFO = "Comma or newline separated; ranges as A1111's: 1-10 · 1-10 (+2) · 0-1 [5]"
# What the footer says of a setting when it is not an axis.
_FIXED = {
    axes.SCHEDULER: lambda r: r.sampler,
    axes.STEPS: lambda r: f"{r.steps} steps",
    axes.CFG_SCALE: lambda r: f"CFG {r.guidance_scale:g}",
    axes.SEED: lambda r: f"seed {r.seed}",
}


def build(services: Services, shared: SharedInputs) -> None:
    with gr.Tab("Matrix", id="matrix"):
        with gr.Row(equal_height=True):
            with gr.Column(scale=2):
                x_axis = gr.Dropdown(
                    list(axes.AXIS_NAMES), value=axes.STEPS, label="X axis", elem_id="matrix-x"
                )
                x_values = gr.Textbox(
                    "10, 20, 30", label="X values", elem_id="matrix-x-values", info=VALUES_INFO
                )
            with gr.Column(scale=2):
                y_axis = gr.Dropdown(
                    list(axes.AXIS_NAMES),
                    value=axes.CFG_SCALE,
                    label="Y axis",
                    elem_id="matrix-y",
                )
                y_values = gr.Textbox(
                    "4, 7", label="Y values", elem_id="matrix-y-values", info=VALUES_INFO
                )
            run, stop = run_buttons("Matrix", "matrix")
        gr.Markdown(
            "Every cell is the pinned tile with the two settings changed (Prompt S/R: the "
            "first value is the text replaced). Click a cell to pin it with all its settings.",
            elem_id="matrix-note",
        )
        parts = tab_results("Cells", "matrix", 4, run, stop)
        grid = gr.Image(
            label="Labelled grid (the PNG carries every cell's recipe)",
            elem_id="matrix-grid",
            type="filepath",
            format="png",
            visible=False,
        )
    own = {"x_axis": x_axis, "x_values": x_values, "y_axis": y_axis, "y_values": y_values}
    event = wiring.connect(services, specs.MATRIX, shared, parts, own)

    def draw(tiles: list[TileRef], request: gr.Request) -> Updates:
        """The labelled grid, and the gallery in as many columns as the matrix has."""
        if not tiles:
            return {grid: gr.update(value=None, visible=False)}
        recipes = [tile.recipe for tile in tiles]
        columns = [r.cell["x"] for r in recipes if r.cell["row"] == 0]
        rows = [r.cell["y"] for r in recipes if r.cell["column"] == 0]
        images = [Image.open(tile.file) for tile in tiles]
        sheet = labelled_grid(images, columns, rows, footer(recipes[0]))
        path = services.folder(request.session_hash) / f"matrix-{tiles[0].entry}.png"
        path.write_bytes(grid_png_bytes(sheet, recipes))
        return {
            grid: gr.update(value=str(path), visible=True),
            parts.gallery: gr.update(columns=len(columns)),
        }

    def pin_cell(shown: list[TileRef], evt: gr.SelectData) -> Updates:
        """A cell's settings and its whole pin: the matrix's axes become the settings."""
        if not isinstance(evt.index, int) or not 0 <= evt.index < len(shown):
            return gr.skip()
        tile = shown[evt.index]
        return shared.restore(tile.recipe, Pin.of_tile(tile))

    event.then(draw, parts.tiles, [grid, parts.gallery], api_visibility="private")
    parts.gallery.select(
        pin_cell,
        parts.tiles,
        shared.restore_outputs(),
        queue=False,
        api_visibility="private",
    )


def footer(recipe: Recipe) -> list[str]:
    """The settings every cell shares: the prompt and whatever is not an axis."""
    on = {recipe.cell["x_axis"], recipe.cell["y_axis"]}
    lines = []
    if not on & {axes.PROMPT_SR, axes.SUFFIX}:
        lines.append(recipe.prompt)
    if recipe.negative_prompt and axes.PROMPT_SR not in on:
        lines.append(f"Negative prompt: {recipe.negative_prompt}")
    fixed = [describe(recipe) for name, describe in _FIXED.items() if name not in on]
    fixed.append(f"{recipe.width}x{recipe.height}, model {recipe.model_id}")
    lines.append(", ".join(fixed))
    return lines
