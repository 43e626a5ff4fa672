"""The outputs folder: every saved tile as `root/YYYY-MM-DD/NNNNN-<seed>.png`, recipe inside.

Numbers go up within a day's folder and carry on after a restart (the folder is scanned once),
as AUTOMATIC1111's do; one lock makes them unique between the threads of one app.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.metadata import APP_VERSION, png_bytes, write_atomic

if TYPE_CHECKING:
    from pipeline.engine import Tile

_NUMBERED = re.compile(r"^(\d+)-")


class OutputFolder:
    """Where tiles are saved; safe to share between threads."""

    def __init__(
        self,
        root: str | Path,
        app_version: str = APP_VERSION,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.root = Path(root)
        self.app_version = app_version
        self._clock = clock
        self._lock = threading.Lock()
        self._next: dict[Path, int] = {}

    def save(self, tile: Tile) -> Path:
        """Write the tile as a PNG with its recipe (atomically) and return its path."""
        data = png_bytes(tile.image, tile.recipe, self.app_version)
        folder = self.root / self._clock().strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if folder not in self._next:
                self._next[folder] = _last_number(folder) + 1
            number = self._next[folder]
            self._next[folder] = number + 1
        path = folder / f"{number:05d}-{tile.recipe.seed}.png"
        write_atomic(path, data)
        return path


def _last_number(folder: Path) -> int:
    numbers = (_NUMBERED.match(path.name) for path in folder.iterdir())
    return max((int(match.group(1)) for match in numbers if match), default=0)
