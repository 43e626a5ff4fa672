"""End to end in headless Chromium: grid, pin, refine, compare, a refused input, a live frame
clicked then Stop, vary and its pin, seed travel, a matrix cell clicked, and the history tree.

Drives the app launched by the `app_url` fixture (tiny model, CPU) the way a user does: typing,
clicking tiles and tabs, reading captions and toasts. Locators come from the live Gradio 6 DOM:
gallery tiles are `button.thumbnail-item` with a `.caption-label`, toasts carry
`data-testid="toast-body"`, tabs are `role=tab`, a multiselect dropdown shows one `.token` per
choice with a remove button. Each test saves its end state under test-artifacts/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"needs Debian chromium at {CHROMIUM}", allow_module_level=True)

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 900}
README_VIEWPORT = {"width": 1280, "height": 1400}
RENDER_TIMEOUT_MS = 120_000  # a render on a busy 2-core CPU; the rest waits Playwright's 5 s
STEPS = 4
PROMPT = "A photograph of an astronaut riding a horse on Mars, high resolution, high definition"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"  # made by conftest.launch_app; gitignored
# The README's screenshot, rewritten only when asked: UPDATE_README_SCREENSHOT=1 make test
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # launch() starts Chromium on a fresh temporary profile (user data dir) every time.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, app_url: str) -> Iterator[Page]:
    """A new browser context per test: a new Gradio session with empty state."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(app_url)
    expect(page.locator("#grid-run")).to_be_visible(timeout=30_000)
    set_number(page.locator("#steps input[type=number]"), STEPS)
    yield page
    context.close()


def set_number(field: Locator, value: int) -> None:
    """Type into a Gradio number box; Enter commits it (as a user does)."""
    field.fill(str(value))
    field.press("Enter")
    expect(field).to_have_value(str(value))


def textbox(page: Page, elem_id: str) -> Locator:
    return page.locator(f"#{elem_id} textarea")


def captions(page: Page, gallery_id: str) -> Locator:
    """The captions of a gallery's grid of tiles, in order."""
    return page.locator(f"#{gallery_id} .grid-container .caption-label")


def tile(page: Page, gallery_id: str, caption: str) -> Locator:
    """The grid tile (a button) whose caption is exactly `caption`."""
    label = page.locator(".caption-label").filter(has_text=re.compile(rf"^{re.escape(caption)}$"))
    return page.locator(f"#{gallery_id} .grid-container button.thumbnail-item").filter(has=label)


def open_tab(page: Page, name: str) -> None:
    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def type_suffixes(page: Page, text: str) -> None:
    """Types Refine's suffixes once the tab has mounted the box with its defaults: typed into
    before then, as into a page still loading, the text shows but the run gets the defaults.
    The box can show its defaults a moment before it listens (on a busy machine), so the text
    is typed again once it has settled."""
    open_tab(page, "Refine")
    suffixes = textbox(page, "refine-suffixes")
    expect(suffixes).to_have_value(re.compile("highly realistic"))
    suffixes.fill(text)
    page.wait_for_timeout(500)
    suffixes.fill("")
    suffixes.fill(text)
    expect(suffixes).to_have_value(text)


def run_grid(page: Page, prompt: str, seeds: str, expected: list[int]) -> None:
    textbox(page, "prompt").fill(prompt)
    textbox(page, "seeds").fill(seeds)
    page.locator("#grid-run").click()
    expect(captions(page, "grid-gallery")).to_have_text(
        [f"seed {seed}" for seed in expected], timeout=RENDER_TIMEOUT_MS
    )


def wait_for_images(page: Page, gallery_id: str) -> None:
    """Gallery images load lazily: scroll them in and wait until every one has pixels."""
    page.locator(f"#{gallery_id}").scroll_into_view_if_needed()
    page.wait_for_function(
        """id => {
            const images = [...document.querySelectorAll(`#${id} .grid-container img`)];
            images.forEach(img => img.loading = "eager");
            return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
        }""",
        arg=gallery_id,
    )


def close_preview(page: Page, gallery_id: str) -> None:
    """Clicking a tile opens Gradio's large preview; Close goes back to the grid."""
    page.locator(f"#{gallery_id}").get_by_role("button", name="Close", exact=True).click()
    expect(page.locator(f"#{gallery_id} .grid-container")).to_be_visible()


def screenshot(page: Page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    save_screenshot(page, ARTIFACTS / f"browser-{name}.png", full_page)


def save_screenshot(page: Page, path: Path, full_page: bool = True) -> None:
    """Without hover highlights. (animations="disabled" would end a toast's timer: no toast.)"""
    page.mouse.move(0, 0)
    page.screenshot(path=str(path), full_page=full_page)


def test_grid_renders_one_tile_per_seed_in_order(page: Page) -> None:
    run_grid(page, PROMPT, "0-3", [0, 1, 2, 3])

    expect(page.locator("#grid-gallery .grid-container img")).to_have_count(4)
    expect(page.locator("#grid-status")).to_contain_text("4 tiles · seeds 0, 1, 2, 3")
    wait_for_images(page, "grid-gallery")
    screenshot(page, "grid")


def test_clicking_a_tile_pins_its_seed(page: Page) -> None:
    pinned = textbox(page, "pinned-seed")
    expect(pinned).to_have_value("")
    run_grid(page, PROMPT, "0-7", list(range(8)))

    tile(page, "grid-gallery", "seed 2").click()

    expect(pinned).to_have_value("2")
    expect(page.locator("#grid-gallery caption")).to_have_text("seed 2")  # the preview's caption
    close_preview(page, "grid-gallery")
    expect(pinned).to_have_value("2")
    wait_for_images(page, "grid-gallery")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "pin")
    # The gallery is at most 55vh tall: a taller window shows both rows for the README.
    page.set_viewport_size(README_VIEWPORT)
    wait_for_images(page, "grid-gallery")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "readme")
    if os.environ.get("UPDATE_README_SCREENSHOT") == "1":
        save_screenshot(page, README_SCREENSHOT)


def test_refine_renders_one_tile_per_suffix_and_reuses_a_tile_prompt(page: Page) -> None:
    prompt = "a red fox in the snow"
    run_grid(page, prompt, "5", [5])
    tile(page, "grid-gallery", "seed 5").click()
    expect(textbox(page, "pinned-seed")).to_have_value("5")

    type_suffixes(page, ", artsy\n, colorful")
    page.locator("#refine-run").click()

    expect(captions(page, "refine-gallery")).to_have_text(
        ["artsy · seed 5", "colorful · seed 5"], timeout=RENDER_TIMEOUT_MS
    )
    expect(page.locator("#refine-status")).to_contain_text("2 tiles · seeds 5")
    use_prompt = page.locator("#refine-use-prompt")
    expect(use_prompt).to_be_hidden()

    tile(page, "refine-gallery", "colorful · seed 5").click()

    expect(use_prompt).to_be_visible()
    expect(use_prompt).to_contain_text(f"{prompt}, colorful")
    screenshot(page, "refine-tile-chosen")
    use_prompt.click()
    expect(textbox(page, "prompt")).to_have_value(f"{prompt}, colorful")
    expect(use_prompt).to_be_hidden()
    expect(textbox(page, "pinned-seed")).to_have_value("5")
    screenshot(page, "refine")


def choose_schedulers(page: Page, wanted: list[str]) -> None:
    """Compare's multiselect keeps `wanted` only (each among its first choices), in order."""
    tokens = page.locator("#compare-schedulers .token")
    expect(tokens.first).to_be_visible()
    for name in tokens.all_inner_texts():
        if name.strip() not in wanted:
            chosen = tokens.filter(has_text=re.compile(rf"^\s*{re.escape(name.strip())}\s*$"))
            chosen.get_by_role("button").click()
            expect(chosen).to_have_count(0)
    expect(tokens).to_have_text(wanted)


def test_compare_renders_one_tile_per_chosen_scheduler(page: Page) -> None:
    wanted = ["Euler", "DDIM"]
    textbox(page, "prompt").fill(PROMPT)
    textbox(page, "pinned-seed").fill("8")  # typing a seed pins it too
    open_tab(page, "Compare")

    choose_schedulers(page, wanted)
    scheduler_steps = textbox(page, "compare-scheduler-steps")
    expect(scheduler_steps).to_have_value(re.compile(r"^Euler: \d+\nDDIM: \d+$"))
    set_number(page.locator("#compare-steps input"), STEPS)

    page.locator("#compare-run").click()

    expect(captions(page, "compare-gallery")).to_have_text(
        [re.compile(rf"^{name} · {STEPS} steps · \d+\.\d s$") for name in wanted],
        timeout=RENDER_TIMEOUT_MS,
    )
    expect(page.locator("#compare-status")).to_contain_text("2 tiles · seeds 8")
    wait_for_images(page, "compare-gallery")
    screenshot(page, "compare")


def test_bad_seeds_get_a_toast_naming_the_field_and_the_next_run_works(page: Page) -> None:
    textbox(page, "prompt").fill(PROMPT)
    textbox(page, "seeds").fill("0-x")
    page.locator("#grid-run").click()

    toast = page.get_by_test_id("toast-body")
    expect(toast).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(toast.get_by_test_id("toast-text")).to_contain_text("Seeds")
    expect(toast.get_by_test_id("toast-text")).to_contain_text("0-x")
    expect(toast).to_have_css("opacity", "1")  # faded in, for the screenshot
    screenshot(page, "bad-input", full_page=False)  # a full-page capture drops the toast
    toast.get_by_test_id("toast-close").click()
    expect(toast).to_have_count(0)

    run_grid(page, PROMPT, "11, 12", [11, 12])
    expect(tile(page, "grid-gallery", "seed 12")).to_be_visible()
    expect(page.locator("#grid-status")).to_contain_text("2 tiles · seeds 11, 12")
    expect(page.get_by_test_id("toast-body")).to_have_count(0)
    screenshot(page, "bad-input-recovered")


def test_a_run_shows_per_step_progress_and_a_live_frame_whose_tiles_pin_then_stops(
    page: Page,
) -> None:
    # Long enough for the estimate (after 1 s) and the previews (one a second) on a fast CPU;
    # Stop ends it once the frame has been clicked.
    set_number(page.locator("#steps input[type=number]"), 150)
    textbox(page, "prompt").fill(PROMPT)
    textbox(page, "seeds").fill("0-3")
    page.locator("#grid-run").click()

    # Steps, not model evaluations (PNDM makes one more evaluation than its 150 steps).
    progress = page.locator("#grid-progress").filter(
        has_text=re.compile(r"PNDM: step \d+/150 · \d+% · about \d+ s left")
    )
    expect(progress).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    live = page.locator("#grid-live img")
    expect(live).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    screenshot(page, "progress", full_page=False)
    box = live.bounding_box()
    assert box is not None
    # Four tiles as 2 x 2 in one frame: the top right one is seed 1.
    live.click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.25})
    expect(textbox(page, "pinned-seed")).to_have_value("1")

    page.locator("#grid-stop").click()

    expect(page.locator("#grid-status")).to_contain_text(
        re.compile(r"Stopped at step \d+ of 150"), timeout=RENDER_TIMEOUT_MS
    )
    expect(page.locator("#grid-progress")).to_be_hidden()  # no late progress line
    expect(captions(page, "grid-gallery")).to_have_count(0)
    expect(textbox(page, "pinned-seed")).to_have_value("1")  # the pin outlives the run


def readme_picture(page: Page, name: str, gallery_id: str) -> None:
    """The README's picture of a tab, rewritten only when asked (UPDATE_README_SCREENSHOT=1)."""
    page.set_viewport_size(README_VIEWPORT)
    wait_for_images(page, gallery_id)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, f"readme-{name}")
    if os.environ.get("UPDATE_README_SCREENSHOT") == "1":
        save_screenshot(page, DOCS / f"{name}.png")


def test_vary_renders_neighbours_and_a_click_pins_the_variation(page: Page) -> None:
    run_grid(page, PROMPT, "3", [3])
    tile(page, "grid-gallery", "seed 3").click()
    open_tab(page, "Vary")
    textbox(page, "vary-seeds").fill("5-8")
    set_number(page.locator("#vary-strength input[type=number]"), 0.5)
    page.locator("#vary-run").click()

    expected = [f"seed 3 → {seed} at 0.50" for seed in range(5, 9)]
    expect(captions(page, "vary-gallery")).to_have_text(expected, timeout=RENDER_TIMEOUT_MS)
    tile(page, "vary-gallery", "seed 3 → 6 at 0.50").click()
    note = page.locator("#pin-variation")
    expect(note).to_contain_text("with variation seed 6 at strength 0.5")
    expect(textbox(page, "pinned-seed")).to_have_value("3")
    close_preview(page, "vary-gallery")
    readme_picture(page, "vary", "vary-gallery")

    # The whole pin: a typed seed would drop the variation.
    type_suffixes(page, ", artsy")
    page.locator("#refine-run").click()
    expect(captions(page, "refine-gallery")).to_have_text(
        ["artsy · seed 3"], timeout=RENDER_TIMEOUT_MS
    )
    textbox(page, "pinned-seed").press_sequentially("1")
    expect(note).to_have_text("")


def test_travel_goes_from_the_pin_to_another_seed_as_frames_and_an_animation(
    page: Page,
) -> None:
    textbox(page, "prompt").fill(PROMPT)
    textbox(page, "pinned-seed").fill("3")
    open_tab(page, "Travel")
    textbox(page, "travel-to-seed").fill("5")
    set_number(page.locator("#travel-frames input[type=number]"), 3)
    page.locator("#travel-run").click()

    frames = [f"seed 3 → 5 at {strength}" for strength in ("0.00", "0.50", "1.00")]
    expect(captions(page, "travel-gallery")).to_have_text(frames, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#travel-animation img")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    link = page.locator("#travel-webp a").first
    expect(link).to_have_attribute("download", re.compile(r"\.webp$"))
    with page.expect_download() as download:
        link.click()
    with Image.open(download.value.path()) as animation:
        assert (animation.format, animation.n_frames) == ("WEBP", 3)
    wait_for_images(page, "travel-gallery")
    screenshot(page, "travel")


def test_a_matrix_cell_clicked_pins_it_with_all_its_settings(page: Page) -> None:
    textbox(page, "prompt").fill(PROMPT)
    textbox(page, "pinned-seed").fill("4")
    open_tab(page, "Matrix")
    textbox(page, "matrix-x-values").fill("1, 2, 3")
    textbox(page, "matrix-y-values").fill("4, 7")
    page.locator("#matrix-run").click()

    cells = [f"Steps: {steps} · CFG scale: {cfg}.0" for cfg in (4, 7) for steps in (1, 2, 3)]
    expect(captions(page, "matrix-gallery")).to_have_text(cells, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#matrix-grid img")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    tile(page, "matrix-gallery", "Steps: 2 · CFG scale: 7.0").click()
    expect(page.locator("#steps input[type=number]")).to_have_value("2")
    expect(page.locator("#guidance-scale input[type=number]")).to_have_value("7")
    expect(textbox(page, "pinned-seed")).to_have_value("4")
    close_preview(page, "matrix-gallery")
    readme_picture(page, "matrix", "matrix-gallery")


def test_the_history_tree_restores_a_nodes_settings_and_pin(page: Page) -> None:
    run_grid(page, PROMPT, "1", [1])
    tile(page, "grid-gallery", "seed 1").click()
    open_tab(page, "Vary")
    textbox(page, "vary-seeds").fill("2")
    page.locator("#vary-run").click()
    expect(captions(page, "vary-gallery")).to_have_text(
        ["seed 1 → 2 at 0.30"], timeout=RENDER_TIMEOUT_MS
    )
    textbox(page, "prompt").fill("something else")
    textbox(page, "pinned-seed").fill("9")
    set_number(page.locator("#steps input[type=number]"), 9)

    open_tab(page, "History")
    nodes = captions(page, "history-tree")
    expect(nodes).to_have_text(["#1 grid", "#2 pin", "#3 vary"])
    # The outline nests each run under the pin it grew from: grid > pin > vary.
    outline = page.locator("#history-outline")
    expect(outline.locator("li li")).to_have_count(2)
    expect(outline.locator("li li li")).to_contain_text("#3 vary")
    tile(page, "history-tree", "#3 vary").click()

    expect(textbox(page, "prompt")).to_have_value(PROMPT)
    expect(textbox(page, "pinned-seed")).to_have_value("1")
    expect(page.locator("#steps input[type=number]")).to_have_value("4")
    expect(page.locator("#history-detail")).to_contain_text("#3 vary")
    wait_for_images(page, "history-tree")
    screenshot(page, "history")
