"""In headless Chromium: a forged session manifest imported as a user would, and what the page
then shows and fetches holds no byte of the files it names (the queue-level probes are in
tests/test_hostile_input.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.recipe import Tile
from tests.test_browser import RENDER_TIMEOUT_MS, captions, open_tab, wait_for_images
from tests.test_hostile_input import forged_manifest

pytestmark = pytest.mark.browser
pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

pytest_plugins = ["tests.test_browser", "tests.test_hostile_input"]  # page; tile, targets


def test_a_forged_manifest_imported_in_the_page_shows_only_placeholders(
    page: Page,
    tile: Tile,
    targets: dict[str, bytes],
    tmp_path: Path,
) -> None:
    forged = tmp_path / "session.json"
    forged.write_bytes(forged_manifest(tile, list(targets)))
    open_tab(page, "History")
    page.locator("#history-import input[type=file]").set_input_files(str(forged))
    expect(captions(page, "history-tree")).to_have_count(
        len(targets) + 1, timeout=RENDER_TIMEOUT_MS
    )
    toast = page.get_by_test_id("toast-body").filter(has_text="outside the app's folders")
    expect(toast).to_contain_text("entry 1 tile 0, entry 2 tile 0")
    wait_for_images(page, "history-tree")
    sources = page.locator("#history-tree .grid-container img").evaluate_all(
        "images => images.map(img => img.src)"
    )
    shown = [page.request.get(source).body() for source in sources]
    assert shown
    for content in targets.values():
        assert not any(content and content[:64] in body for body in shown)
