"""Stopping `homepage app` (SIGTERM, as a service manager does, or Ctrl-C's SIGINT) stops the
Streamlit server it started: the port is free again and no server process is left."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_util import free_port

ROOT = Path(__file__).resolve().parents[2]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _servers_on(port: int) -> list[int]:
    """Pids of processes whose command line runs streamlit on this port."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(cmdline) and str(port).encode() in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_homepage_app_stops_its_server(tiny_dir: Path, tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    command = [sys.executable, "-c", "import sys; from engine.cli import main; sys.exit(main())",
               "app", str(tiny_dir), "--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType", "none"]
    with open(tmp_path / "app.log", "w") as log:
        parent = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while not _answers(port):
                assert parent.poll() is None, (tmp_path / "app.log").read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
            assert _servers_on(port), "the server runs as a child of homepage app"
            parent.send_signal(sig)
            assert parent.wait(timeout=30) == 0
            deadline = time.monotonic() + 15
            while (_listening(port) or _servers_on(port)) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _listening(port) and not _servers_on(port), "the server outlived homepage app"
        finally:
            if parent.poll() is None:
                parent.kill()
            for pid in _servers_on(port):
                subprocess.run(["kill", "-9", str(pid)], check=False)
