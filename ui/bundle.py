""" "Download all": the tiles' PNGs as served (recipes kept, not encoded again) and a labelled
contact sheet, zipped."""

from __future__ import annotations

import io
from pathlib import Path

import gradio as gr
from PIL import Image

from pipeline.contact_sheet import contact_sheet, zip_bundle
from ui.state import TileRef


def bundle(shown: list, folder: Path) -> str:
    """The zip of the finished tiles in `shown` (previews of a run still going are not tiles)."""
    tiles = [ref for ref in shown if isinstance(ref, TileRef)]
    if not tiles:
        raise gr.Error("Download all: nothing rendered yet", print_exception=False)
    images = [Image.open(ref.file) for ref in tiles]
    first = tiles[0].recipe
    footer = [
        first.prompt.removesuffix(first.suffix or "")
    ]  # a refinement's prompt before its suffix
    if first.negative_prompt:
        footer.append(f"Negative prompt: {first.negative_prompt}")
    footer.append(
        f"{first.sampler}, {first.steps} steps, {first.guidance_name} {first.guidance_scale:g}, "
        f"{first.width}x{first.height}, model {first.model_id}"
    )
    sheet = contact_sheet(images, [ref.caption for ref in tiles], footer)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    files = [(Path(ref.file).name, Path(ref.file).read_bytes()) for ref in tiles]
    entry = tiles[0].entry
    name = f"seed-explorer-{first.kind}-{entry if entry is not None else 'loaded'}.zip"
    return str(zip_bundle(files, buffer.getvalue(), folder, name))
