"""The feedback table: which item a page showed to whom, where, when, and whether it was clicked or bought.

``feedback.csv`` or ``feedback.parquet``, one row per item shown (an impression):

=============  ========  ==================================================================
column         required  meaning
=============  ========  ==================================================================
user_id        yes       who saw the page
item_id        yes       the item shown
layout_id      yes       the page's ``layout_id`` (``homepage layout --json``)
row, slot      yes       where the item was: 0-based row (top to bottom) and slot (left to right)
shown_at       yes       when: an ISO date/datetime or unix seconds
clicked        yes       0/1, true/false or yes/no
purchased      no        0/1, true/false or yes/no
propensity     no        the probability, in (0, 1], with which the logging policy put this
                         item in this slot (1 for a fixed page); off-policy estimates divide by it
=============  ========  ==================================================================

:func:`read_feedback` is the one reader and :func:`write_feedback` the one writer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.constants import ITEM_COL, USER_COL
from engine.core.errors import DataError
from engine.core.files import atomic_write
from engine.data.tables import (
    Dataset,
    parse_timestamps,
    read_table,
    require_columns,
    require_values,
    row_locations,
)

LAYOUT_COL = "layout_id"
ROW_COL, SLOT_COL = "row", "slot"
SHOWN_COL = "shown_at"
CLICK_COL, PURCHASE_COL = "clicked", "purchased"
PROPENSITY_COL = "propensity"
FEEDBACK_REQUIRED = (USER_COL, ITEM_COL, LAYOUT_COL, ROW_COL, SLOT_COL, SHOWN_COL, CLICK_COL)
FEEDBACK_OPTIONAL = (PURCHASE_COL, PROPENSITY_COL)
FEEDBACK_SUFFIXES = (".csv", ".parquet")
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})
_EXAMPLES = 3  # offending values quoted in a message


def read_feedback(path: str | Path, data: Dataset | None = None) -> pd.DataFrame:
    """Read and validate a feedback table.

    Args:
        path: ``feedback.csv`` or ``feedback.parquet`` (any name with one of those suffixes).
        data: the loaded data directory the feedback is about; when given, users and items it
            does not know are an error.

    Returns:
        The table in file order with typed columns: ids as text, ``row``/``slot`` int64,
        ``shown_at`` datetime64[ns], ``clicked`` (and ``purchased``) bool, ``propensity`` float64.
        Other columns are kept as read.

    Raises:
        DataError: naming the file, the column and the first offending rows (file lines for CSV,
            row numbers from 0 for Parquet): a missing required column, an empty id, a row or slot
            that is not a whole number >= 0, a flag that is not 0/1/true/false/yes/no, a propensity
            outside (0, 1], a time that does not parse, or (with ``data``) an unknown user or item.
    """
    path = Path(path)
    return _validate(read_table(path, what="feedback"), path, data)


def write_feedback(frame: pd.DataFrame, path: str | Path) -> Path:
    """Validate ``frame`` as :func:`read_feedback` would, then write it atomically.

    CSV keeps times as ISO text (``2024-04-01T09:30:00``) and flags as ``true``/``false``; Parquet
    keeps the types.

    Args:
        frame: the feedback rows (the columns of :data:`FEEDBACK_REQUIRED`, optional ones too).
        path: a ``.csv`` or ``.parquet`` file; written to a temporary sibling, then renamed.

    Returns:
        ``path`` as a Path.

    Raises:
        DataError: an unknown suffix, or rows that would not read back (the message names ``path``).
    """
    path = Path(path)
    if path.suffix.lower() not in FEEDBACK_SUFFIXES:
        raise DataError(f"{path}: a feedback file ends in .csv or .parquet")
    clean = _validate(frame.reset_index(drop=True).copy(), path, None)
    if path.suffix.lower() == ".parquet":
        return atomic_write(path, lambda tmp: clean.to_parquet(tmp, index=False))
    text = clean.copy()
    text[SHOWN_COL] = text[SHOWN_COL].dt.strftime("%Y-%m-%dT%H:%M:%S")
    for column in (CLICK_COL, PURCHASE_COL):
        if column in text.columns:
            text[column] = np.where(text[column], "true", "false")
    return atomic_write(path, lambda tmp: text.to_csv(tmp, index=False))


# ----------------------------------------------------------------------------------------------
# Validation


def _validate(frame: pd.DataFrame, path: Path, data: Dataset | None) -> pd.DataFrame:
    """Check and type every column (see :func:`read_feedback`); row labels stay the file's rows."""
    require_columns(frame, FEEDBACK_REQUIRED, path)
    for column in (USER_COL, ITEM_COL, LAYOUT_COL):
        require_values(frame, column, path)
        frame[column] = frame[column].astype(str)
    for column in (ROW_COL, SLOT_COL):
        frame[column] = _whole_numbers(frame, column, path)
    frame[SHOWN_COL] = parse_timestamps(frame[SHOWN_COL], path, SHOWN_COL)
    for column in (CLICK_COL, PURCHASE_COL):
        if column in frame.columns:
            frame[column] = _flags(frame, column, path)
    if PROPENSITY_COL in frame.columns:
        frame[PROPENSITY_COL] = _propensities(frame, path)
    if data is not None:
        known_users = set(data.user_index)
        if data.users is not None:
            known_users.update(data.users[USER_COL])
        _require_known(frame, USER_COL, known_users, path, "users", data)
        _require_known(frame, ITEM_COL, data.item_index, path, "items", data)
    return frame.reset_index(drop=True)


def _fail(frame: pd.DataFrame, bad: np.ndarray, column: str, path: Path, what: str) -> None:
    """Raise a DataError naming the file, the column, the count, the first rows and values of ``bad``."""
    examples = frame.loc[bad, column].head(_EXAMPLES).tolist()
    raise DataError(f"{path}: column {column} {what} in {int(bad.sum())} row(s), first at {row_locations(frame, bad, path)}: {examples}")


def _whole_numbers(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """A whole number >= 0 per row (``3`` and ``3.0`` both count), as int64."""
    values = pd.to_numeric(frame[column], errors="coerce").astype(float)
    number = values.to_numpy()
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(number) | (number < 0) | (number != np.floor(number))
    if bad.any():
        _fail(frame, bad, column, path, "is not a whole number of at least 0")
    return values.astype(np.int64)


def _flags(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """0/1, true/false or yes/no (any case) per row, as bool."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)
    if pd.api.types.is_numeric_dtype(values):
        number = values.astype(float).to_numpy()
        bad = ~np.isin(number, (0.0, 1.0))
        if bad.any():
            _fail(frame, bad, column, path, "is not 0/1, true/false or yes/no")
        return pd.Series(number == 1.0, index=frame.index)
    text = values.astype(str).str.strip().str.lower()
    is_true, is_false = text.isin(_TRUE).to_numpy(), text.isin(_FALSE).to_numpy()
    bad = ~(is_true | is_false) | values.isna().to_numpy()
    if bad.any():
        _fail(frame, bad, column, path, "is not 0/1, true/false or yes/no")
    return pd.Series(is_true, index=frame.index)


def _propensities(frame: pd.DataFrame, path: Path) -> pd.Series:
    """A probability in (0, 1] per row, as float64."""
    values = pd.to_numeric(frame[PROPENSITY_COL], errors="coerce").astype(float)
    number = values.to_numpy()
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(number) | (number <= 0) | (number > 1)
    if bad.any():
        _fail(frame, bad, PROPENSITY_COL, path, "is not a probability in (0, 1]")
    return values


def _require_known(frame: pd.DataFrame, column: str, known, path: Path, what: str, data: Dataset) -> None:
    """Every id of ``column`` is in ``known``; else an error naming the first unknown ids and rows."""
    codes, uniques = pd.factorize(frame[column])
    unknown_unique = np.array([u not in known for u in uniques], dtype=bool)
    bad = unknown_unique[codes]
    if bad.any():
        ids = list(dict.fromkeys(frame.loc[bad, column]))[:_EXAMPLES]
        raise DataError(f"{path}: column {column}: {int(bad.sum())} row(s) name {what} unknown to {data.root} "
                        f"(e.g. {ids}), first at {row_locations(frame, bad, path)}")
