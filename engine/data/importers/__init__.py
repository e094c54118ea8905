"""Importers from public data sets and a shop's own files into the project's data-directory format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.data.importers.beauty import import_beauty
from engine.data.importers.csv_import import import_csv
from engine.data.importers.hm import import_hm
from engine.data.importers.movielens import import_movielens

# Kind name (as on the command line: ``homepage import KIND ...``) -> importer. Every importer
# writes atomically, validates its output with engine.data.tables.load_dataset and returns the directory.
IMPORTERS: dict[str, Callable[..., Path]] = {
    "hm": import_hm,
    "beauty": import_beauty,
    "movielens": import_movielens,
    "csv": import_csv,
}

__all__ = ["IMPORTERS", "import_beauty", "import_csv", "import_hm", "import_movielens"]
