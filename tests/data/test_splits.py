"""Held-out protocols: leave-one-out and temporal boundaries, targets, and the leakage test."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.models.baselines import BASELINES
from engine.data.tables import Dataset, load_dataset
from engine.data.splits import Split, group_rows, leave_one_out, make_split, temporal

ITEMS = "item_id,title\n" + "".join(f"I{i},item title {i}\n" for i in range(8))


def load_data(make_dir, rows: list[tuple[str, str, str]]) -> Dataset:
    inter = "user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows)
    return load_dataset(make_dir(items=ITEMS, interactions=inter))


def _triples(frame: pd.DataFrame) -> Counter:
    return Counter(zip(frame["uidx"].to_numpy().tolist(), frame["iidx"].to_numpy().tolist(), frame["timestamp"].tolist()))


def _names(data: Dataset, frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(data.user_ids[frame["uidx"].to_numpy()], data.item_ids[frame["iidx"].to_numpy()]))


# ------------------------------------------------------------------------------------------------
# Leave-one-out


def test_loo_last_is_test_second_last_valid(make_dir) -> None:
    rows = [
        ("a", "I0", "2024-01-01"), ("a", "I1", "2024-01-02"), ("a", "I2", "2024-01-03"),
        ("a", "I3", "2024-01-04"), ("a", "I4", "2024-01-05"),
        ("b", "I5", "2024-01-01"), ("b", "I6", "2024-01-09"),  # only 2: left out entirely
        ("c", "I7", "2024-01-02"), ("c", "I0", "2024-01-03"), ("c", "I1", "2024-01-04"),
        ("d", "I2", "2024-01-01"),  # only 1: left out
    ]
    data = load_data(make_dir, rows)
    split = leave_one_out(data)
    assert split.protocol == "loo"
    assert sorted(_names(data, split.test)) == [("a", "I4"), ("c", "I1")]
    assert sorted(_names(data, split.valid)) == [("a", "I3"), ("c", "I0")]
    assert sorted(_names(data, split.train)) == [("a", "I0"), ("a", "I1"), ("a", "I2"), ("c", "I7")]
    absent = {data.user_index["b"], data.user_index["d"]}
    for frame in (split.train, split.valid, split.test):
        assert not absent & set(frame["uidx"].tolist())
    users, targets = split.targets("test")
    assert sorted(data.user_ids[users]) == ["a", "c"]
    assert split.n_users == data.n_users and split.n_items == data.n_items
    assert split.describe() == {"protocol": "loo", "train_rows": 4, "valid_rows": 2, "test_rows": 2}


def test_loo_ties_follow_file_order(make_dir) -> None:
    rows = [("a", "I2", "2024-01-01"), ("a", "I0", "2024-01-01"), ("a", "I1", "2024-01-01"), ("a", "I5", "2023-12-31")]
    data = load_data(make_dir, rows)
    split = leave_one_out(data)
    assert _names(data, split.test) == [("a", "I1")]
    assert _names(data, split.valid) == [("a", "I0")]
    assert _names(data, split.train) == [("a", "I5"), ("a", "I2")]
    # In the test stage's fit data the validation row comes after the train rows of the same instant.
    assert _names(data, split.fit_data("test").interactions) == [("a", "I5"), ("a", "I2"), ("a", "I0")]
    # The transition model's last item is the validation item, not the test item.
    model = BASELINES["transition"]().fit(split.fit_data("test"))
    assert data.item_ids[model.last_[data.user_index["a"]]] == "I0"


# ------------------------------------------------------------------------------------------------
# Temporal


def test_temporal_boundaries_are_calendar_days(make_dir) -> None:
    rows = [
        ("a", "I0", "2024-01-01T12:00:00"),
        ("a", "I1", "2024-01-06T23:59:59"),  # train: before valid_start 01-07
        ("a", "I2", "2024-01-07T00:00:00"),  # valid
        ("b", "I3", "2024-01-05T08:00:00"),
        ("b", "I4", "2024-01-08T23:59:59"),  # valid
        ("a", "I5", "2024-01-09T00:00:00"),  # test
        ("b", "I6", "2024-01-10T05:00:00"),  # test: the last day
        ("c", "I7", "2024-01-09T10:00:00"),  # test, but c has no history
    ]
    data = load_data(make_dir, rows)
    split = temporal(data, test_days=2)
    assert split.test_start == pd.Timestamp("2024-01-09")
    assert split.valid_start == pd.Timestamp("2024-01-07")
    assert sorted(_names(data, split.train)) == [("a", "I0"), ("a", "I1"), ("b", "I3")]
    assert sorted(_names(data, split.valid)) == [("a", "I2"), ("b", "I4")]
    assert sorted(_names(data, split.test)) == [("a", "I5"), ("b", "I6"), ("c", "I7")]
    users, targets = split.targets("test")
    assert list(data.user_ids[users]) == ["a", "b"]  # c is not evaluated: no history
    assert [list(data.item_ids[t]) for t in targets] == [["I5"], ["I6"]]
    assert split.describe()["test_start"] == "2024-01-09" and split.describe()["valid_start"] == "2024-01-07"


def test_temporal_one_day(make_dir) -> None:
    rows = [("a", "I0", "2024-01-01"), ("a", "I1", "2024-01-02T01:00"), ("a", "I2", "2024-01-03T23:00"), ("a", "I3", "2024-01-03T00:00")]
    data = load_data(make_dir, rows)
    split = temporal(data, test_days=1)
    assert split.test_start == pd.Timestamp("2024-01-03") and split.valid_start == pd.Timestamp("2024-01-02")
    assert sorted(_names(data, split.test)) == [("a", "I2"), ("a", "I3")]


def test_temporal_refuses_bad_days(make_dir) -> None:
    data = load_data(make_dir, [("a", "I0", "2024-01-01"), ("a", "I1", "2024-01-02")])
    with pytest.raises(ValueError, match="no training data"):
        temporal(data, test_days=5)
    with pytest.raises(ValueError, match="at least 1"):
        temporal(data, test_days=0)
    with pytest.raises(ValueError, match="protocol"):
        make_split(data, "random")


def test_targets_are_unique_in_time_order(make_dir) -> None:
    rows = [
        ("a", "I0", "2024-01-01"), ("a", "I1", "2024-01-02"),
        ("a", "I3", "2024-01-05T01:00"), ("a", "I2", "2024-01-05T02:00"), ("a", "I3", "2024-01-05T03:00"),
        ("b", "I5", "2024-01-04T12:00"),  # valid only, no train history: not a valid target
    ]
    data = load_data(make_dir, rows)
    split = temporal(data, test_days=1)
    users, targets = split.targets("test")
    assert list(data.user_ids[users]) == ["a"]  # b has no test rows
    assert list(data.item_ids[targets[0]]) == ["I3", "I2"]
    v_users, _ = split.targets("valid")
    assert list(v_users) == []  # b's valid row has no train history behind it
    with pytest.raises(ValueError, match="stage"):
        split.targets("train")


# ------------------------------------------------------------------------------------------------
# THE LEAKAGE TEST: nothing held out at a stage, and nothing at or after its cut, reaches training.


def _splits(data: Dataset) -> list[Split]:
    return [leave_one_out(data), temporal(data, test_days=2)]


@pytest.fixture
def tiny(tiny_dir: Path) -> Dataset:
    return load_dataset(tiny_dir)


@pytest.mark.parametrize("protocol", ["loo", "temporal"])
@pytest.mark.parametrize("stage", ["valid", "test"])
def test_no_leakage_into_fit_data(tiny: Dataset, protocol: str, stage: str) -> None:
    split = make_split(tiny, protocol, test_days=2)
    fit = split.fit_data(stage).interactions
    train, valid, test = _triples(split.train), _triples(split.valid), _triples(split.test)
    # The three parts partition the interactions of the kept users (no row lost or duplicated).
    assert train + valid + test == _triples(pd.concat([split.train, split.valid, split.test]))
    kept = set(split.train["uidx"]) | set(split.valid["uidx"]) | set(split.test["uidx"])
    everything = tiny.interactions[tiny.interactions["uidx"].isin(kept)]
    assert train + valid + test == _triples(everything)
    held = valid + test if stage == "valid" else test
    fit_rows = _triples(fit)
    assert fit_rows == (train if stage == "valid" else train + valid)
    assert not (set(fit_rows) & set(held)), "held-out rows reach the training data"
    assert fit["timestamp"].is_monotonic_increasing

    if protocol == "temporal":
        cut = split.valid_start if stage == "valid" else split.test_start
        assert fit["timestamp"].max() < cut
        held_frame = split.test if stage == "test" else pd.concat([split.valid, split.test])
        assert held_frame["timestamp"].min() >= cut
        assert len(split.test) and len(split.valid) and len(split.train)
    else:
        # Per user, the cut is a position in the user's time-ordered sequence: training rows are
        # exactly the user's first n-2 (valid stage) or n-1 (test stage) interactions.
        drop = 2 if stage == "valid" else 1
        for uidx, group in everything.groupby("uidx", sort=False):
            expect = _triples(group.iloc[: len(group) - drop])
            got = _triples(fit[fit["uidx"] == uidx])
            assert got == expect
            held_user = group.iloc[len(group) - drop :]
            assert fit[fit["uidx"] == uidx]["timestamp"].max() <= held_user["timestamp"].min()


@pytest.mark.parametrize("protocol", ["loo", "temporal"])
@pytest.mark.parametrize("stage", ["valid", "test"])
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_no_leakage_into_models(tiny: Dataset, protocol: str, stage: str, name: str) -> None:
    split = make_split(tiny, protocol, test_days=2)
    fit = split.fit_data(stage)
    model = BASELINES[name]().fit(fit)
    history = model.history_.tocoo()
    pairs = set(zip(history.row.tolist(), history.col.tolist()))
    train_pairs = set(zip(fit.interactions["uidx"].tolist(), fit.interactions["iidx"].tolist()))
    held = split.test if stage == "test" else pd.concat([split.valid, split.test])
    held_only = set(zip(held["uidx"].tolist(), held["iidx"].tolist())) - train_pairs
    assert held_only, "the fixture should hold out some new (user, item) pairs"
    assert pairs == train_pairs
    assert not (pairs & held_only)
    if protocol == "temporal":
        cut = split.test_start if stage == "test" else split.valid_start
        assert fit.interactions["timestamp"].max() < cut

    # Replacing every held-out row by noise must not change a single score.
    rng = np.random.default_rng(1)
    noisy = Split(
        split.protocol, split.n_users, split.n_items, split.train,
        split.valid if stage == "test" else split.valid.assign(iidx=rng.integers(0, split.n_items, len(split.valid))),
        split.test.assign(iidx=rng.integers(0, split.n_items, len(split.test))),
        split.test_days, split.test_start, split.valid_start,
    )
    other = BASELINES[name]().fit(noisy.fit_data(stage))
    users = np.arange(split.n_users)
    np.testing.assert_array_equal(model.score(users), other.score(users))


@pytest.mark.parametrize("protocol", ["loo", "temporal"])
def test_no_leakage_through_the_harness(tiny: Dataset, protocol: str) -> None:
    from engine.evaluation.heldout import EvalContext, tune_and_fit

    split = make_split(tiny, protocol, test_days=2)
    valid_ctx = EvalContext.build(split, "valid")
    model, info = tune_and_fit(BASELINES["ease"], split, valid_ctx)
    assert "lam" in info["params"]
    expect = split.fit_data("test").matrix()
    assert (model.history_ != expect).nnz == 0
    test_ctx = EvalContext.build(split, "test")
    assert (test_ctx.item_counts == split.fit_data("test").item_counts()).all()


@pytest.mark.parametrize("protocol", ["loo", "temporal"])
@pytest.mark.parametrize("stage", ["valid", "test"])
def test_targets_only_for_users_with_history(tiny: Dataset, protocol: str, stage: str) -> None:
    split = make_split(tiny, protocol, test_days=2)
    users, targets = split.targets(stage)
    seen = set(split.fit_data(stage).interactions["uidx"])
    assert len(users) > 0 and set(users.tolist()) <= seen
    assert len(users) == len(targets) and all(len(t) == len(set(t.tolist())) > 0 for t in targets)
    held = split.valid if stage == "valid" else split.test
    expect = {u for u in held["uidx"] if u in seen}
    assert set(users.tolist()) == expect
    assert (np.diff(users) > 0).all()


# ------------------------------------------------------------------------------------------------
# The grouped forms a million users need


@pytest.mark.parametrize("n_groups", [1, 7, 500])
def test_group_rows_is_a_stable_sort_by_key(n_groups: int) -> None:
    keys = np.random.default_rng(n_groups).integers(0, n_groups, 3_000)
    order, indptr = group_rows(keys, n_groups + 2)  # two groups with no rows
    np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
    np.testing.assert_array_equal(np.diff(indptr), np.bincount(keys, minlength=n_groups + 2))
    empty_order, empty_ptr = group_rows(np.zeros(0, dtype=np.int64), 3)
    assert len(empty_order) == 0 and empty_ptr.tolist() == [0, 0, 0, 0]


def test_sequences_are_each_users_items_in_time_order(tiny: Dataset) -> None:
    fit = make_split(tiny, "loo").fit_data("test")
    seqs = fit.sequences()
    inter = fit.interactions
    expect = {int(u): g["iidx"].to_numpy() for u, g in inter.groupby("uidx", sort=True)}
    assert list(seqs) == sorted(expect) and len(seqs) == len(expect)
    for user, items in expect.items():
        np.testing.assert_array_equal(seqs[user], items)
        np.testing.assert_array_equal(seqs[np.int64(user)], items)
    absent = next(u for u in range(fit.n_users + 1) if u not in expect)
    assert absent not in seqs and seqs.get(absent) is None and seqs.get(-1) is None and "x" not in seqs
    with pytest.raises(KeyError):
        seqs[fit.n_users]


def _reference_loo(data: Dataset) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Leave-one-out written with pandas' per-group positions, to check the split against."""
    inter = data.interactions[["uidx", "iidx", "timestamp"]].reset_index(drop=True)
    from_end = inter.groupby("uidx", sort=False).cumcount(ascending=False).to_numpy()
    keep = np.bincount(inter["uidx"], minlength=data.n_users)[inter["uidx"]] >= 3
    return inter[keep & (from_end >= 2)], inter[keep & (from_end == 1)], inter[keep & (from_end == 0)]


def test_loo_matches_per_group_positions(make_dir) -> None:
    rng = np.random.default_rng(3)
    days = rng.integers(1, 9, 400)  # many ties within and across users
    rows = sorted(zip(days, rng.integers(0, 40, 400), rng.integers(0, 8, 400)), key=lambda r: r[0])
    data = load_data(make_dir, [(f"u{u}", f"I{i}", f"2024-01-0{d}") for d, u, i in rows])
    split = leave_one_out(data)
    for got, expect in zip((split.train, split.valid, split.test), _reference_loo(data)):
        pd.testing.assert_frame_equal(got[["uidx", "iidx", "timestamp"]], expect.reset_index(drop=True))


@pytest.mark.parametrize("protocol", ["loo", "temporal"])
def test_test_stage_rows_are_train_and_valid_in_time_order(tiny: Dataset, protocol: str) -> None:
    split = make_split(tiny, protocol, test_days=2)
    assert split.seen is not None
    got = split.fit_data("test")
    joined = Split(split.protocol, split.n_users, split.n_items, split.train, split.valid, split.test).fit_data("test")
    assert _triples(got.interactions) == _triples(joined.interactions)
    assert got.interactions["timestamp"].is_monotonic_increasing
    for user in joined.sequences():
        np.testing.assert_array_equal(got.sequences()[user], joined.sequences()[user])
