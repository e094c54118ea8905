"""Take the README's screenshots of the dashboard's four pages (assets/homepage.png, compare.png, segments.png, model.png).

Usage: .venv/bin/python benchmarks/screenshots.py [--data data/demo] [--model NAME] [--loading benchmarks/out/loading.png]

Needs a trained model for the data set (under DIR/models, or benchmarks/out/models/<name>) and
Debian's chromium.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from browser_util import errors_on, launch, streamlit_server, wait_for_homepage  # noqa: E402
from dashboard import model_env  # noqa: E402  (benchmarks/dashboard.py)

ASSETS = ROOT / "assets"


def _shot(page, name: str, whole: bool = False) -> Path:
    """Screenshot into assets/, after checking the page shows no exception or error message.

    ``whole``: grow the window to the page's height first (Streamlit scrolls its main area itself,
    so a full-page screenshot of the document would stop at the window's edge).
    """
    errors = errors_on(page)
    if errors:
        raise AssertionError(f"{name}: the page shows errors: {errors}")
    if whole:
        height = page.evaluate("() => (document.querySelector('[data-testid=stMain]') || document.body).scrollHeight")
        page.set_viewport_size({"width": page.viewport_size["width"], "height": max(900, min(int(height), 4000))})
        page.wait_for_timeout(2000)  # charts redraw at the new size
    path = ASSETS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--home-query", default="diversity=0.50&long_tail=0.50")
    parser.add_argument("--compare-query", default="b_diversity=0.50&b_long_tail=0.30")
    parser.add_argument("--model", help="model name to show (default: the newest model of the data set)")
    parser.add_argument("--loading", type=Path, help="also save a screenshot of the first load's progress here")
    args = parser.parse_args()
    env = model_env(args.data.resolve())
    if env is None:
        print(f"{args.data}: no trained model", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    ASSETS.mkdir(exist_ok=True)
    pick = f"model={args.model}&" if args.model else ""
    written = []
    with streamlit_server(args.data.resolve(), ROOT / "benchmarks" / "out" / "screenshots.log", timeout=120, env=env) as url, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1440, "height": 1450}, device_scale_factor=1)
        page.goto(f"{url}/?{pick}{args.home_query}")
        if args.loading:  # the first load names its steps while they run
            page.get_by_text("Loading the model").first.wait_for(timeout=120_000)
            page.wait_for_timeout(2500)
            args.loading.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.loading))
        wait_for_homepage(page, 24, timeout_ms=600_000)
        page.wait_for_function("() => document.querySelectorAll('.hp-metric').length >= 7", timeout=120_000)
        page.wait_for_timeout(1500)
        page.locator(".hp-card").nth(1).hover()  # one card shows why it is there
        page.wait_for_timeout(500)
        written.append(_shot(page, "homepage"))

        page.set_viewport_size({"width": 1440, "height": 2000})
        page.goto(f"{url}/compare?{pick}{args.compare_query}")
        page.wait_for_function("() => document.querySelectorAll('.hp-page').length == 2", timeout=600_000)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=120_000)
        page.wait_for_timeout(2500)
        written.append(_shot(page, "compare"))

        page.set_viewport_size({"width": 1440, "height": 1400})
        page.goto(f"{url}/segments?{pick}")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=600_000)
        page.wait_for_timeout(2500)
        written.append(_shot(page, "segments", whole=True))

        page.set_viewport_size({"width": 1440, "height": 1400})
        page.goto(f"{url}/model?{pick}")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=600_000)
        page.wait_for_function("() => document.querySelectorAll('[data-testid=stMetric]').length >= 10", timeout=120_000)
        page.wait_for_timeout(2500)
        written.append(_shot(page, "model", whole=True))
        browser.close()
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
