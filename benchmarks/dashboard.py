"""Benchmark of the dashboard in a real browser: how long a diversity-slider move takes to redraw the homepage.

Usage: .venv/bin/python benchmarks/dashboard.py [--data data/demo] [--moves 10] [--no-hm]

For each data set (the demo store, and the H&M stores under benchmarks/out/data/hm and hm_week
when a model for them exists) it
starts `streamlit run` on a free 127.0.0.1 port, opens the homepage in Debian's chromium through
Playwright, waits for the first full page, then presses the right arrow on the diversity slider
`--moves` times. One move's time runs from the key press until the page's settings stamp shows the
new value and every product picture on the page has decoded. It prints the median (the issue's
bar: under 300 ms) with min and max, and writes benchmarks/out/dashboard.json (the run's command, date and machine, and
one entry per data set under ``runs``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from browser_util import CARD_IMAGES_LOADED, launch, settings_stamp, streamlit_server, wait_for_homepage  # noqa: E402
from meta import run_finished, run_started  # noqa: E402

from engine.core.jsonio import write_json  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
SLIDER = ".st-key-home_diversity input[type='range']"


def model_env(data_dir: Path) -> dict[str, str] | None:
    """None when no model for the data set; else the environment that lets the app find one.

    Models under DIR/models and at <X>/models/<name> for data at <X>/data/<name> are found by the
    app itself; benchmarks/out/models/<name> (where benchmarks/ranker.py saves) is passed in
    HOMEPAGE_MODELS.
    """
    sibling = data_dir.parent.parent / "models" / data_dir.name
    if any((data_dir / "models").glob("*/manifest.json")) or (sibling / "manifest.json").is_file():
        return {}
    bench = OUT / "models" / data_dir.name
    if (bench / "manifest.json").is_file():
        return {"HOMEPAGE_MODELS": str(bench)}
    return None


def measure(data_dir: Path, moves: int, env: dict[str, str]) -> dict:
    """Slider-move redraw times (ms) for one data set."""
    from playwright.sync_api import sync_playwright

    with streamlit_server(data_dir, OUT / f"dashboard-{data_dir.name}.log", timeout=120, env=env) as url, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        start = time.perf_counter()
        page.goto(url)
        n_images = wait_for_homepage(page, 12, timeout_ms=600_000)
        first_load = time.perf_counter() - start
        thumb = page.locator(SLIDER)
        thumb.focus()
        times = []
        for _ in range(moves):
            before = settings_stamp(page)
            t0 = time.perf_counter()
            thumb.press("ArrowRight")
            page.wait_for_function(
                f"""(before) => {{
                    const p = document.querySelector('.hp-page');
                    if (!p || p.dataset.settings === before) return false;
                    const imgs = Array.from(document.querySelectorAll('.hp-card img'));
                    return imgs.length > 0 && imgs.every(i => i.complete) && ({CARD_IMAGES_LOADED})() >= 12;
                }}""",
                arg=before, polling="raf", timeout=60_000,
            )
            times.append((time.perf_counter() - t0) * 1e3)
            page.wait_for_timeout(150)  # let Streamlit settle before the next move
        engine_ms = page.evaluate("() => Array.from(document.querySelectorAll('[data-testid=stCaptionContainer]')).map(e => e.innerText).find(t => t.includes('re-ranked')) || ''")
        browser.close()
    return {
        "data": data_dir.name, "moves": moves, "first_load_s": round(first_load, 2), "images": n_images,
        "median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1), "max_ms": round(max(times), 1),
        "times_ms": [round(t, 1) for t in times], "engine": engine_ms,
    }


def markdown_table(runs: list[dict]) -> str:
    """The markdown table of the redraw times, one row per data set (the ``runs`` of dashboard.json)."""
    lines = ["| data | median redraw | range | slider moves | first load | product images on the page |", "|---|---|---|---|---|---|"]
    for res in runs:
        lines.append(f"| {res['data']} | {res['median_ms']:.0f} ms | {res['min_ms']:.0f}–{res['max_ms']:.0f} ms | {res['moves']} | "
                     f"{res['first_load_s']:.1f} s | {res['images']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--no-hm", action="store_true", help="skip the H&M stores even when they are there")
    args = parser.parse_args()
    if not Path("/usr/bin/chromium").exists():
        print("no /usr/bin/chromium: apt-get install chromium (never `playwright install`)", file=sys.stderr)
        return 2
    runs = [args.data.resolve()]
    for name in ("hm", "hm_week"):  # hm_week's model is benchmarks/ranker.py's, two stages where kept
        hm = OUT / "data" / name
        if not args.no_hm and hm.is_dir() and model_env(hm) is not None:
            runs.append(hm.resolve())
    started = run_started("dashboard")
    results = []
    for data_dir in runs:
        env = model_env(data_dir)
        if env is None:
            print(f"{data_dir}: no trained model; run `homepage train {data_dir}` first (skipped)", file=sys.stderr)
            continue
        res = measure(data_dir, args.moves, env)
        results.append(res)
        verdict = "under" if res["median_ms"] < 300 else "OVER"
        print(f"{res['data']}: slider move -> redraw median {res['median_ms']:.0f} ms (min {res['min_ms']:.0f}, max {res['max_ms']:.0f}; "
              f"{verdict} the 300 ms bar), first load {res['first_load_s']:.1f} s, {res['images']} pictures; {res['engine']}")
    OUT.mkdir(parents=True, exist_ok=True)
    write_json({**run_finished(started), "runs": results}, OUT / "dashboard.json")
    print(f"wrote {OUT / 'dashboard.json'}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
