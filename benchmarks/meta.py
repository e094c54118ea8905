"""Run metadata every benchmark JSON carries: the command line, the UTC start and end, and the machine."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command_line() -> str:
    """The command line that started this process, as typed (interpreter, script and arguments)."""
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    return shlex.join(argv)


def utc_now() -> str:
    """The current UTC time in ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_1min() -> float | None:
    """The 1-minute load average, None where the system does not report one."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _proc_field(path: str, field: str) -> str | None:
    """The value of the first ``field: value`` line in a /proc file, None when absent or unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, sep, value = line.partition(":")
                if sep and key.strip() == field:
                    return value.strip()
    except OSError:
        return None
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    """CPU count and model, memory, Python and torch versions, and the 1-minute load average now."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    memory_gib = round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb and mem_kb.split()[0].isdigit() else None
    return {
        "host": platform.node(),
        "cpus": cpus,
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or None,
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "load_1min_start": load_1min(),
    }


def run_started(benchmark: str) -> dict:
    """The metadata of a run that starts now; pass it to :func:`run_finished` when the run is done.

    Args:
        benchmark: The script's name ("baselines", "ranker", "layouts", "dashboard").

    Returns:
        ``{"benchmark", "command", "date", "machine"}``, ``date`` the UTC start time.
    """
    return {"benchmark": benchmark, "command": command_line(), "date": utc_now(), "machine": machine()}


def run_finished(started: dict) -> dict:
    """``started`` completed with the end time (``finished``) and the load average at the end.

    Args:
        started: What :func:`run_started` returned.

    Returns:
        A new dict; ``started`` is left as it was, so one start can close several runs.
    """
    return {**started, "finished": utc_now(), "machine": {**started["machine"], "load_1min_end": load_1min()}}
