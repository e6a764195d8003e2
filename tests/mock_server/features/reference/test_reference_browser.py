"""/docs in Chromium at 1280 and 390 pixels wide: nothing overprints, nothing
runs off the side, and it links the playground (screenshots saved)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("WAVESPEED_MOCK_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("no Chromium: install it with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("docs")
    with LiveServer(Settings(data_dir=data, port=0, check_responses=True)) as server:
        yield server


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("WAVESPEED_MOCK_SCREENSHOTS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Path(kept)
    return tmp_path_factory.mktemp("screenshots")


OVERLAPS = """() => {
  const boxes = [...document.querySelectorAll('nav li > a')].map(a => a.getBoundingClientRect())
    .filter(b => b.width > 0);
  let count = 0;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) count++;
  }
  return count;
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_docs_reads_at_desktop_and_phone_widths(
    browser: Browser, live: LiveServer, screenshots: Path, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[Any] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live.url + "/docs")
    # Nothing wider than the screen: the page does not scroll sideways.
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"{overflow}px wider than the {width}px screen"
    assert page.evaluate(OVERLAPS) == 0  # no contents entry overprints another
    assert page.locator('a[href="/"]').count() >= 1  # to the playground
    assert page.locator("section.op code").first.is_visible()  # Markdown rendered
    page.screenshot(path=str(screenshots / f"docs-{width}.png"))
    context.close()
    assert errors == []
