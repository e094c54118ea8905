"""The dashboard in a real browser: `streamlit run` driven by Playwright through Debian's chromium."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from browser_util import CHROMIUM, errors_on, launch, page_signature, settings_stamp, streamlit_server, wait_for_homepage

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SLIDER = ".st-key-home_diversity input[type='range']"  # the slider thumb's keyboard input


@pytest.fixture(scope="module")
def server(trained_demo: Path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with streamlit_server(trained_demo, ARTIFACTS / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def _wait_for_change(page, before: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = settings_stamp(page)
        if now and now != before:
            return now
        time.sleep(0.1)
    raise AssertionError(f"the page did not redraw within {timeout} s (still {before!r})")


def test_homepage_shows_photos_and_redraws_on_the_slider(server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    page.goto(server)
    loaded = wait_for_homepage(page, 12)
    assert loaded >= 12
    assert not errors_on(page)
    before_stamp, before = settings_stamp(page), page_signature(page)
    thumb = page.locator(SLIDER)
    thumb.focus()
    for _ in range(6):
        thumb.press("ArrowRight")
    after_stamp = _wait_for_change(page, before_stamp)
    assert after_stamp != before_stamp
    page.wait_for_timeout(300)
    assert page_signature(page) != before, "moving the diversity slider changed nothing on the page"
    assert not errors_on(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "homepage.png"), full_page=True)
    page.close()


def test_five_sessions_keep_their_own_settings(server: str, browser) -> None:
    settings = [0.0, 0.2, 0.4, 0.6, 0.8]
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in settings]
    try:
        pages = [c.new_page() for c in contexts]
        for page, value in zip(pages, settings):  # all five load at once
            page.goto(f"{server}/?diversity={value:.2f}", wait_until="commit")
        for page, value in zip(pages, settings):
            wait_for_homepage(page, 12)
            page.wait_for_function(f"() => (document.querySelector('.hp-page')?.dataset.settings || '').includes('diversity={value:.2f}')",
                                   timeout=120_000)
        # One session moves its slider; the others keep what they had.
        before = settings_stamp(pages[0])
        thumb = pages[0].locator(SLIDER)
        thumb.focus()
        thumb.press("ArrowRight")
        _wait_for_change(pages[0], before)
        for page, value in zip(pages, settings):
            stamp = settings_stamp(page)
            if page is pages[0]:
                assert "diversity=0.00" not in stamp
            else:
                assert f"diversity={value:.2f}" in stamp, stamp
            if page is not pages[0]:
                assert float(page.locator(SLIDER).input_value()) == pytest.approx(value)
            assert not errors_on(page), errors_on(page)
    finally:
        for c in contexts:
            c.close()


def test_compare_axis_picker_redraws_only_the_frontier(server: str, browser) -> None:
    received: list[int] = []
    page = browser.new_page(viewport={"width": 1440, "height": 1600})
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(len(payload))))
    page.goto(f"{server}/compare")
    page.wait_for_function("() => document.querySelectorAll('.hp-page').length == 2", timeout=180_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=60_000)
    page.wait_for_timeout(1500)
    pages_size = page.evaluate("() => Array.from(document.querySelectorAll('.hp-page')).reduce((n, p) => n + p.outerHTML.length, 0)")
    received.clear()
    page.locator(".st-key-cmp_x").click()
    page.get_by_role("option", name="Novelty@10").click()
    page.wait_for_function("() => document.querySelector('.js-plotly-plot .xtitle')?.textContent === 'Novelty@10'", timeout=60_000)
    page.wait_for_timeout(1500)
    # A fragment rerun sends the frontier panel only; a full rerun would send both storefronts again.
    assert 0 < sum(received) < pages_size / 2, (sum(received), pages_size)
    assert "x=novelty%4010" in page.url or "x=novelty@10" in page.url
    assert not errors_on(page), errors_on(page)
    page.close()


def test_segments_and_model_pages_render_without_errors(server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1400})
    page.goto(f"{server}/segments")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=180_000)
    assert not errors_on(page), errors_on(page)
    page.goto(f"{server}/model")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=180_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stMetric]').length >= 10", timeout=60_000)
    assert not errors_on(page), errors_on(page)
    page.close()


def test_the_login_refuses_without_the_password_and_lets_in_with_it(trained_demo: Path, browser) -> None:
    from engine.core.access import hash_password

    env = {"HOMEPAGE_PASSWORD_HASH": hash_password("letmein-42", iterations=1000)}
    with streamlit_server(trained_demo, ARTIFACTS / "streamlit-login.log", env=env) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        password = page.locator("input[type='password']")
        password.wait_for(timeout=60_000)
        assert page.locator(".hp-card").count() == 0  # nothing of the shop before the login
        password.fill("wrong guess")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("Wrong password.").wait_for(timeout=30_000)
        assert page.locator(".hp-card").count() == 0
        page.locator("input[type='password']").fill("letmein-42")
        page.get_by_role("button", name="Log in").click()
        assert wait_for_homepage(page, 12) >= 12
        assert not errors_on(page)
        # Another browser (no session) is refused again.
        other = browser.new_context().new_page()
        other.goto(url)
        other.locator("input[type='password']").wait_for(timeout=60_000)
        assert other.locator(".hp-card").count() == 0
        page.close()
        other.close()
