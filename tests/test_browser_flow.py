"""In headless Chromium, a flow-matching model as a new user brings one (`python app.py --model
FOLDER` on a saved tiny Flux.1 [dev] or SD3 folder): a grid, a tile pinned, and Compare with
two flow samplers, their captions and the recipes their PNGs carry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.metadata import read_png
from tests.test_browser import (
    RENDER_TIMEOUT_MS,
    VIEWPORT,
    captions,
    choose_schedulers,
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

pytest_plugins = ["tests.test_browser"]  # browser
STEPS, SIDE = 2, 32  # the smallest render that shows the flow path end to end
SAMPLERS = ["Euler", "DPM++ 2M"]


@pytest.fixture
def flow_page(browser: Browser, flow_app: str) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(flow_app)
    expect(page.locator("#grid-run")).to_be_visible(timeout=30_000)
    for elem_id, value in (("steps", STEPS), ("width", SIDE), ("height", SIDE)):
        set_number(page.locator(f"#{elem_id} input[type=number]"), value)
    yield page
    context.close()


def test_a_flow_model_renders_a_grid_pins_and_compares_two_samplers(
    flow_page: Page, flow_app: str, tmp_path: Path
) -> None:
    page = flow_page
    flux = "Distilled CFG" in page.locator("#guidance-scale").inner_text()
    expect(page.locator("#shift")).to_be_visible()  # a flow family's setting, shown
    run_grid(page, "a kite over the sea", "0-1", [0, 1])
    tile(page, "grid-gallery", "seed 1").click()
    expect(textbox(page, "pinned-seed")).to_have_value("1")
    close_preview(page, "grid-gallery")

    open_tab(page, "Compare")
    choose_schedulers(page, SAMPLERS)
    set_number(page.locator("#compare-steps input"), STEPS)
    page.locator("#compare-run").click()

    expect(captions(page, "compare-gallery")).to_have_text(
        [re.compile(rf"^{re.escape(name)} · {STEPS} steps · \d+\.\d s$") for name in SAMPLERS],
        timeout=RENDER_TIMEOUT_MS,
    )
    expect(page.locator("#compare-status")).to_contain_text("2 tiles · seeds 1")
    wait_for_images(page, "compare-gallery")
    screenshot(page, f"flow-compare-{'flux' if flux else 'sd3'}")
    sources = page.locator("#compare-gallery .grid-container img").evaluate_all(
        "images => images.map(img => img.src)"
    )
    recipes = []
    for index, source in enumerate(sources):
        png = tmp_path / f"{index}.png"
        png.write_bytes(page.request.get(source).body())
        recipes.append(read_png(png)[1])
    assert [(r.sampler, r.steps, r.seed, r.width) for r in recipes] == [
        (name, STEPS, 1, SIDE) for name in SAMPLERS
    ]
    assert {r.family for r in recipes} == {"flux" if flux else "sd3"}
    assert all(r.lockstep and r.shift is not None for r in recipes)
    assert {r.guidance_kind for r in recipes} == {"embedding" if flux else "cfg"}
