"""``homepage score``: every user's top-k items, written to one Parquet file.

One process (no workers) loads the model once and ranks users in batches of ``BATCH_USERS``. With
workers, those same batches are rows of a Ray Data dataset that ``map_batches`` hands to ``ScoreBatch``
actors (each loads the data and the model once); batches come back in user order, so the files match.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from engine.core.errors import DataError
from engine.core.files import atomic_write
from engine.data.splits import FitData
from engine.data.tables import Dataset, load_dataset
from engine.models.baselines import Recommender
from engine.models.final import load_final
from engine.models.store import newest_model

BATCH_USERS = 2048  # users ranked at once: a (BATCH_USERS, n_items) float32 score matrix at most
COLUMNS = ("user_id", "rank", "item_id", "score")
SCHEMA = pa.schema([("user_id", pa.string()), ("rank", pa.int32()), ("item_id", pa.string()), ("score", pa.float32())])


def load_ranker(data: Dataset, model_dir: str | Path) -> Recommender:
    """The model directory's final recommender, fitted on every interaction of ``data``.

    Raises:
        ModelError: a missing or damaged model directory, or one trained on other data.
    """
    rec, _, _ = load_final(model_dir, data)
    rec.fit(FitData(data.interactions, data.n_users, data.n_items))
    return rec


def user_batches(n_users: int, size: int) -> list[tuple[int, int]]:
    """Consecutive ``(first, stop)`` user index ranges of ``size`` users (the last one shorter)."""
    return [(first, min(first + size, n_users)) for first in range(0, n_users, size)]


def rank_batch(rec: Recommender, user_ids: np.ndarray, item_ids: np.ndarray, first: int, stop: int,
               k: int, mask_history: bool) -> dict[str, np.ndarray]:
    """The rows of users ``first`` to ``stop - 1``: one per (user, rank), by user then rank.

    Args:
        rec: a fitted recommender.
        user_ids, item_ids: the data's ids by index, as strings.
        first, stop: the user index range.
        k: list length (clipped to the catalogue).
        mask_history: leave out each user's own history items.

    Returns:
        Columns ``COLUMNS`` as numpy arrays. A masked item (score -inf) is left out, so a user has
        fewer than k rows only where fewer than k items lie outside their history.
    """
    users = np.arange(first, stop, dtype=np.int64)
    items, scores = rec.rank(users, k, mask_history=mask_history)
    keep = np.isfinite(scores)
    rows = np.broadcast_to(users[:, None], items.shape)
    ranks = np.broadcast_to(np.arange(1, items.shape[1] + 1, dtype=np.int32), items.shape)
    return {"user_id": user_ids[rows[keep]], "rank": ranks[keep], "item_id": item_ids[items[keep]],
            "score": scores[keep].astype(np.float32)}


def _ids(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(data.user_ids).astype(str), np.asarray(data.item_ids).astype(str)


def iter_top_k(data: Dataset, model_dir: str | Path, k: int, mask_history: bool,
               batch_users: int | None = None, n_users: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """:func:`rank_batch` of every batch of users (the first ``n_users``; None: all) in one process,
    the model loaded once."""
    rec = load_ranker(data, model_dir)
    user_ids, item_ids = _ids(data)
    for first, stop in user_batches(data.n_users if n_users is None else n_users, batch_users or BATCH_USERS):
        yield rank_batch(rec, user_ids, item_ids, first, stop, k, mask_history)


def top_k_table(data: Dataset, model_dir: str | Path, k: int, mask_history: bool = True) -> pd.DataFrame:
    """Every user's top-k items in one process, ranked in batches of users.

    Args:
        data: the loaded data directory.
        model_dir: a model directory trained on it.
        k: list length.
        mask_history: leave out each user's own history items.

    Returns:
        One row per (user, rank), columns user_id, rank (1..k), item_id, score (float32).
    """
    parts = [pd.DataFrame(batch) for batch in iter_top_k(data, model_dir, k, mask_history)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: [] for c in COLUMNS})


class ScoreBatch:
    """Ray Data callable class: each worker loads the data directory and the model once.

    Args:
        data_dir: the data directory (a path every worker can read).
        model_dir: the model directory.
        k: list length.
        mask_history: leave out each user's own history items.
        threads: torch threads of this worker (None: torch's default).
    """

    def __init__(self, data_dir: str, model_dir: str, k: int, mask_history: bool, threads: int | None = None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        data = load_dataset(data_dir)
        self.rec = load_ranker(data, model_dir)
        self.user_ids, self.item_ids = _ids(data)
        self.k, self.mask_history = k, mask_history

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rank the user ranges of ``batch`` (columns ``first``, ``stop``), each as one call of
        :func:`rank_batch`, as the one-process path does."""
        parts = [rank_batch(self.rec, self.user_ids, self.item_ids, int(first), int(stop), self.k, self.mask_history)
                 for first, stop in zip(batch["first"], batch["stop"])]
        return {c: np.concatenate([p[c] for p in parts]) for c in COLUMNS}


def write_batches(out: str | Path, batches: Iterable[dict | pa.Table]) -> int:
    """Stream batches into one Parquet file, written atomically (a temporary sibling, then renamed).

    Returns:
        The number of rows written.
    """
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        import pyarrow.parquet as pq

        with pq.ParquetWriter(tmp, SCHEMA) as writer:
            for batch in batches:
                table = batch.select(list(COLUMNS)).cast(SCHEMA) if isinstance(batch, pa.Table) else pa.table(batch, schema=SCHEMA)
                writer.write_table(table)
                rows += table.num_rows

    atomic_write(out, write)
    return rows


def _ray_batches(data_dir: Path, model_dir: Path, n_users: int, k: int, mask_history: bool,
                 workers: int, batch_users: int) -> Iterator[pa.Table]:
    """The scored batches from ``workers`` ScoreBatch actors, in user order."""
    import ray.data

    ranges = user_batches(n_users, batch_users)
    if not ranges:
        return
    ds = ray.data.from_items([{"first": first, "stop": stop} for first, stop in ranges], override_num_blocks=len(ranges))
    ds.context.execution_options.preserve_order = True  # batches come back in user order
    ds.context.enable_progress_bars = False
    ds = ds.map_batches(
        ScoreBatch, batch_size=1, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=workers),  # N actors (``concurrency=N`` is deprecated since Ray 2.51)
        fn_constructor_kwargs={"data_dir": str(data_dir), "model_dir": str(model_dir), "k": k,
                               "mask_history": mask_history, "threads": 1 if workers > 1 else None},
    )
    yield from ds.iter_batches(batch_size=None, batch_format="pyarrow")


def score_users(data_dir: str | Path, model_dir: str | Path | None, k: int, out: str | Path, workers: int = 0,
                mask_history: bool = True, batch_users: int | None = None, limit: int | None = None) -> dict:
    """Write every user's top-k items to ``out`` (one Parquet file), in one process or through Ray.

    Args:
        data_dir: the data directory.
        model_dir: a model directory trained on it (None: the newest under ``data_dir/models``).
        k: list length, at least 1.
        out: the Parquet file to write.
        workers: 0 for one process; N >= 1 for N Ray Data workers (a local Ray bound to 127.0.0.1,
            or the cluster ``RAY_ADDRESS`` names, whose workers must see the same paths).
        mask_history: leave out each user's own history items.
        batch_users: users ranked at once (default ``BATCH_USERS``).
        limit: score only the first ``limit`` users by index (a throughput measurement); None: all.

    Returns:
        ``{"users", "k", "rows", "seconds", "users_per_second", "workers", "out"}``; ``workers`` is
        the number of Ray workers that ran (no more than there are batches of users; 0: one process).

    Raises:
        DataError: a bad data directory, k < 1 or workers < 0.
        ModelError: a missing or damaged model directory, or one trained on other data.
    """
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    if workers < 0:
        raise DataError(f"workers must be at least 0, got {workers}")
    start = time.perf_counter()
    data_dir = Path(data_dir).resolve()
    model_dir = Path(model_dir or newest_model(data_dir)).resolve()
    data = load_dataset(data_dir)
    batch_users = batch_users or BATCH_USERS
    n_users = data.n_users if limit is None else min(limit, data.n_users)
    workers = min(workers, -(-n_users // batch_users))  # an actor without a batch would only load the model
    if not workers:
        rows = write_batches(out, iter_top_k(data, model_dir, k, mask_history, batch_users, n_users))
    else:
        from engine.scale.cluster import ray_session

        load_final(model_dir, data)  # a bad model directory fails here, with its own message
        with ray_session(num_cpus=max(2, workers)):
            rows = write_batches(out, _ray_batches(data_dir, model_dir, n_users, k, mask_history, workers, batch_users))
    seconds = time.perf_counter() - start
    return {"users": n_users, "k": k, "rows": rows, "seconds": seconds,
            "users_per_second": data.n_users / max(seconds, 1e-9), "workers": workers, "out": str(out)}
