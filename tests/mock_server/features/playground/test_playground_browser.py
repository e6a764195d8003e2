"""The playground page in a real browser: Playwright driving Debian's Chromium.

One browser and one server (the real synthetic engine, so the clips are real
MP4s) for the module; each test gets a fresh page and a reset server. Every wait
is on a page condition (Playwright's ``expect``), never on a fixed sleep. The
page's Content-Security-Policy forbids ``eval``, so conditions are read through
``expect`` and ``to_have_js_property``, which do not need it.

Screenshots go to a temporary folder (printed with ``-rP``); set
``WAVESPEED_MOCK_SCREENSHOTS=<folder>`` to keep them (the README's picture,
``docs/playground.png``, is made so).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image
from wavespeed_mock.contracts import builtin_catalogue
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("WAVESPEED_MOCK_CHROMIUM") or shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The tests start playback from a script, with no click to allow it.
    "--autoplay-policy=no-user-gesture-required",
]
# Bounds for a busy 2-core machine: a render takes seconds there, not minutes.
RENDER_TIMEOUT_MS = 90_000
UI_TIMEOUT_MS = 20_000
CLIP_DURATION_S = 5.04  # 121 frames at 24 fps (the registry's output), audio padded


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip(
            "no Chromium: install it with `apt-get install -y chromium` "
            "(or point WAVESPEED_MOCK_CHROMIUM at one)"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install -e '.[test]' installs playwright"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("playground")
    settings = Settings(
        data_dir=data / "data", port=0, profile="fast", check_responses=True
    )
    with LiveServer(settings) as server:
        yield server
        assert server.service.contract_violations == []


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("WAVESPEED_MOCK_SCREENSHOTS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Path(kept)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser: Browser, live: LiveServer) -> Iterator[Page]:
    live.mock.reset()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(message: Any) -> None:
        # A refused request (the 400 a test asks for) is logged by the browser
        # itself; the page shows those. Anything else is the page's own error.
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)

    tab.on("console", on_console)
    tab.set_default_timeout(UI_TIMEOUT_MS)
    tab.goto(live.url + "/")
    yield tab
    context.close()
    assert errors == [], "the page logged errors"


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "lighthouse.png"
    size = (320, 240)
    ramp = Image.linear_gradient("L").resize(size)
    Image.merge("RGB", (ramp, ramp.rotate(90), Image.new("L", size, 170))).save(path)
    return path


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=UI_TIMEOUT_MS)
    return playwright_expect


def test_the_form_is_made_from_the_models_schema(page: Page) -> None:
    check = expect()
    check(page.locator("#model option")).to_have_count(len(builtin_catalogue()))
    # The first model a prompt alone can run is chosen (no file to pick first).
    check(page.locator("#model")).to_have_value("character-ai/ovi/text-to-video")
    page.select_option("#model", "character-ai/ovi/image-to-video")
    # Required fields marked, bounds and the default seed from the contract.
    check(page.locator('[data-field="image"] .req')).to_have_count(1)
    check(page.locator('[data-field="prompt"] .req')).to_have_count(1)
    check(page.locator('[data-field="seed"] .req')).to_have_count(0)
    seed = page.locator("#field-seed")
    check(seed).to_have_value("-1")
    check(seed).to_have_attribute("min", "-1")
    check(seed).to_have_attribute("max", "2147483647")
    # The live catalogue's hints: an uploader for the image, the API-only
    # switches (disabled) not offered.
    check(page.locator("#field-image-file")).to_have_attribute("accept", "image/*")
    check(page.locator("#field-enable_sync_mode")).to_have_count(0)
    # The text-to-video model has no image and a size with its enum and default.
    page.select_option("#model", "character-ai/ovi/text-to-video")
    check(page.locator("#field-image")).to_have_count(0)
    check(page.locator("#field-size")).to_have_value("960*540")
    check(page.locator("#field-size option")).to_have_text(
        ["(not sent)", "960*540", "540*960"]
    )


def test_submit_an_image_with_a_file_and_play_the_clip(
    page: Page, image_file: Path, screenshots: Path
) -> None:
    check = expect()
    page.select_option("#model", "character-ai/ovi/image-to-video")
    page.set_input_files("#field-image-file", str(image_file))
    check(page.locator("#field-image")).to_have_value(
        re.compile(r"/uploads/\w+/lighthouse\.png$")
    )
    prompt = page.locator("#field-prompt")
    prompt.fill("A lighthouse at dusk. ")
    page.get_by_role("button", name="<S>…<E>").click()
    prompt.press_sequentially("Keep the light on.")  # the caret sits inside the tag
    prompt.press("End")
    page.get_by_role("button", name="<AUDCAP>…<ENDAUDCAP>").click()
    prompt.press_sequentially("Waves and gulls.")
    check(prompt).to_have_value(
        "A lighthouse at dusk. <S>Keep the light on.<E><AUDCAP>Waves and gulls.<ENDAUDCAP>"
    )
    # The same request, as curl and as an SDK call, beside the form.
    check(page.locator("#curl-code")).to_contain_text('"seed":-1')
    check(page.locator("#curl-code")).to_contain_text("/uploads/")
    check(page.locator("#sdk-code")).to_contain_text("client.run(")

    page.click("#submit-button")
    row = page.locator("#task-rows tr").first
    check(row).to_have_attribute("data-status", "completed", timeout=RENDER_TIMEOUT_MS)
    check(row).to_contain_text("created")
    check(page.locator("#play-status")).to_have_text("completed", timeout=UI_TIMEOUT_MS)

    video = page.locator("#video")
    check(video).to_have_js_property("readyState", 4, timeout=RENDER_TIMEOUT_MS)
    duration = video.evaluate("v => v.duration")
    assert duration == pytest.approx(CLIP_DURATION_S, abs=0.05)
    assert video.evaluate("v => v.videoWidth") > 0
    check(page.locator('[data-fact="duration"]')).to_have_text("5.04 s")
    check(page.locator('[data-fact="bytes"]')).to_have_text(re.compile(r"^\d[\d,]+$"))
    check(page.locator('[data-fact="seed"]')).to_have_text(re.compile(r"^\d+$"))
    # where and when it rendered, from GET /_mock/predictions
    check(page.locator('[data-fact="ran on"]')).to_have_text("this process")
    check(page.locator('[data-fact="attempts"]')).to_have_text("1")
    check(page.locator('[data-fact="render"]')).to_have_text(
        re.compile(r"^\d+ ms, queued \d+ ms$")
    )
    check(page.locator("#download")).to_have_attribute(
        "href", re.compile(r"/outputs/\w+\.mp4$")
    )

    # It plays, with its sound: time advances to the end.
    assert video.evaluate("v => v.muted") is False
    video.evaluate("v => { v.playbackRate = 2; return v.play(); }")
    check(video).to_have_js_property("ended", True, timeout=RENDER_TIMEOUT_MS)
    assert video.evaluate("v => v.currentTime") == pytest.approx(duration, abs=0.1)
    check(page.locator('[data-fact="fps"]')).to_have_text(
        re.compile(r"^24\.0 \(121 frames\)$")
    )
    page.screenshot(path=str(screenshots / "playground.png"), full_page=True)


def test_a_400_is_shown_at_the_field_it_names(page: Page, screenshots: Path) -> None:
    check = expect()
    page.select_option("#model", "character-ai/ovi/text-to-video")
    page.fill("#field-prompt", "A quiet street.")
    page.fill("#field-seed", "-2")
    page.click("#submit-button")
    error = page.locator('[data-error-for="$.seed"]')
    check(error).to_contain_text("$.seed: -2 is less than the minimum of -1")
    check(page.locator("#field-seed")).to_have_attribute("aria-invalid", "true")
    check(page.locator('[data-error-for="$.prompt"]')).to_be_hidden()
    check(page.locator("#submit-status")).to_have_text("HTTP 400")
    page.screenshot(path=str(screenshots / "playground-400.png"), full_page=True)
    # Fixed, it goes through and the error goes away.
    page.get_by_role("button", name="random (-1)").click()
    page.click("#submit-button")
    check(page.locator("#submit-status")).to_contain_text("accepted")
    check(error).to_be_hidden()


def test_a_scenario_set_from_the_page_fails_the_next_task(page: Page) -> None:
    check = expect()
    page.select_option("#model", "character-ai/ovi/text-to-video")
    page.fill("#field-prompt", "A storm.")
    page.click("#submit-button")
    check(page.locator("#play-status")).to_have_text(
        "completed", timeout=RENDER_TIMEOUT_MS
    )
    check(page.locator("#video")).to_be_visible()

    page.get_by_role("tab", name="Scenarios").click()
    page.select_option("#scenario-preset", label="fail the next task with 1402")
    page.get_by_role("button", name="Add").click()
    listing = page.locator("#scenario-list")
    check(listing).to_contain_text('"fail_code": 1402')

    page.click("#submit-button")
    check(page.locator("#play-status")).to_have_text(
        "failed", timeout=RENDER_TIMEOUT_MS
    )
    check(page.locator("#play-error")).to_have_attribute("data-code", "1402")
    check(page.locator("#play-error")).to_contain_text("code 1402")
    check(page.locator("#task-rows tr").first).to_have_attribute(
        "data-status", "failed"
    )
    # The previous task's clip and link are gone: a failed task has none.
    check(page.locator("#video")).to_be_hidden()
    check(page.locator("#download")).to_be_hidden()

    page.get_by_role("button", name="Remove all").click()
    check(listing).not_to_contain_text("1402")
    # A bad scenario is answered at its field.
    page.fill("#scenario-json", '{"fail_code": -1}')
    page.get_by_role("button", name="Add").click()
    check(page.locator('[data-error-for="scenario"]')).to_contain_text("$.fail_code")


def test_a_webhook_to_the_pages_inbox_is_shown_with_its_verdict(page: Page) -> None:
    check = expect()
    page.select_option("#model", "character-ai/ovi/text-to-video")
    page.fill("#field-prompt", "A bell rings.")
    page.check("#use-inbox")
    check(page.locator("#curl-code")).to_contain_text("?webhook=")
    page.click("#submit-button")
    check(page.locator("#play-status")).to_have_text(
        "completed", timeout=RENDER_TIMEOUT_MS
    )
    page.get_by_role("tab", name="Webhooks").click()
    check(page.locator('#inbox-rows [data-verdict="valid"]')).to_have_count(
        1, timeout=RENDER_TIMEOUT_MS
    )
    check(page.locator("#attempt-rows tr")).to_have_count(1)
    check(page.locator("#attempt-rows tr")).to_contain_text("204")


def test_the_tasks_filter_by_status_and_key(page: Page, live: LiveServer) -> None:
    import httpx

    check = expect()
    page.select_option("#model", "character-ai/ovi/text-to-video")
    page.fill("#field-prompt", "Mine.")
    page.click("#submit-button")
    rows = page.locator("#task-rows tr")
    check(rows).to_have_count(1)
    # Another key's task, failed by a scenario for that key, joins the list.
    httpx.post(
        f"{live.url}/_mock/scenarios",
        json={"scope": "key", "api_key": "another-key", "fail_code": 1403},
    ).raise_for_status()
    httpx.post(
        f"{live.url}/api/v3/character-ai/ovi/text-to-video",
        json={"prompt": "Someone else's."},
        headers={"Authorization": "Bearer another-key"},
    ).raise_for_status()
    check(rows).to_have_count(2)
    check(page.locator('#task-rows tr[data-status="failed"]')).to_have_count(1)
    check(page.locator('#task-rows tr[data-status="completed"]')).to_have_count(
        1, timeout=RENDER_TIMEOUT_MS
    )
    page.select_option("#filter-status", "failed")
    check(rows).to_have_count(1)
    check(rows.first).to_have_attribute("data-status", "failed")
    page.select_option("#filter-status", "completed")
    check(rows).to_have_count(1)
    page.select_option("#filter-status", "")
    check(rows).to_have_count(2)
    page.select_option("#filter-key", "mine")
    check(rows).to_have_count(1)
    check(rows.first).to_have_attribute("data-status", "completed")


def test_the_clock_and_the_key_from_the_page(page: Page) -> None:
    check = expect()
    page.get_by_role("tab", name="Timing and clock").click()
    check(page.locator("#clock-kind")).to_have_text("real")
    page.click("#clock-freeze")
    check(page.locator("#clock-kind")).to_have_text("virtual (frozen)")
    before = page.locator("#clock-now").inner_text()
    page.fill("#clock-advance", "3600")
    page.get_by_role("button", name="Advance").click()
    check(page.locator("#clock-now")).not_to_have_text(before)
    page.click("#clock-real")
    check(page.locator("#clock-kind")).to_have_text("real")
    # The API key is kept in the browser.
    page.fill("#api-key", "kept-key")
    page.reload()
    check(page.locator("#api-key")).to_have_value("kept-key")
    check(page.locator("#curl-code")).to_contain_text("Bearer kept-key")


def test_a_narrow_window_has_no_sideways_scroll(page: Page, screenshots: Path) -> None:
    check = expect()
    page.set_viewport_size({"width": 390, "height": 800})
    check(page.locator("#field-prompt")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390
    page.screenshot(path=str(screenshots / "playground-narrow.png"), full_page=True)


def test_a_custom_output_set_from_the_page_is_what_a_task_returns(
    page: Page, live: LiveServer, image_file: Path
) -> None:
    check = expect()
    model = "bytedance/seedream-v4.5"  # a text-to-image model
    page.get_by_role("tab", name="Custom outputs").click()
    page.select_option("#outputs-model", model)
    page.set_input_files("#outputs-file", str(image_file))
    page.fill("#outputs-times", "1")
    page.get_by_role("button", name="Set").click()
    listing = page.locator("#outputs-list")
    size = image_file.stat().st_size
    check(listing).to_contain_text(f'"bytes": {size}')
    check(listing).to_contain_text('"times_left": 1')

    import httpx

    with httpx.Client(
        base_url=live.url, headers={"Authorization": "Bearer test-key"}
    ) as client:
        task = client.post(f"/api/v3/{model}", json={"prompt": "a lighthouse"})
        url = task.json()["data"]["urls"]["get"]
        for _ in range(600):  # a bound for a busy machine, not a timing
            view = client.get(url).json()["data"]
            if view["status"] == "completed":
                break
            page.wait_for_timeout(50)
        assert view["status"] == "completed"
        assert client.get(view["outputs"][0]).content == image_file.read_bytes()

    page.get_by_role("tab", name="Custom outputs").click()  # read the list again
    check(listing).not_to_contain_text(model)  # served its one task
    # Neither a file nor a URL: the form says so at its error slot.
    page.set_input_files("#outputs-file", [])
    page.get_by_role("button", name="Set").click()
    check(page.locator('[data-error-for="outputs"]')).to_contain_text("Pick a file")
