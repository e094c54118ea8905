"""How much memory a step may take, checked before it starts: a step that would not fit says what it
needs and what to do instead, rather than being killed by the kernel half way."""

from __future__ import annotations

import os

from engine.core.errors import DataError

GIB = 1024**3


def available_bytes() -> int:
    """Memory this process can still take: MemAvailable from /proc/meminfo (the kernel's estimate of
    what can be allocated without swapping), else physical memory; capped by a cgroup limit."""
    found = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if found is None:
        found = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit.isdigit():
            found = min(found, int(limit))
    except OSError:
        pass
    return found


def require(what: str, need: float, instead: str, share: float = 0.8) -> None:
    """Refuse a step, before it starts, when ``need`` bytes exceed ``share`` of the available memory.

    Args:
        what: the step ("item_knn's co-occurrence table over 100,000 items").
        need: its estimated peak in bytes.
        instead: what the user can do instead (one sentence).
        share: the part of the available memory a step may take.

    Raises:
        DataError: naming the step, the memory it needs, the memory there is and what to do.
    """
    have = available_bytes()
    if need > share * have:
        raise DataError(f"{what} needs about {need / GIB:.1f} GiB of memory and {have / GIB:.1f} GiB is available: {instead}")
