"""Held-out protocols: leave-one-out and a global temporal cut, with no leakage into training data."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine.core.constants import DEFAULT_TEST_DAYS, TIME_COL
from engine.data.tables import Dataset

PROTOCOLS = ("loo", "temporal")
STAGES = ("valid", "test")
_COLUMNS = ["uidx", "iidx", TIME_COL]


@dataclass
class FitData:
    """What a recommender may learn from: interactions strictly before the held-out ones.

    Attributes:
        interactions: uidx, iidx, timestamp (and event when the data has one), in time order.
        n_users: size of the user index (all users of the data set).
        n_items: size of the item index (the whole catalogue).
    """

    interactions: pd.DataFrame
    n_users: int
    n_items: int
    # matrix() and sequences(), made once: several models fitted on the same data each read them,
    # which at a million users is seconds every time. Callers treat them as read-only.
    _made: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def matrix(self, binary: bool = True) -> sp.csr_matrix:
        """User x item matrix; repeated rows collapse to 1 when binary (made once, shared: read-only)."""
        if ("matrix", binary) not in self._made:
            self._made["matrix", binary] = self._matrix(binary)
        return self._made["matrix", binary]

    def _matrix(self, binary: bool) -> sp.csr_matrix:
        inter = self.interactions
        data = np.ones(len(inter), dtype=np.float32)
        m = sp.csr_matrix((data, (inter["uidx"].to_numpy(), inter["iidx"].to_numpy())), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def sequences(self) -> dict[int, np.ndarray]:
        """Each user's item indices in time order (made once, shared: read-only)."""
        if "sequences" not in self._made:
            self._made["sequences"] = self._sequences()
        return self._made["sequences"]

    def _sequences(self) -> dict[int, np.ndarray]:
        inter = self.interactions
        order = np.argsort(inter["uidx"].to_numpy(), kind="stable")
        users = inter["uidx"].to_numpy()[order]
        items = inter["iidx"].to_numpy()[order]
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        return {int(users[s]): items[s:e] for s, e in zip(starts, np.r_[starts[1:], len(users)])}

    def item_counts(self) -> np.ndarray:
        """Train interaction count per item (repeats counted)."""
        return np.bincount(self.interactions["iidx"].to_numpy(), minlength=self.n_items)

    def item_user_counts(self) -> np.ndarray:
        """Number of distinct users per item."""
        return np.asarray(self.matrix(binary=True).sum(axis=0)).ravel().astype(np.int64)


@dataclass
class Split:
    """A held-out split of one data set.

    ``valid`` is for tuning and early stopping (models fit on ``train``); ``test`` is the final
    verdict (models fit on ``train`` + ``valid``, nothing at or after the test cut).
    """

    protocol: str
    n_users: int
    n_items: int
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    test_days: int | None = None
    test_start: pd.Timestamp | None = None
    valid_start: pd.Timestamp | None = None
    _fits: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def fit_data(self, stage: str) -> FitData:
        """Training data for a stage: train for ``valid``, train + valid for ``test`` (made once per
        stage, so what its :class:`FitData` makes once is shared by every model fitted on it)."""
        _check_stage(stage)
        if stage not in self._fits:
            self._fits[stage] = self._fit_data(stage)
        return self._fits[stage]

    def _fit_data(self, stage: str) -> FitData:
        frame = self.train
        if stage == "test":
            frame = pd.concat([self.train, self.valid], ignore_index=True)
            # Stable: at equal timestamps train rows stay before validation rows.
            frame = frame.sort_values(TIME_COL, kind="stable").reset_index(drop=True)
        return FitData(frame, self.n_users, self.n_items)

    def targets(self, stage: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """Evaluated users and their held-out items (unique, in time order).

        Only users with history in the stage's training data are evaluated.
        """
        _check_stage(stage)
        held = self.valid if stage == "valid" else self.test
        seen = np.zeros(self.n_users, dtype=bool)
        seen[self.fit_data(stage).interactions["uidx"].to_numpy()] = True
        held = held[seen[held["uidx"].to_numpy()]]
        held = held.drop_duplicates(["uidx", "iidx"])
        order = np.argsort(held["uidx"].to_numpy(), kind="stable")
        users = held["uidx"].to_numpy()[order]
        items = held["iidx"].to_numpy()[order]
        if len(users) == 0:
            return np.zeros(0, dtype=np.int64), []
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        return users[starts].astype(np.int64), [items[s:e] for s, e in zip(starts, ends)]

    def describe(self) -> dict:
        """Sizes and dates, for manifests and the terminal."""
        out = {
            "protocol": self.protocol,
            "train_rows": len(self.train),
            "valid_rows": len(self.valid),
            "test_rows": len(self.test),
        }
        if self.protocol == "temporal":
            out.update(
                test_days=self.test_days,
                valid_start=str(self.valid_start.date()),
                test_start=str(self.test_start.date()),
            )
        return out


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")


def _frame(inter: pd.DataFrame) -> pd.DataFrame:
    cols = _COLUMNS + [c for c in ("event",) if c in inter.columns]
    return inter[cols].reset_index(drop=True)


def leave_one_out(data: Dataset) -> Split:
    """Per user: last interaction is test, second to last validation, the rest train.

    Users with fewer than 3 interactions are left out entirely (not trained on, not evaluated).
    """
    inter = _frame(data.interactions)  # already in time order, ties in file order
    uidx = inter["uidx"].to_numpy()
    # Position from the end within each user: 0 = last.
    counts = np.bincount(uidx, minlength=data.n_users)
    from_end = inter.groupby("uidx", sort=False).cumcount(ascending=False).to_numpy()
    keep = counts[uidx] >= 3
    test = inter[keep & (from_end == 0)]
    valid = inter[keep & (from_end == 1)]
    train = inter[keep & (from_end >= 2)]
    return Split("loo", data.n_users, data.n_items, train.reset_index(drop=True), valid.reset_index(drop=True), test.reset_index(drop=True))


def temporal(data: Dataset, test_days: int = DEFAULT_TEST_DAYS) -> Split:
    """A global cut: the last ``test_days`` days are test, the ``test_days`` before validation.

    Days are calendar days: with the last event on day D, test is D-(N-1) .. D and validation the N
    days before it. Everything earlier is train.
    """
    if test_days < 1:
        raise ValueError(f"test_days must be at least 1, got {test_days}")
    inter = _frame(data.interactions)
    ts = inter[TIME_COL]
    last_day = ts.max().normalize()
    test_start = last_day - pd.Timedelta(days=test_days - 1)
    valid_start = test_start - pd.Timedelta(days=test_days)
    train = inter[ts < valid_start]
    valid = inter[(ts >= valid_start) & (ts < test_start)]
    test = inter[ts >= test_start]
    if train.empty:
        raise ValueError(f"{data.root}: --test-days {test_days} leaves no training data (data spans {ts.min().date()} .. {ts.max().date()})")
    return Split(
        "temporal", data.n_users, data.n_items,
        train.reset_index(drop=True), valid.reset_index(drop=True), test.reset_index(drop=True),
        test_days=test_days, test_start=test_start, valid_start=valid_start,
    )


def make_split(data: Dataset, protocol: str, test_days: int = DEFAULT_TEST_DAYS) -> Split:
    """Build the named protocol's split."""
    if protocol == "loo":
        return leave_one_out(data)
    if protocol == "temporal":
        return temporal(data, test_days)
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
