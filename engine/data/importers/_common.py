"""Shared importer plumbing."""

from __future__ import annotations

from pathlib import Path

from engine.core.errors import DataError


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise a DataError saying what was expected there."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    return path
