"""What Verify costs a person, against the render it repeats: in Chromium, on a launched app.

    python -m benchmarks.verify --model tiny-sdxl --rounds 3

Each round renders a grid at the defaults (seeds 0-3), pins seed 1 and presses Verify; then, on
a fresh page, compares seed 1 across Compare's default schedulers (each at its own steps),
pins the last tile and presses Verify again.
Each time is from the click to the answer on the page (the captions, or "Bit-exact"), so it
includes Gradio's queue and the browser. Prints each time's median and Verify / render.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from benchmarks.server import launched

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 180_000
PROMPT = "a lighthouse on a cliff at dusk"


def _timed(action: Callable[[], None], answer: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    answer()
    return time.perf_counter() - started


def _tile(page: Page, gallery: str, caption: re.Pattern[str]) -> None:
    label = page.locator(".caption-label").filter(has_text=caption)
    page.locator(f"#{gallery} .grid-container button.thumbnail-item").filter(has=label).click()
    page.locator(f"#{gallery}").get_by_role("button", name="Close", exact=True).click()


def _verify(page: Page) -> float:
    page.locator("#reproduce").get_by_text("Reproduce").click()
    status = page.locator("#verify-status")
    return _timed(
        lambda: page.locator("#verify-run").click(),
        lambda: expect(status).to_contain_text("Bit-exact", timeout=TIMEOUT_MS),
    )


def one_round(new_page: Callable[[], Page]) -> dict[str, float]:
    """The four waits of one round, each render and its Verify on a fresh page (a new
    session, an empty verdict)."""
    page = new_page()
    page.locator("#prompt textarea").fill(PROMPT)
    captions = page.locator("#grid-gallery .grid-container .caption-label")
    grid = _timed(
        lambda: page.locator("#grid-run").click(),
        lambda: expect(captions).to_have_count(4, timeout=TIMEOUT_MS),
    )
    _tile(page, "grid-gallery", re.compile(r"^seed 1$"))
    verify_grid = _verify(page)
    page = new_page()
    page.locator("#prompt textarea").fill(PROMPT)
    page.locator("#pinned-seed textarea").fill("1")  # typing a seed pins it
    page.get_by_role("tab", name="Compare", exact=True).click()
    compared = page.locator("#compare-gallery .grid-container .caption-label")
    compare = _timed(
        lambda: page.locator("#compare-run").click(),
        lambda: expect(compared.first).to_be_visible(timeout=TIMEOUT_MS),
    )
    _tile(page, "compare-gallery", re.compile(re.escape(compared.last.inner_text())))
    verify_compare = _verify(page)
    return {
        "grid": grid,
        "verify grid tile": verify_grid,
        "compare": compare,
        "verify compare tile": verify_compare,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sdxl")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {}
    with launched("cpu", ("--model", args.model)) as app, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        contexts = []

        def new_page() -> Page:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            contexts.append(context)
            page = context.new_page()
            page.goto(app.url)
            expect(page.locator("#grid-run")).to_be_visible(timeout=60_000)
            return page

        for _ in range(args.rounds):
            for name, seconds in one_round(new_page).items():
                times.setdefault(name, []).append(seconds)
            while contexts:
                contexts.pop().close()
        browser.close()
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"model {args.model}, {args.rounds} rounds, medians (click to answer, seconds)")
    for name, value in median.items():
        print(f"  {name:<20} {value:6.2f}")
    print(f"  verify / grid        {median['verify grid tile'] / median['grid']:6.2f}")
    print(f"  verify / compare     {median['verify compare tile'] / median['compare']:6.2f}")


if __name__ == "__main__":
    main()
