"""Travel: from the pinned seed to another one, strengths 0 to 1 evenly, as frames and a
looping animation."""

from __future__ import annotations

import gradio as gr
from PIL import Image

from pipeline.contact_sheet import animated_webp
from ui import specs, wiring
from ui.context import Services
from ui.state import TileRef
from ui.widgets import SharedInputs, Updates, run_buttons, tab_results


def build(services: Services, shared: SharedInputs) -> None:
    max_tiles = services.engine.limits.max_tiles
    with gr.Tab("Travel", id="travel"):
        with gr.Row(equal_height=True):
            to_seed = gr.Textbox("1", label="To seed", elem_id="travel-to-seed", scale=2)
            frames = gr.Slider(
                2, max_tiles, value=8, step=1, label="Frames", elem_id="travel-frames", scale=3
            )
            run, stop = run_buttons("Travel", "travel")
        gr.Markdown(
            "The first frame is the pinned tile, the last the other seed's tile "
            "(for a scheduler without step noise).",
            elem_id="travel-note",
        )
        parts = tab_results("Frames", "travel", 8, run, stop)
        with gr.Row():
            movie = gr.Image(
                label="Animation", elem_id="travel-animation", type="filepath", visible=False
            )
            movie_file = gr.File(label="Animated WebP", elem_id="travel-webp", visible=False)
    event = wiring.connect(
        services, specs.TRAVEL, shared, parts, {"to_seed": to_seed, "frames": frames}
    )

    def animate(tiles: list[TileRef], request: gr.Request) -> Updates:
        if not tiles:
            return {movie: gr.update(visible=False), movie_file: gr.update(visible=False)}
        first = tiles[0].recipe
        name = f"travel-{tiles[0].entry}-{first.seed}-to-{first.variation_seed}.webp"
        folder = services.folder(request.session_hash)
        path = str(animated_webp([Image.open(tile.file) for tile in tiles], folder / name))
        return {
            movie: gr.update(value=path, visible=True),
            movie_file: gr.update(value=path, visible=True),
        }

    event.then(animate, parts.tiles, [movie, movie_file], api_visibility="private")
