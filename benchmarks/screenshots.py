"""Take the README's screenshots (assets/homepage.png, assets/compare.png) of the dashboard on the demo store.

Usage: .venv/bin/python benchmarks/screenshots.py [--data data/demo]

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--home-query", default="diversity=0.50&long_tail=0.50")
    parser.add_argument("--compare-query", default="b_diversity=0.50&b_long_tail=0.30")
    args = parser.parse_args()
    env = model_env(args.data.resolve())
    if env is None:
        print(f"{args.data}: no trained model", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    ASSETS.mkdir(exist_ok=True)
    with streamlit_server(args.data.resolve(), ROOT / "benchmarks" / "out" / "screenshots.log", timeout=120, env=env) as url, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1440, "height": 1450}, device_scale_factor=1)
        page.goto(f"{url}/?{args.home_query}")
        wait_for_homepage(page, 24, timeout_ms=600_000)
        page.wait_for_function("() => document.querySelectorAll('[data-testid=stMetric]').length >= 7", timeout=120_000)
        page.wait_for_timeout(1500)
        page.locator(".hp-card").nth(1).hover()  # one card shows why it is there
        page.wait_for_timeout(500)
        page.screenshot(path=str(ASSETS / "homepage.png"))
        assert not errors_on(page), errors_on(page)

        page.set_viewport_size({"width": 1440, "height": 2000})
        page.goto(f"{url}/compare?{args.compare_query}")
        page.wait_for_function("() => document.querySelectorAll('.hp-page').length == 2", timeout=600_000)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=120_000)
        page.wait_for_timeout(2500)
        page.screenshot(path=str(ASSETS / "compare.png"))
        assert not errors_on(page), errors_on(page)
        browser.close()
    print(f"wrote {ASSETS / 'homepage.png'} and {ASSETS / 'compare.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
