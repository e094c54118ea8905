"""Import the Amazon Beauty sequential-recommendation benchmark (Beauty.txt, ids only) into a data directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.errors import DataError
from engine.data.tables import write_dataset

# Synthetic clock: the file holds order only, so user u's k-th item is stamped BASE + k seconds.
BASE_TIME = pd.Timestamp("2000-01-01")


def _read_sequences(path: Path) -> tuple[list[str], list[list[str]]]:
    users: list[str] = []
    sequences: list[list[str]] = []
    seen: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8/ASCII text (byte {exc.start}); expected lines of 'user item item ...'") from exc
    for line_no, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise DataError(f"{path}: line {line_no} names user {tokens[0]!r} but no item")
        if tokens[0] in seen:
            raise DataError(f"{path}: line {line_no} repeats user {tokens[0]!r} of line {seen[tokens[0]]}")
        seen[tokens[0]] = line_no
        users.append(tokens[0])
        sequences.append(tokens[1:])
    if not users:
        raise DataError(f"{path}: no sequences in the file")
    return users, sequences


def import_beauty(src: str | Path, out: str | Path, fmt: str = "csv") -> Path:
    """Import the Amazon Beauty benchmark file into a data directory.

    The file has one line per user, ``user_id item_id item_id ...`` in time order, and no real
    times or item text. Items get the id as item_id and the placeholder title ``item <id>`` (so
    ``Dataset.has_text()`` is False). Each interaction gets a synthetic timestamp
    2000-01-01 00:00:00 + k seconds for the user's k-th item (k from 0), so every user's order is
    exactly kept by the loader's stable time sort; the clock is not comparable across users, so
    evaluate with leave-one-out, not with a temporal split. A README.md in ``out`` says so.

    Args:
        src: the Beauty folder holding Beauty.txt, or the file itself.
        out: the data directory to write.
        fmt: ``csv`` (default) or ``parquet``.

    Returns:
        The output directory.

    Raises:
        DataError: a missing file, a line without items, a repeated user, or an output that does not load.
    """
    src = Path(src)
    path = src / "Beauty.txt" if src.is_dir() else src
    if not path.is_file():
        raise DataError(f"{path}: Beauty.txt not found")
    users, sequences = _read_sequences(path)

    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    item_col = [item for seq in sequences for item in seq]
    # Position within the user's own sequence: 0, 1, ... restarting at each user.
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.arange(int(lengths.sum()), dtype=np.int64) - starts
    interactions = pd.DataFrame(
        {
            "user_id": np.repeat(np.asarray(users, dtype=object), lengths),
            "item_id": item_col,
            "timestamp": BASE_TIME + pd.to_timedelta(positions, unit="s"),
        }
    )

    ids = pd.unique(pd.Series(item_col))
    # Numeric ids in numeric order (1, 2, ..., 12101) rather than first-appearance order.
    if all(i.isdigit() for i in ids):
        ids = sorted(ids, key=int)
    items = pd.DataFrame({"item_id": list(ids), "title": [f"item {i}" for i in ids]})

    readme = (
        "# Amazon Beauty (sequential-recommendation benchmark)\n\n"
        f"Imported from `{path}` (salesforce/ICLRec `data/Beauty.txt`; derived from the Amazon review data of "
        "McAuley et al., research use).\n\n"
        "- Item titles are placeholders (`item <id>`): the file has no item text, images or prices.\n"
        "- Timestamps are synthetic: a user's k-th item is at 2000-01-01 00:00:00 + k seconds. They keep each "
        "user's order exactly but mean nothing across users: use leave-one-out evaluation "
        "(last item test, second-to-last validation), not a temporal split.\n"
        f"- {len(users)} users, {len(items)} items, {len(interactions)} interactions.\n"
    )
    return write_dataset(out, items, interactions, fmt=fmt, extra_files={"README.md": readme})
