"""Helpers of the real-browser test and benchmark: a `streamlit run` server and Debian's chromium via Playwright."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "streamlit_app.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CARD_IMAGES_LOADED = """() => Array.from(document.querySelectorAll('.hp-card img'))
    .filter(img => img.complete && img.naturalWidth > 0).length"""


# Resolves once the storefront's settings stamp differs from ``before`` and at least ``min`` card
# pictures have decoded: watched with a MutationObserver and picture load events, not by polling, so
# that twenty waiting pages cost the browser nothing between redraws.
REDRAWN = """([before, min, timeoutMs]) => new Promise((resolve, reject) => {
    const ready = () => {
        const p = document.querySelector('.hp-page');
        if (!p || p.dataset.settings === before) return false;
        return Array.from(document.querySelectorAll('.hp-card img')).filter(i => i.complete && i.naturalWidth > 0).length >= min;
    };
    if (ready()) return resolve(true);
    const done = () => { if (ready()) { observer.disconnect(); document.removeEventListener('load', done, true); clearTimeout(timer); resolve(true); } };
    const observer = new MutationObserver(done);
    observer.observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-settings', 'src']});
    document.addEventListener('load', done, true);
    const timer = setTimeout(() => { observer.disconnect(); document.removeEventListener('load', done, true); reject(new Error('no redraw')); }, timeoutMs);
})"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(data_dir: Path, log: Path, timeout: float = 90, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``streamlit run`` on a free 127.0.0.1 port with HOMEPAGE_DATA=data_dir; yield its URL."""
    port = free_port()
    env = {**os.environ, "HOMEPAGE_DATA": str(data_dir), "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"streamlit did not answer within {timeout} s; see {log}")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def launch(playwright):
    """Debian's chromium, headless, with the flags this project uses everywhere."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def wait_for_homepage(page, min_images: int = 12, timeout_ms: int = 180_000) -> int:
    """Wait until the storefront shows at least ``min_images`` loaded product pictures; return how many."""
    page.wait_for_function(f"() => ({CARD_IMAGES_LOADED})() >= {min_images}", timeout=timeout_ms)
    return page.evaluate(CARD_IMAGES_LOADED)


def page_signature(page) -> str:
    """What the page shows now: its settings stamp and the order of the cards."""
    return page.evaluate("""() => {
        const p = document.querySelector('.hp-page');
        const items = Array.from(document.querySelectorAll('.hp-card')).map(c => c.dataset.item).join(',');
        return (p ? p.dataset.settings : '') + '|' + items;
    }""")


def settings_stamp(page) -> str:
    return page.evaluate("() => { const p = document.querySelector('.hp-page'); return p ? p.dataset.settings : ''; }")


def errors_on(page) -> list[str]:
    """Exceptions and error messages Streamlit shows."""
    return page.evaluate("""() => Array.from(document.querySelectorAll("[data-testid='stException'], [data-testid='stAlertContentError']"))
        .map(e => e.innerText.slice(0, 300))""")
