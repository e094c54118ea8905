"""Import a shop's own items and interactions files, mapping their column names onto the project format."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.tables import check_image_path, parse_timestamps, read_table
from engine.core.errors import DataError
from engine.data.tables import write_dataset

_SHOW_ROWS = 5  # offending rows named in an error message


def _lines(mask: np.ndarray, path: Path) -> str:
    """File lines (header = line 1) or row numbers of the first offending rows."""
    positions = np.flatnonzero(mask)[:_SHOW_ROWS]
    if path.suffix.lower() == ".parquet":
        return ", ".join(map(str, positions)) + " (row numbers from 0)"
    return ", ".join(str(p + 2) for p in positions) + " (file lines)"


def _read(path: str | Path, encoding: str, what: str) -> tuple[Path, pd.DataFrame]:
    path = Path(path)
    frame = read_table(path, encoding, what)
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no rows")
    return path, frame


def _map_columns(frame: pd.DataFrame, path: Path, mapping: dict[str, str | None], what: str) -> pd.DataFrame:
    """Rename source columns to project names; unmapped columns are kept as extra attributes."""
    mapping = {target: source for target, source in mapping.items() if source}
    missing = [f"{source!r} (for {target})" for target, source in mapping.items() if source not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: {what} file has no column {', '.join(missing)}; its columns are {', '.join(map(str, frame.columns))}"
        )
    renamed = {source: target for target, source in mapping.items()}
    # An unmapped column that already bears a target name would collide; keep it under another name.
    clashes = {c: f"source_{c}" for c in frame.columns if c in mapping and c not in renamed}
    frame = frame.rename(columns=clashes)
    out = frame.rename(columns=renamed)
    for target, source in mapping.items():
        out[target] = frame[source]  # one source column may feed two targets (e.g. title and brand)
    return out


def _require_values(frame: pd.DataFrame, column: str, source: str, path: Path) -> None:
    empty = frame[column].isna().to_numpy() | (frame[column].astype(str).str.strip() == "").to_numpy()
    if empty.any():
        raise DataError(f"{path}: column {source} is empty in {int(empty.sum())} row(s), first at {_lines(empty, path)}")


def import_csv(
    items_path: str | Path,
    interactions_path: str | Path,
    out: str | Path,
    *,
    item_col: str = "item_id",
    title_col: str = "title",
    user_col: str = "user_id",
    time_col: str = "timestamp",
    category_col: str | None = None,
    price_col: str | None = None,
    image_col: str | None = None,
    brand_col: str | None = None,
    users_path: str | Path | None = None,
    encoding: str = "utf-8",
    fmt: str = "csv",
    drop_unknown: bool = False,
) -> Path:
    """Import a catalogue file and an interactions file with arbitrary column names.

    The mapped columns are renamed to the project names (item_id, title, user_id, timestamp,
    category, price, image, brand); every other column is kept as an extra attribute (one whose
    name clashes with a mapped target is renamed ``source_<name>``). The interactions file uses
    the same ``item_col`` as the catalogue. Columns already named event or weight keep their
    meaning. Local image paths are resolved against the items file's folder and copied into
    ``out/images``; http(s) URLs are kept; paths that do not exist are blanked with a warning.
    Everything is checked before writing, so errors name the source file, the source column and
    the first offending file lines.

    Args:
        items_path: catalogue CSV (or .parquet).
        interactions_path: interactions CSV (or .parquet).
        out: the data directory to write.
        item_col: item id column, in both files.
        title_col: item title column.
        user_col: user id column of the interactions file (and of the users file).
        time_col: time column: ISO dates/datetimes or unix seconds.
        category_col: optional category column.
        price_col: optional numeric price column.
        image_col: optional image column (URL or path relative to the items file).
        brand_col: optional brand column.
        users_path: optional users CSV keyed by ``user_col``.
        encoding: text encoding of the CSV files (``latin-1``, ``cp1252``, ...).
        fmt: output format, ``csv`` or ``parquet``.
        drop_unknown: drop interactions whose item is not in the catalogue (with a warning)
            instead of failing.

    Returns:
        The output directory.

    Raises:
        DataError: a missing file or mapped column, undecodable text, empty ids or titles,
            duplicate item ids, bad times or prices, or unknown items; naming file, column and rows.
    """
    ipath, items = _read(items_path, encoding, "items")
    xpath, inter = _read(interactions_path, encoding, "interactions")
    item_map = {"item_id": item_col, "title": title_col, "category": category_col, "price": price_col, "image": image_col, "brand": brand_col}
    items = _map_columns(items, ipath, item_map, "items")
    inter = _map_columns(inter, xpath, {"user_id": user_col, "item_id": item_col, "timestamp": time_col}, "interactions")

    _require_values(items, "item_id", item_col, ipath)
    items["item_id"] = items["item_id"].astype(str).str.strip()
    items["title"] = items["title"].fillna("").astype(str)
    dup = items["item_id"].duplicated().to_numpy()
    if dup.any():
        ids = items.loc[dup, "item_id"].head(3).tolist()
        raise DataError(
            f"{ipath}: column {item_col} has {int(dup.sum())} duplicate id(s) {ids}, first at {_lines(dup, ipath)}"
        )
    if price_col:
        price = pd.to_numeric(items["price"], errors="coerce")
        bad = (price.isna() & items["price"].notna()).to_numpy()
        if bad.any():
            raise DataError(f"{ipath}: column {price_col} is not a number in {int(bad.sum())} row(s), first at {_lines(bad, ipath)}")
        items["price"] = price.astype(float)

    images: dict[str, Path] = {}
    if image_col:
        values = items["image"].fillna("").astype(str).str.strip().tolist()
        missing_rows = []
        for row, (item_id, value) in enumerate(zip(items["item_id"], values)):
            if not value or value.startswith(("http://", "https://")):
                continue
            try:
                check_image_path(value, item_id, ipath)
            except DataError as exc:
                raise DataError(str(exc).replace("column image", f"column {image_col}")) from exc
            source = ipath.parent / value
            if not source.is_file():
                missing_rows.append(row)
                values[row] = ""
                continue
            # Safe, unique names inside out/images whatever the source folder layout.
            rel = f"images/{row:06d}{source.suffix.lower()}"
            images[rel] = source
            values[row] = rel
        if missing_rows:
            mask = np.zeros(len(values), dtype=bool)
            mask[missing_rows] = True
            warnings.warn(
                f"{ipath}: column {image_col}: {len(missing_rows)} image file(s) not found next to the items "
                f"file, left empty, first at {_lines(mask, ipath)}",
                stacklevel=2,
            )
        items["image"] = values

    for column, source in (("user_id", user_col), ("item_id", item_col), ("timestamp", time_col)):
        _require_values(inter, column, source, xpath)
    inter["user_id"] = inter["user_id"].astype(str).str.strip()
    inter["item_id"] = inter["item_id"].astype(str).str.strip()
    inter["timestamp"] = parse_timestamps(inter["timestamp"], xpath, time_col)
    unknown = ~inter["item_id"].isin(items["item_id"]).to_numpy()
    if unknown.any():
        n, ids = int(unknown.sum()), inter.loc[unknown, "item_id"].head(3).tolist()
        if not drop_unknown:
            raise DataError(
                f"{xpath}: column {item_col}: {n} interaction(s) name items missing from {ipath.name} "
                f"(e.g. {ids}), first at {_lines(unknown, xpath)}; pass drop_unknown=True (--drop-unknown) to drop them"
            )
        warnings.warn(f"{xpath}: dropped {n} interaction(s) with items missing from {ipath.name} (e.g. {ids})", stacklevel=2)
        inter = inter.loc[~unknown].reset_index(drop=True)
        if inter.empty:
            raise DataError(f"{xpath}: no interaction is left after dropping unknown items")
    if "weight" in inter.columns:
        weight = pd.to_numeric(inter["weight"], errors="coerce")
        bad = weight.isna().to_numpy()
        if bad.any():
            raise DataError(f"{xpath}: column weight is not a number in {int(bad.sum())} row(s), first at {_lines(bad, xpath)}")
        inter["weight"] = weight.astype(float)

    users = None
    if users_path is not None:
        upath, users = _read(users_path, encoding, "users")
        users = _map_columns(users, upath, {"user_id": user_col}, "users")
        _require_values(users, "user_id", user_col, upath)
        users["user_id"] = users["user_id"].astype(str).str.strip()

    # Project columns first, extra attributes after, in their source order.
    lead = [c for c in ("item_id", "title", "category", "brand", "price", "image") if c in items.columns]
    items = items[lead + [c for c in items.columns if c not in lead]]
    lead = ["user_id", "item_id", "timestamp"]
    inter = inter[lead + [c for c in inter.columns if c not in lead]]
    readme = (
        "# Imported shop data\n\n"
        f"Items from `{ipath}`, interactions from `{xpath}`" + (f", users from `{users_path}`" if users_path else "") + ".\n"
    )
    return write_dataset(out, items, inter, users, images=images, fmt=fmt, extra_files={"README.md": readme})
