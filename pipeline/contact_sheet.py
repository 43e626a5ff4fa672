"""A labelled contact sheet of a run and the "download all" zip that carries it.

The sheet is what a user shares or files away: every tile with its label (seed, scheduler)
and, below, the prompt and settings that made them, so the picture explains itself. The zip
holds the tiles exactly as rendered (PNG bytes with their recipe in the text chunks) plus the
sheet, so nothing is re-encoded on the way out.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SHEET_NAME = "contact-sheet.png"
MAX_COLUMNS = 8
MIN_TILE_SIDE = 128
MIN_FONT_PX = 14
MAX_FONT_PX = 48
ELLIPSIS = "…"
BACKGROUND = (255, 255, 255)
LABEL_INK = (20, 20, 20)
FOOTER_INK = (70, 70, 70)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_SEPARATORS = re.compile(r"[/\\]+")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f:*?"<>|]+')

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def contact_sheet(
    images: list[Image.Image],
    labels: list[str],
    footer: list[str],
    columns: int | None = None,
) -> Image.Image:
    """Tiles in rows, each labelled under it, with the prompt and settings wrapped below.

    Small tiles (the tiny model's 64 px) are enlarged by a whole factor with NEAREST so the
    pixels stay honest and the labels fit; the font grows with the tile so a sheet of 1024 px
    tiles stays as readable as one of 64 px tiles.
    """
    if not images:
        raise ValueError("a contact sheet needs at least one image")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if columns is None:
        columns = default_columns(len(images))
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)

    scale, cell_w, cell_h, font, line_h, gap = _cells(images)
    label_h = line_h + gap

    width = columns * cell_w + (columns + 1) * gap
    footer_lines = [line for text in footer for line in wrap(text, font, width - 2 * gap)]
    grid_h = rows * (cell_h + label_h) + gap
    footer_h = len(footer_lines) * line_h + (gap if footer_lines else 0)
    sheet = Image.new("RGB", (width, grid_h + footer_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        row, column = divmod(index, columns)
        x = gap + column * (cell_w + gap)
        y = gap + row * (cell_h + label_h)
        tile = image.convert("RGB")
        if scale > 1:
            tile = tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)
        sheet.paste(tile, (x + (cell_w - tile.width) // 2, y + (cell_h - tile.height) // 2))
        text = fit(label, font, cell_w)
        text_x = x + (cell_w - round(draw.textlength(text, font=font))) // 2
        draw.text((text_x, y + cell_h + gap // 2), text, font=font, fill=LABEL_INK)

    for number, line in enumerate(footer_lines):
        draw.text((gap, grid_h + number * line_h), line, font=font, fill=FOOTER_INK)
    return sheet


def labelled_grid(
    images: list[Image.Image],
    columns: list[str],
    rows: list[str],
    footer: list[str],
) -> Image.Image:
    """A matrix as A1111's X/Y plot draws it: the cells row-major under column headers, each
    row after its header, the fixed settings wrapped below."""
    if len(images) != len(columns) * len(rows):
        raise ValueError(f"{len(images)} images for {len(columns)} x {len(rows)} cells")
    scale, cell_w, cell_h, font, line_h, gap = _cells(images)
    header_w = min(max(round(font.getlength(label)) for label in rows) + 2 * gap, 2 * cell_w)
    header_h = line_h + gap
    width = header_w + len(columns) * (cell_w + gap) + gap
    footer_lines = [line for text in footer for line in wrap(text, font, width - 2 * gap)]
    grid_h = header_h + len(rows) * (cell_h + gap) + gap
    sheet = Image.new("RGB", (width, grid_h + len(footer_lines) * line_h + gap), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for column, label in enumerate(columns):
        text = fit(label, font, cell_w)
        x = (
            header_w
            + column * (cell_w + gap)
            + (cell_w - round(draw.textlength(text, font=font))) // 2
        )
        draw.text((x, gap // 2), text, font=font, fill=LABEL_INK)
    for row, label in enumerate(rows):
        y = header_h + row * (cell_h + gap)
        text = fit(label, font, header_w - 2 * gap)
        draw.text((gap, y + (cell_h - line_h) // 2), text, font=font, fill=LABEL_INK)
        for column in range(len(columns)):
            tile = images[row * len(columns) + column].convert("RGB")
            if scale > 1:
                tile = tile.resize(
                    (tile.width * scale, tile.height * scale), Image.Resampling.NEAREST
                )
            sheet.paste(tile, (header_w + column * (cell_w + gap), y))
    for number, line in enumerate(footer_lines):
        draw.text((gap, grid_h + number * line_h), line, font=font, fill=FOOTER_INK)
    return sheet


def animated_webp(images: list[Image.Image], path: Path, frame_ms: int = 250) -> Path:
    """Seed travel as one looping animated WebP, lossless so each frame is the tile."""
    first, *rest = [image.convert("RGB") for image in images]
    first.save(
        path,
        format="WEBP",
        save_all=True,
        append_images=rest,
        duration=frame_ms,
        loop=0,
        lossless=True,
    )
    return path


def default_columns(count: int) -> int:
    """AUTOMATIC1111's grid shape: round(sqrt(n)) rows, as many columns as that needs."""
    rows = max(1, round(math.sqrt(count)))
    return min(MAX_COLUMNS, math.ceil(count / rows))


def tile_scale(images: list[Image.Image]) -> int:
    """The whole factor that brings the smallest side of the largest tile to MIN_TILE_SIDE."""
    side = min(max(image.width for image in images), max(image.height for image in images))
    return max(1, math.ceil(MIN_TILE_SIDE / side))


def font_px(cell_width: int) -> int:
    """Label size in proportion to the tile: a twentieth of its width, within readable bounds."""
    return max(MIN_FONT_PX, min(MAX_FONT_PX, cell_width // 20))


def fit(text: str, font: Font, width: int) -> str:
    """The text as it fits in `width` pixels on one line, cut with an ellipsis if it must be."""
    if font.getlength(text) <= width:
        return text
    kept = text[: _fitting_prefix(text, font, width, ELLIPSIS)].rstrip()
    return kept + ELLIPSIS if kept else ""


def wrap(text: str, font: Font, width: int) -> list[str]:
    """Lines of at most `width` pixels, broken at spaces; a word too long is broken inside."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while font.getlength(line) > width:
                cut = max(1, _fitting_prefix(line, font, width))
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _fitting_prefix(text: str, font: Font, width: int, tail: str = "") -> int:
    """The length of the longest prefix that, with `tail`, fits in `width` (binary search)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(text[:middle] + tail) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _line_height(font: Font) -> int:
    return round(font.getbbox("Ágy")[3] * 1.3)


def zip_bundle(files: list[tuple[str, bytes]], sheet_png: bytes, folder: Path, name: str) -> Path:
    """Write the tiles and the contact sheet into one zip in `folder`, all or nothing.

    The bytes go in untouched, so each PNG keeps its recipe; PNGs are stored, not deflated
    (they are compressed already). Names are made safe and unique so the zip unpacks into one
    flat folder on any system. The zip is written beside its final path and renamed into
    place, so a reader never sees half a file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = safe_name(name)
    target = folder / (base if base.lower().endswith(".zip") else f"{base}.zip")
    taken = {SHEET_NAME.lower()}
    entries = [(unique_name(safe_name(given), taken), data) for given, data in files]
    entries.append((SHEET_NAME, sheet_png))
    handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream, zipfile.ZipFile(stream, "w") as bundle:
            for entry, data in entries:
                stored = data.startswith(PNG_SIGNATURE)
                method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                bundle.writestr(entry, data, compress_type=method)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def safe_name(name: str) -> str:
    """A file name with no folders, no `..`, no characters Windows refuses, never empty."""
    parts = [part for part in _SEPARATORS.split(name) if part.strip(" .")]
    cleaned = _UNSAFE.sub("_", "_".join(parts)).strip(" .")
    return cleaned or "file"


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`... before the extension: the first not yet in `taken`.

    Compared without case, as Windows and macOS unpack them. Adds the result to `taken`.
    """
    stem, dot, suffix = name.rpartition(".")
    if not stem:
        stem, dot, suffix = name, "", ""
    candidate, number = name, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{stem}-{number}{dot}{suffix}"
    taken.add(candidate.lower())
    return candidate


def _cells(images: list[Image.Image]) -> tuple[int, int, int, Font, int, int]:
    """What a sheet of these images is laid out by: the tiles' scale, a cell's width and
    height, the label font, its line height and the gap between cells."""
    scale = tile_scale(images)
    cell_w = max(image.width for image in images) * scale
    cell_h = max(image.height for image in images) * scale
    font = ImageFont.load_default(size=font_px(cell_w))
    line_h = _line_height(font)
    return scale, cell_w, cell_h, font, line_h, max(4, line_h // 2)
