"""Shared importer plumbing: write a data directory, validate it with the loader, then move it into place."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from engine.core.files import merge_staged, new_stage
from engine.data.tables import TABLES, load_dataset, write_dataset
from engine.core.errors import DataError


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise a DataError saying what was expected there."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    return path


def write_validated(
    out: str | Path,
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    users: pd.DataFrame | None = None,
    *,
    images: Mapping[str, Path | bytes] | None = None,
    fmt: str = "csv",
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Write a data directory, load it back with ``load_dataset`` and only then move it into ``out``.

    Validating a staged copy means a failed import never replaces a working data directory.

    Args:
        out: the data directory to create or refresh.
        items: catalogue table.
        interactions: interactions table.
        users: optional users table.
        images: relative path inside ``out`` -> source file or raw bytes.
        fmt: ``csv`` or ``parquet``.
        extra_files: relative path -> text, for a README.md describing the source.

    Returns:
        ``out`` as a Path.

    Raises:
        DataError: when the written directory does not load; the message names ``out``.
    """
    out = Path(out)
    holder = new_stage(out, "import")
    try:
        staged = write_dataset(
            holder / "data", items, interactions, users, images=images, fmt=fmt, extra_files=extra_files
        )
        try:
            load_dataset(staged)
        except DataError as exc:
            # Name the real destination, not the throw-away staging folder.
            raise DataError(str(exc).replace(str(staged), str(out))) from exc
        # A table left from an earlier import (either format) must not shadow or outlive the new one;
        # other files in out (models/, images/) are kept, as merge_staged does.
        for name in TABLES:
            for suffix in ("csv", "parquet"):
                old = out / f"{name}.{suffix}"
                if old.exists() and not (staged / old.name).exists():
                    old.unlink()
        merge_staged(staged, out)
    finally:
        shutil.rmtree(holder, ignore_errors=True)
    return out
