"""In headless Chromium: the dice, a narrow window, Enter, downloads, the session manifest
exported and imported after a reload, and a pinned tile's round trip — download it, drop it
back in, verify it in the app and replay it with the command line's code, bit-exact; and an
AUTOMATIC1111 PNG dropped on "Load a recipe" filling the settings."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from tests.conftest import a1111_png
from tests.test_browser import (
    PROMPT,
    RENDER_TIMEOUT_MS,
    captions,
    close_preview,
    open_tab,
    run_grid,
    screenshot,
    set_number,
    textbox,
    tile,
    wait_for_images,
)

pytestmark = pytest.mark.browser
pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from pipeline.metadata import read_png  # noqa: E402
from pipeline.replay import main as replay  # noqa: E402

pytest_plugins = ["tests.test_browser"]


def test_dice_draws_four_seeds_and_the_pinned_seed_copies_in_one_click(page: Page) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    seeds = textbox(page, "seeds")
    page.locator("#seeds-random").click()
    expect(seeds).to_have_value(re.compile(r"^\d+, \d+, \d+, \d+$"))
    drawn = [int(seed) for seed in seeds.input_value().split(", ")]
    textbox(page, "prompt").fill(PROMPT)
    page.locator("#grid-run").click()
    expect(captions(page, "grid-gallery")).to_have_text(
        [f"seed {seed}" for seed in drawn], timeout=RENDER_TIMEOUT_MS
    )
    tile(page, "grid-gallery", f"seed {drawn[1]}").click()
    expect(textbox(page, "pinned-seed")).to_have_value(str(drawn[1]))

    page.locator("#pinned-seed").get_by_role("button", name="Copy").click()

    assert page.evaluate("navigator.clipboard.readText()") == str(drawn[1])


def test_a_narrow_window_stacks_the_layout_without_sideways_scrolling(
    browser: Browser, app_url: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone's width
    page = context.new_page()
    page.goto(app_url)
    set_number(page.locator("#steps input[type=number]"), 2)
    run_grid(page, PROMPT, "0-3", [0, 1, 2, 3])
    tile(page, "grid-gallery", "seed 3").click()
    expect(textbox(page, "pinned-seed")).to_have_value("3")
    close_preview(page, "grid-gallery")

    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for element in ("#prompt", "#seeds", "#grid-run", "#grid-stop", "#pinned-seed"):
        box = page.locator(element).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, element
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "narrow")
    context.close()


def test_enter_in_the_prompt_generates(page: Page) -> None:
    prompt = textbox(page, "prompt")
    prompt.fill("a lighthouse at dusk")
    prompt.press("Enter")
    expect(captions(page, "grid-gallery")).to_have_text(
        [f"seed {seed}" for seed in range(4)], timeout=RENDER_TIMEOUT_MS
    )


def test_a_pinned_tile_downloads_drops_back_in_and_verifies_bit_exact(
    page: Page, tmp_path: Path
) -> None:
    run_grid(page, PROMPT, "0-3", [0, 1, 2, 3])
    tile(page, "grid-gallery", "seed 2").click()
    expect(textbox(page, "pinned-seed")).to_have_value("2")
    with page.expect_download() as download:
        page.locator("#grid-gallery").get_by_role("button", name="Download").first.click()
    png = tmp_path / "tile.png"
    download.value.save_as(png)
    _, recipe, infotext = read_png(png)
    assert recipe is not None and recipe.seed == 2 and "Seed: 2" in (infotext or "")
    close_preview(page, "grid-gallery")

    # A new page: nothing pinned, then the PNG dropped onto "Load a recipe".
    page.reload()
    expect(textbox(page, "pinned-seed")).to_have_value("")
    page.locator("#reproduce").get_by_text("Reproduce").click()
    page.locator("#recipe-file input[type=file]").set_input_files(png)
    expect(textbox(page, "pinned-seed")).to_have_value("2")
    expect(textbox(page, "prompt")).to_have_value(PROMPT)
    expect(page.locator("#recipe-status")).to_contain_text("full recipe")
    page.locator("#verify-run").click()
    expect(page.locator("#verify-status")).to_contain_text("Bit-exact", timeout=RENDER_TIMEOUT_MS)
    screenshot(page, "verified", full_page=False)

    assert replay([str(png), "--out", str(tmp_path / "out")]) == 0  # 0: bit-exact


def test_download_all_and_the_session_manifest_brings_the_tree_back_after_a_reload(
    page: Page, tmp_path: Path
) -> None:
    run_grid(page, PROMPT, "4-6", [4, 5, 6])
    tile(page, "grid-gallery", "seed 5").click()
    expect(textbox(page, "pinned-seed")).to_have_value("5")
    close_preview(page, "grid-gallery")
    button = page.locator("#grid-download")
    expect(button).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    with page.expect_download() as download:
        button.click()  # one click: the zip was made with the tiles
    bundle = tmp_path / "all.zip"
    download.value.save_as(bundle)
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert "contact-sheet.png" in names and len(names) == 4

    page.locator("#reproduce").get_by_text("Reproduce").click()
    page.locator("#manifest-export").click()
    manifest_link = page.locator("#manifest-file a").first
    expect(manifest_link).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    with page.expect_download() as download:
        manifest_link.click()
    manifest = json.loads(Path(download.value.path()).read_text())
    seeds = [t["recipe"]["seed"] for t in manifest["entries"][0]["tiles"]]
    assert seeds == [4, 5, 6]
    pin = manifest["entries"][1]
    assert (pin["kind"], pin["parent"]) == ("pin", {"entry": 1, "tile": 1})

    exported = tmp_path / "session.json"
    download.value.save_as(exported)
    page.reload()  # a new session: empty history, default settings
    textbox(page, "prompt").fill("something else")
    set_number(page.locator("#steps input[type=number]"), 9)
    open_tab(page, "History")
    expect(captions(page, "history-tree")).to_have_count(0)
    page.locator("#history-import input[type=file]").set_input_files(str(exported))
    expect(captions(page, "history-tree")).to_have_text(
        ["#1 grid", "#2 pin"], timeout=RENDER_TIMEOUT_MS
    )
    outline = page.locator("#history-outline")
    expect(outline.locator("li li")).to_have_text("#2 pin · seed 5 (tile 2 of #1)")
    tile(page, "history-tree", "#2 pin").click()
    expect(textbox(page, "prompt")).to_have_value(PROMPT)
    expect(textbox(page, "pinned-seed")).to_have_value("5")
    expect(page.locator("#steps input[type=number]")).to_have_value("4")
    wait_for_images(page, "history-tree")
    screenshot(page, "history-imported")


def test_an_a1111_png_dropped_on_load_a_recipe_fills_the_settings_and_pins_its_seed(
    page: Page, tmp_path: Path
) -> None:
    # Every value differs from the page's defaults (PNDM, 4 steps, CFG 7.5, 64x64).
    parameters = (
        "a red barn in snow\n"
        "Negative prompt: fog, people\n"
        "Steps: 3, Sampler: Euler, CFG scale: 6.5, Seed: 1234, Size: 96x80, "
        "Model hash: 0123456789, Model: their-model"
    )
    png = a1111_png(tmp_path / "a1111.png", parameters, (96, 80))
    page.locator("#reproduce").get_by_text("Reproduce").click()
    page.locator("#recipe-file input[type=file]").set_input_files(png)
    expect(page.locator("#recipe-status")).to_contain_text("AUTOMATIC1111 parameters")
    expect(textbox(page, "prompt")).to_have_value("a red barn in snow")
    expect(textbox(page, "negative-prompt")).to_have_value("fog, people")
    expect(page.locator("#steps input[type=number]")).to_have_value("3")
    expect(page.locator("#guidance-scale input[type=number]")).to_have_value("6.5")
    expect(page.locator("#width input[type=number]")).to_have_value("96")
    expect(page.locator("#height input[type=number]")).to_have_value("80")
    expect(page.locator("#scheduler input")).to_have_value("Euler")
    expect(textbox(page, "pinned-seed")).to_have_value("1234")
    screenshot(page, "a1111-loaded")
