"""The data-directory contract: load, validate and atomically write items, interactions and users."""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.constants import (
    EVENT_COL,
    INTERACTION_REQUIRED,
    ITEM_COL,
    ITEM_REQUIRED,
    TIME_COL,
    TITLE_COL,
    USER_COL,
    WEIGHT_COL,
)
from engine.core.errors import DataError
from engine.core.files import cache_key, cached_file, carry_over, new_stage, swap_in

TABLES = ("items", "interactions", "users")
_SHOW_ROWS = 5  # how many offending rows an error message lists


@dataclass
class Dataset:
    """One loaded data directory.

    Attributes:
        root: the data directory.
        name: a short name (the directory's name).
        items: one row per item, row position == item index; columns item_id, title and the optional
            catalogue columns.
        interactions: one row per event ordered by time (ties kept in file order), with integer
            columns ``uidx`` and ``iidx`` beside user_id, item_id, timestamp (datetime64), event, weight;
            user_id, item_id and event are categoricals (their codes are ``uidx`` and ``iidx``: a
            million users' 26 million rows hold 4-byte codes instead of 52 million strings).
        users: optional user attributes, one row per user_id (not reordered).
        user_ids: user id per user index.
    """

    root: Path
    name: str
    items: pd.DataFrame
    interactions: pd.DataFrame
    users: pd.DataFrame | None
    user_ids: np.ndarray
    item_index: dict[str, int] = field(repr=False)
    user_index: dict[str, int] = field(repr=False)
    # What identifies the files it was loaded from (names, sizes, times) and the loading options,
    # for caches of what is computed from a whole data set; None for a data set built in memory.
    source: str | None = field(default=None, repr=False)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def item_ids(self) -> np.ndarray:
        return self.items[ITEM_COL].to_numpy()

    def fingerprint(self) -> str:
        """A short hash of the item ids and the interactions, to tie a trained model to its data
        (kept in ``root/.cache`` under the files' key: 2.5 s at a million users)."""
        if self.source is None:
            return self._fingerprint()
        return cached_file(self.root / ".cache", "fingerprint", ".txt", self.source, self._fingerprint, lambda p: p.read_text(),
                           lambda value, tmp: tmp.write_text(value), valid=lambda v: len(v) == 16, keep=_LOADED_KEEP)

    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update("\x1f".join(self.items[ITEM_COL].tolist()).encode())
        h.update(self.interactions["uidx"].to_numpy(np.int64).tobytes())
        h.update(self.interactions["iidx"].to_numpy(np.int64).tobytes())
        h.update(self.interactions[TIME_COL].to_numpy("datetime64[s]").astype(np.int64).tobytes())
        h.update("\x1f".join(map(str, self.user_ids)).encode())
        return h.hexdigest()[:16]

    def has_text(self) -> bool:
        """False where titles are placeholders (``item <id>``), as in the Beauty benchmark."""
        titles = self.items[TITLE_COL].astype(str)
        placeholder = titles.str.fullmatch(r"item \S+")
        return not bool(placeholder.all())

    def image_path(self, item_index: int) -> Path | None:
        """The local image file of an item, resolved inside the data directory, or None."""
        if "image" not in self.items.columns:
            return None
        value = self.items["image"].iat[item_index]
        if not isinstance(value, str) or not value or value.startswith(("http://", "https://")):
            return None
        path = (self.root / value).resolve()
        root = self.root.resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path


# ----------------------------------------------------------------------------------------------
# Reading


def table_path(root: Path, table: str, required: bool) -> Path | None:
    for suffix in (".parquet", ".csv"):
        path = root / f"{table}{suffix}"
        if path.exists():
            return path
    if required:
        raise DataError(f"{root}: no {table}.csv or {table}.parquet in the data directory")
    return None


def read_table(path: str | Path, encoding: str = "utf-8", what: str = "table") -> pd.DataFrame:
    """Read one CSV (every value as text, column names stripped) or Parquet table: the one reader of
    the data loader and the importers.

    Args:
        path: a ``.csv`` or ``.parquet`` file.
        encoding: the CSV's text encoding; UTF-8 also accepts the byte-order mark Excel writes.
        what: what the file is (``items``, ``interactions``), for the error messages.

    Returns:
        The table.

    Raises:
        DataError: a missing, empty or unreadable file, or text not in ``encoding``; the message
            names the file (and, for bad text, the line and how to pass the right encoding).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    if path.suffix.lower() == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for broken files
            raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
    else:
        read_as = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding=read_as)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: {_bad_text(path, read_as)} is not valid {encoding} text; pass the file's encoding "
                            f"(for example --encoding latin-1, or cp1252 for Windows/Excel exports) or re-save it as UTF-8") from exc
        except LookupError as exc:
            raise DataError(f"{path}: unknown encoding {encoding!r}") from exc
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{path}: the file is empty") from exc
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def undecodable_at(raw: bytes, encoding: str) -> tuple[int, int] | None:
    """(line, byte offset) of the first byte of ``raw`` that is not valid ``encoding`` text, or None."""
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return raw[: exc.start].count(b"\n") + 1, exc.start
    return None


def _bad_text(path: Path, encoding: str) -> str:
    """Where the first undecodable byte of a file is: "line L, byte B" (B counted from the file's start)."""
    found = undecodable_at(path.read_bytes(), encoding)
    return f"line {found[0]}, byte {found[1]}" if found else "a byte"


def row_locations(frame: pd.DataFrame, mask: np.ndarray, path: Path) -> str:
    """Where the first offending rows of a table being validated are, for error messages.

    Rows are named by the frame's index labels, which stay the file's row numbers while a table is
    validated (subsets such as the non-empty created_at values keep their labels).

    Args:
        frame: the table as read, its index the file's row numbers.
        mask: the offending rows (booleans, one per row of ``frame``).
        path: the file; a ``.csv`` names file lines, any other row numbers.

    Returns:
        Text such as ``"3, 7 (file lines)"`` (header = line 1) or ``"1, 5 (row numbers from 0)"``.
    """
    positions = np.asarray(frame.index[np.asarray(mask, dtype=bool)][:_SHOW_ROWS], dtype=np.int64)
    if path.suffix == ".csv":
        return ", ".join(str(p + 2) for p in positions) + " (file lines)"
    return ", ".join(str(p) for p in positions) + " (row numbers from 0)"


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    """Check that a table has the required columns and at least one row.

    Raises:
        DataError: a column is missing (the message lists the ones found), or the table has no rows.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing required column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}"
        )
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no rows")


MISSING_MARKERS = frozenset({"nan", "none", "null", "<na>", "nat", "n/a"})  # what spreadsheets and pandas write for "no value"


def require_values(frame: pd.DataFrame, column: str, path: Path) -> tuple[np.ndarray, object] | None:
    """Check that every row has a value in ``column``; an id written as NaN, None or null counts as empty.

    Returns:
        For a text column, its ``pd.factorize`` (codes, distinct values), which a caller mapping ids
        can reuse; None for dates and numbers.

    Raises:
        DataError: some rows are empty (the message counts them and names the first, see :func:`row_locations`).
    """
    values = frame[column]
    empty = values.isna().to_numpy()
    factorized = None
    if not (pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_numeric_dtype(values)):
        # The text markers are checked once per distinct value (a million users, not 27 million rows).
        factorized = codes, uniques = pd.factorize(values)
        marker = pd.Series(uniques).astype(str).str.strip().str.lower().isin(MISSING_MARKERS).to_numpy()
        if marker.any():
            empty = empty | ((codes >= 0) & marker[np.maximum(codes, 0)])
    if empty.any():
        raise DataError(f"{path}: column {column} is empty (or NaN/None/null) in {int(empty.sum())} row(s), first at {row_locations(frame, empty, path)}")
    return factorized


def parse_timestamps(values: pd.Series, path: Path, column: str = TIME_COL) -> pd.Series:
    """ISO dates/datetimes or unix seconds to naive datetime64[ns] (UTC where an offset is given); names the first bad rows."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values)
    else:
        text = values.astype(str).str.strip()
        numeric = pd.to_numeric(text, errors="coerce")
        if numeric.notna().all():
            parsed = pd.to_datetime(numeric, unit="s", errors="coerce")
        else:
            # utc=True: values with different offsets (or some with and some without) parse to one
            # time line instead of raising; naive values are taken as UTC.
            parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    # datetime64[ns] spans 1677-09-21 .. 2262-04-11; unix milliseconds read as seconds land far outside.
    bad = (parsed.isna() | (parsed < pd.Timestamp.min) | (parsed > pd.Timestamp.max)).to_numpy()
    if bad.any():
        frame = values.to_frame()
        examples = values[bad].head(3).tolist()
        raise DataError(
            f"{path}: column {column} has {int(bad.sum())} value(s) that are not ISO dates/datetimes "
            f"or unix seconds between 1677 and 2262, first at {row_locations(frame, bad, path)}: {examples}"
        )
    return parsed.astype("datetime64[ns]")


def check_image_path(value: str, item_id: str, path: Path) -> None:
    """Refuse image references that leave the data directory or use a scheme other than http(s)."""
    if value.startswith(("http://", "https://")):
        return
    if "://" in value or value.lower().startswith(("file:", "data:", "javascript:")):
        raise DataError(f"{path}: item {item_id!r}, column image: only http(s) URLs or paths inside the data directory are allowed, got {value!r}")
    normal = posixpath.normpath(value.replace("\\", "/"))
    if normal.startswith("/") or normal == ".." or normal.startswith("../") or (len(value) > 1 and value[1] == ":"):
        raise DataError(f"{path}: item {item_id!r}, column image: the path {value!r} leaves the data directory")


def _load_items(root: Path, encoding: str) -> pd.DataFrame:
    path = table_path(root, "items", required=True)
    items = read_table(path, encoding, "items")
    require_columns(items, ITEM_REQUIRED, path)
    require_values(items, ITEM_COL, path)
    items[ITEM_COL] = items[ITEM_COL].astype(str)
    items[TITLE_COL] = items[TITLE_COL].fillna("").astype(str)
    dup = items[ITEM_COL].duplicated(keep="first").to_numpy()
    if dup.any():
        ids = items.loc[dup, ITEM_COL].head(3).tolist()
        raise DataError(f"{path}: column {ITEM_COL} has {int(dup.sum())} duplicate id(s) {ids}, first at {row_locations(items, dup, path)}")
    if "price" in items.columns:
        price = pd.to_numeric(items["price"], errors="coerce")
        bad = (price.isna() & items["price"].notna()).to_numpy()
        if bad.any():
            raise DataError(f"{path}: column price is not a number in {int(bad.sum())} row(s), first at {row_locations(items, bad, path)}")
        bad = (price.notna() & ~(np.isfinite(price.astype(float)) & (price >= 0))).to_numpy()
        if bad.any():
            raise DataError(f"{path}: column price is negative or infinite in {int(bad.sum())} row(s), first at {row_locations(items, bad, path)}")
        items["price"] = price.astype(float)
    if "created_at" in items.columns:
        present = items["created_at"].notna()
        parsed = pd.Series(pd.NaT, index=items.index, dtype="datetime64[ns]")
        if present.any():
            parsed[present] = parse_timestamps(items.loc[present, "created_at"], path, "created_at")
        items["created_at"] = parsed
    if "image" in items.columns:
        for item_id, value in zip(items[ITEM_COL], items["image"]):
            if isinstance(value, str) and value:
                check_image_path(value, item_id, path)
    for column in ("category", "brand", "description", "color"):
        if column in items.columns:
            items[column] = items[column].fillna("").astype(str)
    return items.reset_index(drop=True)


def _load_interactions(root: Path, item_index: dict[str, int], encoding: str, drop_unknown: bool) -> pd.DataFrame:
    path = table_path(root, "interactions", required=True)
    inter = read_table(path, encoding, "interactions")
    require_columns(inter, INTERACTION_REQUIRED, path)
    factorized = {column: require_values(inter, column, path) for column in INTERACTION_REQUIRED}
    for column in (USER_COL, ITEM_COL):
        if not pd.api.types.is_string_dtype(inter[column]):  # ids read as numbers become text
            inter[column] = inter[column].astype(str)
            factorized[column] = None
    # Each distinct item id is looked up once (26 million rows name 100,000 items at a million users).
    codes, uniques = factorized[ITEM_COL] or pd.factorize(inter[ITEM_COL])
    positions = pd.Index(list(item_index)).get_indexer(pd.Index(uniques).astype(str))[codes]  # item_index keeps the catalogue's order
    iidx = pd.Series(np.where(positions >= 0, positions, np.nan), index=inter.index)
    unknown = positions < 0
    if unknown.any():
        n = int(unknown.sum())
        ids = inter.loc[unknown, ITEM_COL].head(3).tolist()
        where = row_locations(inter, unknown, path)
        if not drop_unknown:
            raise DataError(
                f"{path}: column {ITEM_COL}: {n} interaction(s) name items missing from the catalogue "
                f"(e.g. {ids}), first at {where}; pass --drop-unknown to drop them"
            )
        warnings.warn(f"{path}: dropped {n} interaction(s) with unknown {ITEM_COL} (e.g. {ids})", stacklevel=2)
        # Keep the file's row labels, so that later messages still name the right lines.
        inter = inter.loc[~unknown]
        iidx = iidx[~unknown]
        if inter.empty:
            raise DataError(f"{path}: no interaction is left after dropping unknown items")
    inter[TIME_COL] = parse_timestamps(inter[TIME_COL], path)
    inter["iidx"] = iidx.astype(np.int64).to_numpy()
    inter[ITEM_COL] = pd.Categorical.from_codes(inter["iidx"].to_numpy(), categories=pd.Index(list(item_index), dtype=str))
    if EVENT_COL in inter.columns:
        inter[EVENT_COL] = _lower_categorical(inter[EVENT_COL])
    if WEIGHT_COL in inter.columns:
        weight = pd.to_numeric(inter[WEIGHT_COL], errors="coerce")
        bad = weight.isna().to_numpy()
        if bad.any():
            raise DataError(f"{path}: column {WEIGHT_COL} is not a number in {int(bad.sum())} row(s), first at {row_locations(inter, bad, path)}")
        inter[WEIGHT_COL] = weight.astype(float)
    # Time order with ties kept in file order (a stable sort).
    inter = inter.sort_values(TIME_COL, kind="stable").reset_index(drop=True)
    return inter


def _lower_categorical(values: pd.Series) -> pd.Categorical:
    """Text in lower case as a categorical (each distinct value lowered once; missing values are "")."""
    codes, uniques = pd.factorize(values.fillna("").astype(str))
    lowered, merged = pd.factorize(pd.Index(uniques, dtype=str).str.lower())
    return pd.Categorical.from_codes(lowered[codes] if len(codes) else codes, categories=pd.Index(merged, dtype=str))


def _with_users(inter: pd.DataFrame) -> pd.DataFrame:
    """The user index in order of first appearance in time (``uidx``), and user ids as a categorical over it."""
    codes, uniques = pd.factorize(inter[USER_COL], sort=False)
    inter["uidx"] = codes.astype(np.int64)
    inter[USER_COL] = pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=str))
    return inter


# Loaded interactions are kept in DIR/.cache as Arrow IPC (feather): a million users' 26 million
# rows took 23 s to read, check and keep, and read back in 5 s (in one process). The key is
# the files' sizes and times and the loading options; FORMAT changes with what the loader produces.
_LOADED_FORMAT = "1"
_LOADED_KEEP = 2


def _files_key(root: Path, tables: tuple[str, ...], encoding: str, drop_unknown: bool) -> str:
    """A cache key of the tables' files (name, size, time; not the folder: a moved data directory
    keeps its caches) and the loading options."""
    parts = [_LOADED_FORMAT, encoding, str(drop_unknown)]
    for table in tables:
        path = table_path(root, table, required=False)
        if path is not None:
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return cache_key(*parts)


def _interactions_key(root: Path, encoding: str, drop_unknown: bool) -> str:
    return _files_key(root, ("items", "interactions"), encoding, drop_unknown)


def _cached_interactions(root: Path, item_ids: pd.Index, encoding: str, drop_unknown: bool, load, cache: bool) -> pd.DataFrame:
    """``load()``'s checked interactions (with ``uidx`` and user ids), read from or kept in
    ``root/.cache`` (with ``cache`` False: only read from it)."""

    def read(path: Path) -> pd.DataFrame:
        frame = pd.read_feather(path)
        frame["iidx"] = frame[ITEM_COL].cat.codes.to_numpy().astype(np.int64)
        frame["uidx"] = frame[USER_COL].cat.codes.to_numpy().astype(np.int64)
        return frame

    def usable(frame: pd.DataFrame) -> bool:
        return (isinstance(frame[ITEM_COL].dtype, pd.CategoricalDtype) and frame[ITEM_COL].cat.categories.equals(item_ids)
                and isinstance(frame[USER_COL].dtype, pd.CategoricalDtype))

    def save(frame: pd.DataFrame, tmp: Path) -> None:  # uidx and iidx are the categoricals' codes: not stored twice
        frame.drop(columns=["uidx", "iidx"]).to_feather(tmp, compression="lz4")

    # A read-only data directory, or no Arrow codec: no cache.
    return cached_file(root / ".cache", "interactions", ".feather", _interactions_key(root, encoding, drop_unknown), load, read, save,
                       valid=usable, keep=_LOADED_KEEP, write=cache, quiet=(OSError, ImportError, ValueError))


def load_dataset(root: str | Path, *, drop_unknown: bool = False, encoding: str = "utf-8", cache: bool = True) -> Dataset:
    """Load and validate a data directory.

    Args:
        root: directory holding items.csv|parquet, interactions.csv|parquet and optionally users.csv|parquet.
        drop_unknown: drop interactions whose item is not in the catalogue (with a warning) instead of failing.
        encoding: text encoding of the CSV files.
        cache: keep the checked interactions in ``root/.cache`` for the next load (they are read
            from there whenever the files are unchanged).

    Returns:
        The typed :class:`Dataset`, interactions ordered by time.

    Raises:
        DataError: naming the file, the column and the first offending rows.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a data directory")
    items = _load_items(root, encoding)
    item_index = {item_id: i for i, item_id in enumerate(items[ITEM_COL])}
    inter = _cached_interactions(root, pd.Index(items[ITEM_COL], dtype=str), encoding, drop_unknown,
                                 lambda: _with_users(_load_interactions(root, item_index, encoding, drop_unknown)), cache)
    user_ids = np.asarray(inter[USER_COL].cat.categories, dtype=object)
    users = None
    users_path = table_path(root, "users", required=False)
    if users_path is not None:
        users = read_table(users_path, encoding, "users")
        require_columns(users, (USER_COL,), users_path)
        require_values(users, USER_COL, users_path)
        users[USER_COL] = users[USER_COL].astype(str)
    return Dataset(
        root=root,
        name=root.resolve().name,
        items=items,
        interactions=inter,
        users=users,
        user_ids=user_ids,
        item_index=item_index,
        user_index={u: i for i, u in enumerate(user_ids)},
        source=_files_key(root, TABLES, encoding, drop_unknown),
    )


# ----------------------------------------------------------------------------------------------
# Writing


def _place_image(source: Path | bytes, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, (bytes, bytearray)):
        target.write_bytes(source)
        return
    try:
        os.link(source, target)  # cheap when on the same filesystem
    except OSError:
        shutil.copyfile(source, target)


def write_dataset(
    out_dir: str | Path,
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    users: pd.DataFrame | None = None,
    images: Mapping[str, Path | bytes] | None = None,
    fmt: str = "csv",
    extra_files: Mapping[str, str] | None = None,
    validate: bool = True,
) -> Path:
    """Write a data directory in the project format, all or nothing: the one writer of data sets.

    Everything is written to a staging directory beside ``out_dir`` and, with ``validate``, loaded
    back with :func:`load_dataset`; the old directory's other entries (``models/``, ``images/``,
    ``.cache/``) are linked in, and the stage replaces ``out_dir`` with one rename, the old one
    removed only then. A failure at any point (or data that would not load) leaves ``out_dir`` as
    it was; no reader ever sees old and new tables mixed.

    Args:
        out_dir: the data directory to write.
        items: catalogue with item_id and title (plus optional columns).
        interactions: user_id, item_id, timestamp (plus optional event, weight).
        users: optional user attributes.
        images: relative path inside out_dir (e.g. ``images/123.jpg``) -> source file or raw bytes.
        fmt: ``csv`` or ``parquet``.
        extra_files: relative path -> text (a README.md describing the source, say).
        validate: load the staged directory before it is moved into place.

    Returns:
        The output directory.

    Raises:
        DataError: the written directory does not load; the message names ``out_dir``.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be csv or parquet, got {fmt!r}")
    out_dir = Path(out_dir)
    require_columns(items, ITEM_REQUIRED, Path("items"))
    require_columns(interactions, INTERACTION_REQUIRED, Path("interactions"))
    stage = new_stage(out_dir)
    try:
        tables = {"items": items, "interactions": interactions, "users": users}
        for name, frame in tables.items():
            if frame is None:
                continue
            if fmt == "csv":
                frame.to_csv(stage / f"{name}.csv", index=False)
            else:
                frame.to_parquet(stage / f"{name}.parquet", index=False)
        for rel, source in (images or {}).items():
            check_image_path(rel, rel, Path("images"))
            _place_image(source, stage / rel)
        for rel, text in (extra_files or {}).items():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_text(text)
        if validate:
            try:
                load_dataset(stage, cache=False)  # a cache here would keep the old directory's .cache from coming along
            except DataError as exc:  # name the real destination, not the staging folder
                raise DataError(str(exc).replace(str(stage), str(out_dir))) from None
        # The rest of the old directory (models/, images/, .cache/) comes along; its tables do not,
        # so a table of an earlier data set (either format) cannot shadow or outlive the new one.
        table_files = {f"{name}.{suffix}" for name in TABLES for suffix in ("csv", "parquet")}
        carry_over(out_dir, stage, skip=lambda name: name in table_files)
        swap_in(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out_dir
