"""Load benchmark of the dashboard: many browser sessions at once, each moving a slider every few seconds.

Usage: .venv/bin/python benchmarks/load.py [--data data/demo] [--sessions 1,5,20] [--seconds 120]

For each session count it starts `streamlit run` on a free 127.0.0.1 port, opens that many pages in
one Debian chromium (a browser context each, so each is its own Streamlit session), waits until
every page shows its homepage, then lets each page press an arrow key on the diversity slider at
random intervals of 2 to 4 seconds for ``--seconds``. A redraw is timed from the key press until
the page's settings stamp shows the new value and the product pictures on it have decoded (watched
in the page with a MutationObserver, so waiting pages cost the browser nothing). It
reports p50, p95 and max redraw times, the first homepage's time, errors shown on the pages, and the
server's peak memory, and writes benchmarks/out/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from browser_util import CHROMIUM, CHROMIUM_ARGS, REDRAWN, streamlit_server  # noqa: E402
from dashboard import model_env  # noqa: E402  (benchmarks/dashboard.py)
from meta import run_finished, run_started  # noqa: E402

from engine.core.jsonio import write_json  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
SLIDER = ".st-key-home_diversity input[type='range']"
STAMP = "() => { const p = document.querySelector('.hp-page'); return p ? p.dataset.settings : ''; }"
ERRORS = """() => Array.from(document.querySelectorAll("[data-testid='stException'], [data-testid='stAlertContentError']")).length"""


def log(msg: str) -> None:
    print(msg, flush=True)


def server_rss_mb(port: int) -> float:
    """Resident memory (MB) of the processes whose command line runs streamlit on ``port``."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if b"streamlit" not in b" ".join(cmdline) or str(port).encode() not in cmdline:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


class MemoryWatch:
    """Samples the server's memory every half second in a thread; ``peak`` in MB."""

    def __init__(self, port: int):
        self.port, self.peak, self._stop = port, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, server_rss_mb(self.port))
            self._stop.wait(0.5)

    def __enter__(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


async def session(browser, url: str, seconds: float, seed: int, results: dict) -> None:
    """One visitor: open the homepage, then move the slider at random intervals until time is up."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    rng = random.Random(seed)
    try:
        start = time.perf_counter()
        await page.goto(url)
        await page.evaluate(REDRAWN, ["", 12, 300_000])  # any stamp: the first homepage
        results["first"].append(time.perf_counter() - start)
        thumb = page.locator(SLIDER)
        direction = "ArrowRight"
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await asyncio.sleep(rng.uniform(2.0, 4.0))
            before = await page.evaluate(STAMP)
            value = float(await thumb.input_value())
            direction = "ArrowLeft" if value >= 0.95 else "ArrowRight" if value <= 0.05 else direction
            await thumb.focus()
            pressed = time.perf_counter()
            await thumb.press(direction)
            try:
                await page.evaluate(REDRAWN, [before, 12, 60_000])
                results["redraw"].append(time.perf_counter() - pressed)
            except Exception as exc:  # a redraw that never came counts as an error, not a crash of the run
                results["timeouts"].append(f"{type(exc).__name__}")
        results["errors"] += await page.evaluate(ERRORS)
    finally:
        await context.close()


async def run_sessions(url: str, n: int, seconds: float) -> dict:
    from playwright.async_api import async_playwright

    results: dict = {"first": [], "redraw": [], "timeouts": [], "errors": 0}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            await asyncio.gather(*(session(browser, url, seconds, seed, results) for seed in range(n)))
        finally:
            await browser.close()
    return results


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(data_dir: Path, n: int, seconds: float, env: dict[str, str]) -> dict:
    with streamlit_server(data_dir, OUT / f"load-{n}.log", timeout=180, env=env) as url:
        port = int(url.rsplit(":", 1)[1])
        with MemoryWatch(port) as memory:
            results = asyncio.run(run_sessions(url, n, seconds))
    redraw = [t * 1000 for t in results["redraw"]]
    return {
        "sessions": n,
        "seconds": seconds,
        "moves": len(redraw),
        "redraw_ms_p50": round(percentile(redraw, 0.5), 1) if redraw else None,
        "redraw_ms_p95": round(percentile(redraw, 0.95), 1) if redraw else None,
        "redraw_ms_max": round(max(redraw), 1) if redraw else None,
        "redraw_ms_mean": round(statistics.fmean(redraw), 1) if redraw else None,
        "first_page_s_p50": round(percentile(results["first"], 0.5), 2) if results["first"] else None,
        "first_page_s_max": round(max(results["first"]), 2) if results["first"] else None,
        "timeouts": len(results["timeouts"]),
        "errors_on_pages": results["errors"],
        "server_peak_rss_mb": memory.peak,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--sessions", default="1,5,20", help="comma-separated session counts")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long each session moves the slider")
    args = parser.parse_args()
    started = run_started("load")
    env = model_env(args.data)
    if env is None:
        raise SystemExit(f"{args.data}: no trained model (train one, or run benchmarks/ranker.py first)")
    runs = []
    for n in [int(x) for x in args.sessions.split(",") if x.strip()]:
        log(f"[load] {n} session(s) for {args.seconds:.0f} s on {args.data}")
        result = measure(args.data, n, args.seconds, env)
        log(f"  p50 {result['redraw_ms_p50']} ms, p95 {result['redraw_ms_p95']} ms over {result['moves']} moves; "
            f"first page {result['first_page_s_max']} s at most; {result['timeouts']} timeouts, {result['errors_on_pages']} errors; "
            f"server {result['server_peak_rss_mb']} MB")
        runs.append(result)
    out = {**run_finished(started), "data": args.data.name, "runs": runs}
    write_json(out, OUT / "load.json")
    log(f"wrote {OUT / 'load.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
