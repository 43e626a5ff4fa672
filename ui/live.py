"""What a browser sees of a run while it renders: its progress line and a live preview, one
small JPEG of every tile being denoised, as A1111 shows a batch's previews as one grid.

A preview sent as one gallery item per tile cost one file per tile per update: Gradio
encoded and hashed each and every client fetched each (gradio_client on a new connection per
file). One frame per update costs one small file. The runner writes it (`Live.show`) into the
session's served folder, which Gradio serves as it is, and keeps the latest progress line
(`Live.say`); the browser's tab polls for both while its run renders (ui/shared.py), so API
callers, who cannot show them, are never sent them. Each tile's seed is known from the plan,
so a click on the frame pins the seed under it.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from pipeline.contact_sheet import default_columns

MIN_CELL_SIDE = 192  # a 64 px preview is tripled so its label fits and it reads on a screen
JPEG_QUALITY = 80
LABEL_BAND = 16


@dataclass(frozen=True)
class Frame:
    """One live preview: its JPEG, and where each tile is in it."""

    path: str
    number: int  # counts up, never repeats: a new name, so no browser shows a cached frame
    seeds: tuple[int, ...]  # the seed of each cell, row by row (None-free: known from the plan)
    columns: int
    cell: tuple[int, int]  # width, height of a cell in pixels

    def seed_at(self, x: float, y: float) -> int | None:
        """The seed of the tile under the point (x, y) of the frame, or None between tiles."""
        column, row = int(x // self.cell[0]), int(y // self.cell[1])
        index = row * self.columns + column
        if not 0 <= column < self.columns or not 0 <= index < len(self.seeds):
            return None
        return self.seeds[index]


@dataclass(frozen=True)
class Sight:
    """What a session's poll finds: the latest progress line and frame of its run."""

    number: int  # counts up, never repeats: a poll sends a sight only when it is new
    line: str
    frame: Frame | None


class Live:
    """The latest progress line and frame of each session's run."""

    def __init__(self) -> None:
        self._sights: dict[str, Sight] = {}
        self._written: dict[str, list[str]] = {}  # each session's frames still on disk
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def show(
        self,
        session: str,
        folder: Path,
        previews: list[Image.Image | None],
        labels: list[str],
        seeds: list[int],
    ) -> Frame:
        """Draws the previews so far (None: a tile not previewed yet, left blank) as one frame
        and makes it the session's latest."""
        with self._lock:
            number = next(self._numbers)
        columns = default_columns(len(previews))
        shown = [image for image in previews if image is not None]
        width = max(MIN_CELL_SIDE, max(image.width for image in shown))
        scale = width / max(image.width for image in shown)
        height = round(max(image.height for image in shown) * scale)
        rows = -(-len(previews) // columns)
        frame = Image.new("RGB", (columns * width, rows * height), (235, 235, 235))
        draw = ImageDraw.Draw(frame)
        for index, (image, label) in enumerate(zip(previews, labels, strict=True)):
            left, top = index % columns * width, index // columns * height
            if image is not None:
                size = (round(image.width * scale), round(image.height * scale))
                frame.paste(image.resize(size, Image.Resampling.NEAREST), (left, top))
            band = top + height - LABEL_BAND
            draw.rectangle((left, band, left + width - 1, top + height - 1), fill=(30, 30, 30))
            draw.text((left + 4, band + 3), label, fill=(240, 240, 240))
        path = folder / f"live-{number}.jpg"
        frame.save(path, format="JPEG", quality=JPEG_QUALITY)
        made = Frame(str(path), number, tuple(seeds), columns, (width, height))
        with self._lock:
            last = self._sights.get(session)
            self._sights[session] = Sight(next(self._numbers), last.line if last else "", made)
            written = self._written.setdefault(session, [])
            written.append(made.path)
            # The one before stays: a browser may be fetching it. Older ones go.
            old, written[:] = written[:-2], written[-2:]
        for stale in old:
            Path(stale).unlink(missing_ok=True)
        return made

    def say(self, session: str, line: str) -> None:
        """The run's progress line, for the status under its gallery."""
        with self._lock:
            last = self._sights.get(session)
            self._sights[session] = Sight(next(self._numbers), line, last and last.frame)

    def latest(self, session: str) -> Sight | None:
        with self._lock:
            return self._sights.get(session)

    def forget(self, session: str) -> None:
        """The session has ended: nothing of it is kept (its files go with its folder)."""
        with self._lock:
            self._sights.pop(session, None)
            self._written.pop(session, None)

    def end(self, session: str) -> None:
        """The run is over: its tiles replace the frame (its file goes with the next run's,
        or with the session's folder)."""
        with self._lock:
            self._sights.pop(session, None)
