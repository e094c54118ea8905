"""Classical baselines on hand-made data, against numpy references, and the held-out report's keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, needs_shared

from engine.models import baselines
from engine.models.baselines import BASELINES, EASE, ItemKNN, Popularity, RecentPopularity, Recommender, Transition, make_baseline
from engine.data.tables import load_dataset, write_dataset
from engine.evaluation.heldout import evaluate_model, evaluate_on_split, markdown_table, report
from engine.core.jsonio import write_json
from engine.data.splits import FitData, leave_one_out, make_split
from engine.models.topk import mask_rows, top_k

MODEL_KEYS = {"ndcg@10", "recall@10", "hr@10", "map@12", "coverage@10", "tail_share@10", "novelty@10", "ild@10", "gini@10", "fit_seconds"}
TOP_KEYS = {"dataset", "protocol", "k", "n_users", "n_items", "models"}
NAMES = {"popularity", "recent_popularity", "item_knn", "ease", "transition", "rebuy"}


def fit_data(rows: list[tuple[int, int, int]], n_users: int, n_items: int) -> FitData:
    """FitData from (user, item, day) triples, in the order given (which must be time order)."""
    frame = pd.DataFrame(rows, columns=["uidx", "iidx", "day"])
    frame["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame.pop("day"), unit="D")
    assert frame["timestamp"].is_monotonic_increasing
    return FitData(frame, n_users, n_items)


# ------------------------------------------------------------------------------------------------
# Ranking helpers


def test_top_k_ties_by_lower_index_and_masking() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 0.0, 3.0], [5.0, 5.0, 5.0, 5.0, 5.0]], dtype=np.float32)
    items, vals = top_k(scores, 3)
    assert items.tolist() == [[1, 2, 4], [0, 1, 2]]
    assert vals.tolist() == [[3.0, 3.0, 3.0], [5.0, 5.0, 5.0]]
    import scipy.sparse as sp

    history = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [1, 0, 0, 0, 1]], dtype=np.float32))
    masked = mask_rows(scores.copy(), np.array([0, 1]), history)
    assert top_k(masked, 3)[0].tolist() == [[2, 4, 0], [1, 2, 3]]
    assert top_k(scores, 99)[0].shape == (2, 5)
    with pytest.raises(ValueError, match="NaN"):
        top_k(np.array([[0.1, np.nan, 0.3]]), 3)


@pytest.mark.parametrize("levels", [4, 30])  # ties across the k-th place in most rows; ties within the list in many
@pytest.mark.parametrize("k", [1, 5, 12, 40])
def test_top_k_matches_a_full_sort_on_many_ties(k: int, levels: int) -> None:
    rng = np.random.default_rng(k)
    scores = rng.integers(0, levels, size=(50, 40)).astype(np.float32)
    scores[0] = -np.inf  # a row with nothing recommendable still returns k items, lowest index first
    items, vals = top_k(scores, k)
    for row in range(50):
        expected = sorted(range(40), key=lambda j: (-scores[row, j], j))[:k]
        assert items[row].tolist() == expected
        assert vals[row].tolist() == scores[row, expected].tolist()


# ------------------------------------------------------------------------------------------------
# Popularity and history masking

# Distinct users per item: 0 -> 1, 1 -> 1, 2 -> 2 (but 4 rows), 3 -> 2, 4 -> 1.
POP_ROWS = [(0, 0, 0), (0, 2, 1), (0, 2, 2), (0, 2, 3), (1, 2, 4), (1, 3, 5), (2, 3, 6), (2, 1, 7), (3, 4, 8)]


def test_popularity_counts_distinct_users_ties_by_index() -> None:
    model = Popularity().fit(fit_data(POP_ROWS, 4, 5))
    assert model.counts_.tolist() == [1, 1, 2, 2, 1]
    items, scores = model.rank(np.array([3]), 5, mask_history=False)
    assert items.tolist() == [[2, 3, 0, 1, 4]]
    assert scores.tolist() == [[2, 2, 1, 1, 1]]


def test_history_masking_and_keep_history() -> None:
    model = Popularity().fit(fit_data(POP_ROWS, 4, 5))
    masked, _ = model.rank(np.array([0, 2]), 5)
    # User 0 saw 0 and 2, user 2 saw 3 and 1; masked items come last with -inf and are never in the top 3.
    assert masked[:, :3].tolist() == [[3, 1, 4], [2, 0, 4]]
    top3, scores = model.rank(np.array([0, 2]), 3)
    assert np.isfinite(scores).all()
    kept, _ = model.rank(np.array([0, 2]), 3, mask_history=False)
    assert kept.tolist() == [[2, 3, 0], [2, 3, 0]]


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_masks_history(name: str) -> None:
    rng = np.random.default_rng(3)
    rows = sorted(((int(u), int(i), int(d)) for u, i, d in zip(rng.integers(0, 12, 80), rng.integers(0, 15, 80), rng.integers(0, 20, 80))), key=lambda r: r[2])
    data = fit_data(rows, 12, 15)
    model = make_baseline(name).fit(data)
    users = np.arange(12)
    items, scores = model.rank(users, 5)
    hist = data.matrix()
    for u, row in zip(users, items):
        assert not set(row.tolist()) & set(hist[u].indices.tolist())
    assert model.score(users).shape == (12, 15)


# ------------------------------------------------------------------------------------------------
# Transition


def test_transition_recommends_most_frequent_successor() -> None:
    rows = [
        (0, 0, 0), (0, 1, 1),  # 0 -> 1
        (1, 0, 2), (1, 1, 3),  # 0 -> 1
        (2, 0, 4), (2, 2, 5),  # 0 -> 2
        (2, 2, 6),  # 2 -> 2: a repeat, not a transition
        (3, 4, 7), (3, 4, 8), (3, 3, 9), (3, 3, 10), (3, 0, 11),  # popular-ish 3 and 4; last item 0
        (4, 3, 12),
    ]
    model = Transition().fit(fit_data(rows, 6, 5))
    assert model.trans_[0, 1] == 2 and model.trans_[0, 2] == 1 and model.trans_[2, 2] == 0
    items, _ = model.rank(np.array([3]), 3)
    # User 3 saw 4, 3 and 0: 1 (two successors) beats 2 (one); masked items never appear.
    assert items.tolist() == [[1, 2, 4]] or items[0, :2].tolist() == [1, 2]
    items, scores = model.rank(np.array([3]), 5, mask_history=False)
    assert items[0, :2].tolist() == [1, 2]
    assert scores[0, 0] > 2 and scores[0, 1] > 1
    # A user with no history falls back to popularity: item 0 (four users), 1 and 3 (two each, lower
    # index first), then 2 and 4 (one each).
    assert model.rank(np.array([5]), 5)[0].tolist() == [[0, 1, 3, 2, 4]]


@pytest.mark.parametrize("seed", range(4))
def test_transition_counts_match_a_loop_over_sequences(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items = 9, 6  # users 0 and 8 never appear on some seeds: empty groups at both ends
    users = rng.integers(1, 8, 60) if seed % 2 else rng.integers(0, n_users, 60)
    rows = [(int(u), int(i), day) for day, (u, i) in enumerate(zip(users, rng.integers(0, n_items, 60)))]
    model = Transition().fit(fit_data(rows, n_users, n_items))
    expect = np.zeros((n_items, n_items))
    last = np.full(n_users, -1)
    for user in range(n_users):
        seq = [i for u, i, _ in rows if u == user]
        for a, b in zip(seq, seq[1:]):
            expect[a, b] += a != b
        last[user] = seq[-1] if seq else -1
    np.testing.assert_array_equal(model.trans_.toarray(), expect)
    np.testing.assert_array_equal(model.last_, last)


# ------------------------------------------------------------------------------------------------
# EASE


def _ease_reference(x: np.ndarray, lam: float) -> np.ndarray:
    g = x.T @ x + lam * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = np.eye(x.shape[1]) - p @ np.diag(1.0 / np.diag(p))
    np.fill_diagonal(b, 0.0)
    return b


@pytest.mark.parametrize("lam", [0.5, 5.0, 200.0])
def test_ease_matches_numpy_closed_form(lam: float) -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((25, 9)) < 0.35).astype(np.float64)
    x[:, 7] = 0.0  # an item without training data: its row and column of B must be zero
    rows = [(int(u), int(i), 0) for u, i in zip(*np.nonzero(x))]
    model = EASE(lam=lam).fit(fit_data(rows, 25, 9))
    b = _ease_reference(x, lam)
    assert np.abs(np.diag(b)).max() == 0.0
    assert np.allclose(b[7], 0) and np.allclose(b[:, 7], 0)
    full = np.zeros((9, 9), dtype=np.float32)
    if model.b_.shape[1] == 9:  # a column for every item
        full[model.active_] = model.b_
    else:
        full[np.ix_(model.active_, model.active_)] = model.b_
    np.testing.assert_allclose(full, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.score(np.arange(25)), x @ b, rtol=1e-4, atol=1e-5)
    assert model.get_params() == {"lam": lam}


def test_ease_above_max_items_models_the_most_popular_items_only() -> None:
    rng = np.random.default_rng(1)
    x = (rng.random((40, 12)) < 0.3).astype(np.float64)
    x[:, :4] = (rng.random((40, 4)) < 0.8)  # items 0-3 are the most popular
    rows = [(int(u), int(i), 0) for u, i in zip(*np.nonzero(x))]
    model = EASE(lam=5.0, max_items=4).fit(fit_data(rows, 40, 12))
    top = np.argsort(-x.sum(0), kind="stable")[:4]
    assert sorted(model.active_) == sorted(top)
    b = _ease_reference(x[:, np.sort(top)], 5.0)  # EASE of the popular items alone
    scores = model.score(np.arange(40))
    np.testing.assert_allclose(scores[:, np.sort(top)], x[:, np.sort(top)] @ b, rtol=1e-4, atol=1e-5)
    others = np.setdiff1d(np.arange(12), top)
    assert np.all(scores[:, others] == 0)


def test_ease_keeps_its_table_in_the_cache_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(baselines, "EASE_CACHE_ABOVE", 5)  # a 9-item table counts as costly here
    rng = np.random.default_rng(2)
    x = (rng.random((30, 9)) < 0.4).astype(np.float64)
    data = fit_data([(int(u), int(i), 0) for u, i in zip(*np.nonzero(x))], 30, 9)
    first = EASE(lam=5.0)
    first.cache_dir = tmp_path
    first.fit(data)
    assert len(list(tmp_path.glob("ease-*.npy"))) == 1

    def no_inverse(self, xa):
        raise AssertionError("the cached table should have been read")

    monkeypatch.setattr(EASE, "_invert", no_inverse)
    again = EASE(lam=5.0)
    again.cache_dir = tmp_path
    np.testing.assert_array_equal(again.fit(data).score(np.arange(30)), first.score(np.arange(30)))
    other = EASE(lam=50.0)  # another lambda is another table
    other.cache_dir = tmp_path
    with pytest.raises(AssertionError, match="cached table"):
        other.fit(data)
    without = EASE(lam=5.0)  # no cache folder: always inverted
    with pytest.raises(AssertionError, match="cached table"):
        without.fit(data)


@pytest.mark.parametrize("lam", [0.5, 5.0, 200.0])
def test_ease_with_fewer_users_than_items_uses_the_dual_form_and_agrees(lam: float) -> None:
    rng = np.random.default_rng(1)
    x = (rng.random((8, 40)) < 0.3).astype(np.float64)
    x[:, 3] = 0.0
    rows = [(int(u), int(i), 0) for u, i in zip(*np.nonzero(x))]
    model = EASE(lam=lam).fit(fit_data(rows, 8, 40))
    assert model.b_ is None and model.xtw_ is not None  # the m x m (Woodbury) path was taken
    scores = model.score(np.arange(8))
    np.testing.assert_allclose(scores, x @ _ease_reference(x, lam), rtol=1e-4, atol=1e-5)
    assert np.allclose(scores[:, 3], 0)


# ------------------------------------------------------------------------------------------------
# Item kNN

#     item: 0  1  2  3
KNN_X = np.array(
    [
        [1, 1, 0, 0],  # u0
        [1, 1, 1, 0],  # u1
        [0, 0, 1, 1],  # u2
        [0, 1, 0, 1],  # u3
    ],
    dtype=np.float64,
)


def test_item_knn_scores_by_hand() -> None:
    rows = [(int(u), int(i), 0) for u, i in zip(*np.nonzero(KNN_X))]
    model = ItemKNN().fit(fit_data(rows, 4, 4))
    # Column norms: sqrt(2), sqrt(3), sqrt(2), sqrt(2). Co-counts: (0,1)=2, (0,2)=1, (1,2)=1, (1,3)=1, (2,3)=1.
    r2, r3, r6 = np.sqrt(2), np.sqrt(3), np.sqrt(6)
    cos = {(0, 1): 2 / r6, (0, 2): 1 / 2, (0, 3): 0.0, (1, 2): 1 / r6, (1, 3): 1 / r6, (2, 3): 1 / 2}
    sim = np.zeros((4, 4))
    for (i, j), v in cos.items():
        sim[i, j] = sim[j, i] = v
    assert np.isclose(cos[(0, 1)], 2 / (r2 * r3))
    # score(u, j) = sum over the user's items i of cos(i, j), self-similarity excluded.
    expect = {
        0: [cos[0, 1], cos[0, 1], cos[0, 2] + cos[1, 2], cos[1, 3]],
        2: [cos[0, 2], cos[1, 2] + cos[1, 3], cos[2, 3], cos[2, 3]],
    }
    scores = model.score(np.array([0, 2]))
    np.testing.assert_allclose(scores, np.array([expect[0], expect[2]]), rtol=1e-5)
    np.testing.assert_allclose(model.score(np.arange(4)), KNN_X @ sim, rtol=1e-5)


@pytest.mark.parametrize("block", [5, 2000])  # blocks that cut the catalogue, and one that holds it
def test_item_knn_keeps_each_candidates_nearest_neighbours(block: int, monkeypatch) -> None:
    monkeypatch.setattr(baselines, "KNN_BLOCK_ITEMS", block)
    rng = np.random.default_rng(5)
    x = (rng.random((60, 12)) < 0.3).astype(np.float64)
    rows = [(int(u), int(i), 0) for u, i in zip(*np.nonzero(x))]
    model = ItemKNN(neighbours=3).fit(fit_data(rows, 60, 12))
    norms = np.sqrt(x.sum(0))
    sim = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(sim, 0.0)
    # score(u, j) sums cos(i, j) over the user's items i among j's 3 nearest neighbours.
    kept = np.zeros_like(sim)
    for j in range(12):
        nn = np.argsort(-sim[j], kind="stable")[:3]
        assert sim[j, nn[2]] > np.sort(sim[j])[::-1][3] + 1e-9, "fixture must be tie-free"
        kept[j, nn] = sim[j, nn]
    np.testing.assert_allclose(model.score(np.arange(60)), x @ kept.T, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Recent popularity


def test_recent_popularity_uses_last_seven_days() -> None:
    rows = []
    rows += [(u, 0, 1 + u) for u in range(5)]  # item 0: 5 users, days 1-5 (old)
    rows += [(10, 2, 12), (11, 2, 12), (12, 2, 12)]  # item 2: 3 users on day 12, just outside the window
    rows += [(20, 1, 15), (21, 1, 16)]  # item 1: 2 users in the window
    rows += [(22, 3, 19), (22, 3, 19)]  # item 3: 1 user (twice) in the window
    rows += [(23, 4, 20)]  # item 4: 1 user on the last day (day 20)
    rows.sort(key=lambda r: r[2])
    model = RecentPopularity().fit(fit_data(rows, 30, 5))
    items, _ = model.rank(np.array([29]), 5)
    # Recent distinct users: item 1 -> 2, items 3 and 4 -> 1 (4 breaks the tie? no: overall 1 each,
    # so the lower index wins), then items 0 and 2 by all-time popularity.
    assert items.tolist() == [[1, 3, 4, 0, 2]]
    assert model.days == 7
    wide = RecentPopularity(days=30).fit(fit_data(rows, 30, 5))
    assert wide.rank(np.array([29]), 1)[0].tolist() == [[0]]


# ------------------------------------------------------------------------------------------------
# Every baseline beats random on data with structure


def _structured(tmp_path: Path, n_users: int = 300, n_items: int = 48, seed: int = 0) -> Path:
    """Four categories of unequal appeal; each user stays in one; within it, Zipf popularity plus a successor chain."""
    rng = np.random.default_rng(seed)
    cats = np.arange(n_items) % 4
    zipf = 1.0 / (1 + np.arange(n_items) // 4) ** 1.2
    items = pd.DataFrame({"item_id": [f"P{i}" for i in range(n_items)], "title": [f"product {i}" for i in range(n_items)], "category": cats.astype(str)})
    rows = []
    for u in range(n_users):
        pool = np.flatnonzero(cats == rng.choice(4, p=[0.55, 0.25, 0.12, 0.08]))
        p = zipf[pool] / zipf[pool].sum()
        item = int(rng.choice(pool, p=p))
        t = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=int(rng.integers(0, 24 * 20)))
        for _ in range(int(rng.integers(5, 11))):
            rows.append((f"U{u}", f"P{item}", t.isoformat()))
            t += pd.Timedelta(hours=int(rng.integers(1, 48)))
            item = (item + 4) % n_items if rng.random() < 0.5 else int(rng.choice(pool, p=p))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return write_dataset(tmp_path / "structured", items, inter)


class RandomScores(Recommender):
    name = "random"

    def fit(self, data: FitData) -> "RandomScores":
        self._remember(data)
        self.rng_ = np.random.default_rng(0)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.rng_.random((len(users), self.n_items_)).astype(np.float32)


def test_every_baseline_beats_random(tmp_path: Path) -> None:
    data = load_dataset(_structured(tmp_path))
    split = leave_one_out(data)
    models, per_user, ctx = evaluate_on_split(split)
    assert set(models) == NAMES
    rand, _ = evaluate_model(RandomScores().fit(split.fit_data("test")), ctx)
    assert rand["ndcg@10"] < 0.15
    for name, res in models.items():
        assert res["ndcg@10"] > rand["ndcg@10"] + 0.05, (name, res["ndcg@10"], rand["ndcg@10"])
        assert res["hr@10"] > rand["hr@10"], name
        assert per_user[name]["ndcg@10"].shape == (len(ctx.users),)
    # The successor chain is what transition and the item-item models should find.
    assert models["transition"]["ndcg@10"] > models["popularity"]["ndcg@10"]
    assert models["ease"]["ndcg@10"] > models["popularity"]["ndcg@10"]


# ------------------------------------------------------------------------------------------------
# The JSON report


def test_evaluate_on_split_report_keys(tiny_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(tiny_dir)
    split = make_split(data, "loo")
    vectors = np.random.default_rng(0).normal(size=(data.n_items, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    seen = []
    models, _, ctx = evaluate_on_split(split, item_vectors=vectors, progress=seen.append)
    assert seen == list(BASELINES)
    out = report(data.name, split, ctx, models, mask_history=True)
    path = tmp_path / "r" / "baselines.json"
    write_json(out, path)
    loaded = json.loads(path.read_text())
    assert TOP_KEYS <= set(loaded)
    assert loaded["dataset"] == "tiny" and loaded["protocol"] == "loo" and loaded["k"] == 10
    assert loaded["n_users"] == len(ctx.users) > 0 and loaded["n_items"] == 20
    assert set(loaded["models"]) == NAMES
    for name, res in loaded["models"].items():
        assert MODEL_KEYS <= set(res), (name, MODEL_KEYS - set(res))
        for key in MODEL_KEYS:
            assert isinstance(res[key], float) and np.isfinite(res[key]), (name, key, res[key])
        assert 0 <= res["ndcg@10"] <= 1 and 0 <= res["recall@10"] <= res["hr@10"] <= 1
        lo, hi = res["ndcg@10_ci95"]
        assert lo <= res["ndcg@10"] <= hi
    assert loaded["models"]["ease"]["params"]["lam"] in EASE.param_grid["lam"]
    assert not list(path.parent.glob(".*"))  # no temporary file left
    table = markdown_table(models)
    assert table.count("\n") == 1 + len(NAMES) and "| ease |" in table


def test_report_without_vectors_has_ild_none(tiny_dir: Path) -> None:
    data = load_dataset(tiny_dir)
    split = make_split(data, "temporal", test_days=2)
    models, _, ctx = evaluate_on_split(split, ["popularity"], mask_history=False)
    out = report(data.name, split, ctx, models, mask_history=False)
    assert out["masked_history"] is False and out["protocol"] == "temporal"
    assert MODEL_KEYS <= set(out["models"]["popularity"])
    assert out["models"]["popularity"]["ild@10"] is None
    json.dumps(out, default=float)


def test_make_baseline_names() -> None:
    assert set(BASELINES) == NAMES
    assert isinstance(make_baseline("ease"), EASE)
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("nope")


# ------------------------------------------------------------------------------------------------
# Reference numbers of ../shared/data/README.md (an independent numpy/scipy implementation)


@pytest.mark.shared
@needs_shared
def test_beauty_popularity_matches_reference(tmp_path: Path) -> None:
    from engine.data.importers import import_beauty

    data = load_dataset(import_beauty(SHARED / "beauty", tmp_path / "beauty"))
    split = leave_one_out(data)
    models, _, ctx = evaluate_on_split(split, ["popularity"], mask_history=True)
    assert len(ctx.users) == 22363
    res = models["popularity"]
    for key, ref in (("ndcg@10", 0.0061), ("hr@10", 0.0135), ("map@12", 0.0041)):
        assert abs(res[key] - ref) <= 0.1 * ref, (key, res[key], ref)


def test_rebuy_ranks_the_users_own_items_first_then_popularity() -> None:
    from engine.models.baselines import Rebuy

    rows = [
        (0, 1, 0), (0, 2, 1), (0, 1, 2), (0, 3, 3),  # user 0: item 1 twice, then 3 last
        (1, 4, 4), (2, 4, 5), (3, 4, 6), (3, 0, 7), (2, 0, 8),  # 4 is the most popular, then 0
    ]
    data = fit_data(rows, 5, 6)
    recent = Rebuy().fit(data)
    items, scores = recent.rank(np.array([0]), 6, mask_history=False)
    assert items[0].tolist() == [3, 1, 2, 4, 0, 5]  # latest first (3, then 1, then 2), then popularity
    assert (scores[0, :3] >= 2).all() and (scores[0, 3:] < 1).all()
    frequent = Rebuy(order="frequent").fit(data)
    assert frequent.rank(np.array([0]), 3, mask_history=False)[0][0].tolist() == [1, 3, 2]  # twice, then the latest
    assert recent.rank(np.array([0]), 3)[0][0].tolist() == [4, 0, 5]  # history masked: popularity
    assert recent.rank(np.array([4]), 2, mask_history=False)[0][0].tolist() == [4, 0]  # no history: popularity
    with pytest.raises(ValueError, match="order"):
        Rebuy(order="oldest").fit(data)


def test_a_shop_sized_ease_tunes_lambda_on_its_most_popular_items(monkeypatch) -> None:
    """Beyond max_items active items, each lambda of the grid is scored by an EASE of the
    EASE_TUNE_ITEMS most popular items; within max_items, by the model itself."""
    monkeypatch.setattr(baselines, "EASE_TUNE_ITEMS", 2)
    rng = np.random.default_rng(3)
    x = (rng.random((30, 10)) < 0.4).astype(np.float64)
    data = fit_data([(int(u), int(i), 0) for u, i in zip(*np.nonzero(x))], 30, 10)
    big = EASE(lam=7.0, max_items=4)  # 10 active items > 4
    proxy = big.for_tuning(data)
    assert proxy is not big and proxy.max_items == 2 and proxy.lam == 7.0
    assert sorted(proxy.fit(data).active_) == sorted(np.argsort(-x.sum(0), kind="stable")[:2])
    small = EASE(lam=7.0, max_items=10)
    assert small.for_tuning(data) is small
