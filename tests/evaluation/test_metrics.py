"""Hand-worked and cross-checked tests of engine.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.evaluation.metrics import (
    accuracy_per_user,
    avg_popularity_at_k,
    bootstrap_ci,
    coverage_at_k,
    gini_at_k,
    head_tail_split,
    hit_matrix,
    hr_at_k,
    ild_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    novelty_at_k,
    paired_bootstrap_ci,
    precision_at_k,
    recall_at_k,
    tail_share_at_k,
)

PER_LIST = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "hr": hr_at_k,
    "map": map_at_k,
    "mrr": mrr_at_k,
    "precision": precision_at_k,
}

# ----------------------------------------------------------------------------------------------
# Per-list accuracy metrics, worked by hand


def test_ndcg_single_hit_at_rank_two():
    assert ndcg_at_k([3, 1, 2], {1}, 3) == pytest.approx(1 / math.log2(3))


def test_ndcg_two_relevant():
    # hits at ranks 1 and 3: DCG = 1 + 1/log2(4); IDCG over 2 items = 1 + 1/log2(3)
    expected = (1 + 1 / 2) / (1 + 1 / math.log2(3))
    assert ndcg_at_k([1, 5, 2], [1, 2], 3) == pytest.approx(expected)


def test_ndcg_ideal_uses_min_of_targets_and_k():
    # 5 relevant items but k = 2: both slots hit, so the list is ideal
    assert ndcg_at_k([1, 2, 9], {1, 2, 3, 4, 5}, 2) == pytest.approx(1.0)
    assert ndcg_at_k([1, 2], set(), 2) == 0.0


def test_recall_precision_hr():
    ranked, relevant = np.array([1, 2, 3]), np.array([2, 9])
    assert recall_at_k(ranked, relevant, 3) == pytest.approx(0.5)
    assert precision_at_k(ranked, relevant, 3) == pytest.approx(1 / 3)
    assert hr_at_k(ranked, relevant, 3) == 1.0
    assert hr_at_k(ranked, relevant, 1) == 0.0
    assert recall_at_k(ranked, relevant, 1) == 0.0
    # duplicates in the held-out set count once
    assert recall_at_k(ranked, [2, 2, 9], 3) == pytest.approx(0.5)


def test_precision_denominator_is_k_for_short_lists():
    assert precision_at_k([4], {4}, 5) == pytest.approx(0.2)


def test_map_two_relevant():
    # hits at ranks 1 and 3: (P@1 + P@3) / min(2, 4) = (1 + 2/3) / 2
    assert map_at_k([1, 5, 2, 7], {1, 2}, 4) == pytest.approx(5 / 6)
    # cut at k = 2 only the first hit counts, still divided by min(2, 2)
    assert map_at_k([1, 5, 2, 7], {1, 2}, 2) == pytest.approx(0.5)


def test_map_divides_by_k_when_targets_exceed_k():
    assert map_at_k([1, 2, 3], {1, 2, 3, 4, 5}, 3) == pytest.approx(1.0)
    assert map_at_k([9, 1, 2], {1, 2, 3, 4, 5}, 3) == pytest.approx((1 / 2 + 2 / 3) / 3)


def test_mrr():
    assert mrr_at_k([4, 5, 6, 1], {1, 6}, 4) == pytest.approx(1 / 3)
    assert mrr_at_k([4, 5, 6, 1], {1, 6}, 2) == 0.0
    assert mrr_at_k([6], {6}, 10) == 1.0


# ----------------------------------------------------------------------------------------------
# The vectorised aggregator agrees with the per-list functions


def _random_case(seed: int, n_users: int = 200, n_items: int = 60, width: int = 12):
    rng = np.random.default_rng(seed)
    recs = np.stack([rng.permutation(n_items)[:width] for _ in range(n_users)])
    recs[rng.random(n_users) < 0.1, -3:] = -1  # some short lists (empty slots)
    targets = [rng.choice(n_items, size=rng.integers(1, 16), replace=False) for _ in range(n_users)]
    # plant hits at random positions so every metric is exercised
    for u in range(0, n_users, 3):
        pos = rng.integers(0, width - 3)
        targets[u] = np.append(targets[u], recs[u, pos])
    return recs, targets


@pytest.mark.parametrize("k", [1, 5, 10, 12, 15])
def test_aggregator_matches_per_list(k):
    recs, targets = _random_case(seed=k)
    out = accuracy_per_user(recs, targets, k)
    assert set(out) == set(PER_LIST)
    for name, fn in PER_LIST.items():
        expected = np.array([fn(recs[u], targets[u], k) for u in range(len(targets))])
        assert out[name].shape == (len(targets),)
        np.testing.assert_allclose(out[name], expected, rtol=1e-12, atol=1e-12, err_msg=name)
    assert out["hr"].sum() > 0  # the planted hits were found


def test_aggregator_accepts_sets_and_duplicate_targets():
    recs = np.array([[1, 2, 3], [4, 5, 6]])
    out = accuracy_per_user(recs, [{2, 7}, np.array([6, 6, 4])], 3)
    np.testing.assert_allclose(out["recall"], [0.5, 1.0])
    np.testing.assert_allclose(out["mrr"], [0.5, 1.0])
    np.testing.assert_allclose(out["map"], [0.25, (1 + 2 / 3) / 2])
    hits, n_rel = hit_matrix(recs, [{2, 7}, np.array([6, 6, 4])], 2)
    assert hits.tolist() == [[False, True], [True, False]]
    assert n_rel.tolist() == [2, 2]


def test_aggregator_rejects_empty_targets_and_size_mismatch():
    recs = np.array([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="row 1 has no targets"):
        accuracy_per_user(recs, [np.array([1]), np.array([], dtype=np.int64)], 2)
    with pytest.raises(ValueError, match="targets has 1"):
        accuracy_per_user(recs, [np.array([1])], 2)


# ----------------------------------------------------------------------------------------------
# Beyond-accuracy metrics


def test_coverage():
    recs = np.array([[0, 1], [1, 2]])
    assert coverage_at_k(recs, 10, 2) == pytest.approx(0.3)
    assert coverage_at_k(recs, 10, 1) == pytest.approx(0.2)
    assert coverage_at_k(np.array([[0, -1]]), 4, 2) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        coverage_at_k(recs, 2, 2)  # item 2 outside a 2-item catalogue


def test_head_tail_split_exact_threshold_reaches_head():
    # 50 + 30 = 80 of 100 interactions: exactly 80% is enough, so the head is items 0 and 1
    is_tail = head_tail_split(np.array([50, 30, 10, 5, 5]))
    assert is_tail.tolist() == [False, False, True, True, True]


def test_head_tail_split_crossing_item_and_order():
    # sorted counts 60, 30, 10: 60% < 80% <= 90%, so the item that crosses (30) is head
    assert head_tail_split(np.array([10, 60, 30])).tolist() == [True, False, False]
    # ties broken by the lower index; zero-count items are tail
    assert head_tail_split(np.array([10, 10, 10, 10, 0]), head_share=0.5).tolist() == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert head_tail_split(np.zeros(3)).tolist() == [True, True, True]
    assert head_tail_split(np.array([0, 7, 0]), head_share=1.0).tolist() == [True, False, True]


def test_tail_share_and_avg_popularity():
    counts = np.array([50, 30, 10, 5, 5])
    is_tail = head_tail_split(counts)
    recs = np.array([[0, 2], [3, 1]])
    assert tail_share_at_k(recs, is_tail, 2) == pytest.approx(0.5)
    assert tail_share_at_k(recs, is_tail, 1) == pytest.approx(0.5)
    assert avg_popularity_at_k(recs, counts, 2) == pytest.approx((50 + 10 + 5 + 30) / 4)
    assert avg_popularity_at_k(np.array([[0, -1]]), counts, 2) == pytest.approx(50)


def test_novelty():
    # item 0 seen by all 3 users: p = 4/4 -> 0 bits; item 1 unseen: p = 1/4 -> 2 bits
    recs = np.array([[0, 1]])
    assert novelty_at_k(recs, np.array([3, 0]), 3, 2) == pytest.approx(1.0)
    assert novelty_at_k(recs, np.array([3, 0]), 3, 1) == pytest.approx(0.0)
    assert math.isfinite(novelty_at_k(np.array([[1]]), np.array([3, 0]), 3, 1))


def test_gini():
    assert gini_at_k(np.array([[0, 1], [2, 3]]), 4, 2) == pytest.approx(0.0)
    assert gini_at_k(np.zeros((20, 3), dtype=int), 5, 3) == pytest.approx(1 - 1 / 5)
    # exposures (0, 1, 3) sorted: (-2*0 + 0*1 + 2*3) / (3 * 4) = 0.5
    assert gini_at_k(np.array([[2, 1], [2, 2]]), 3, 2) == pytest.approx(0.5)


def test_ild_orthogonal_identical_and_scaled():
    eye = np.eye(4)
    assert ild_at_k(np.array([[0, 1, 2], [1, 2, 3]]), eye, 3) == pytest.approx(1.0)
    same = np.tile([[1.0, 2.0, 3.0]], (4, 1)) * np.array([[1.0], [2.0], [0.5], [3.0]])
    assert ild_at_k(np.array([[0, 1, 2, 3]]), same, 4) == pytest.approx(0.0, abs=1e-12)
    half = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert ild_at_k(np.array([[0, 1]]), half, 2) == pytest.approx(1 - 1 / math.sqrt(2))


def test_ild_skips_short_lists_and_none():
    eye = np.eye(3, dtype=np.float32)
    assert ild_at_k(np.array([[0, 1, -1], [2, -1, -1]]), eye, 3) == pytest.approx(1.0)
    assert ild_at_k(np.array([[2, -1, -1]]), eye, 3) is None
    assert ild_at_k(np.array([[0, 1]]), None, 2) is None


def test_ild_matches_loop_across_chunks():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(40, 8))
    recs = np.stack([rng.permutation(40)[:5] for _ in range(2500)])  # spans several chunks
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    per_user = []
    for row in recs:
        sims = unit[row] @ unit[row].T
        iu = np.triu_indices(len(row), 1)
        per_user.append(np.mean(1 - sims[iu]))
    assert ild_at_k(recs, vectors, 5) == pytest.approx(np.mean(per_user), rel=1e-10)


# ----------------------------------------------------------------------------------------------
# Bootstrap intervals


def test_bootstrap_ci_contains_true_mean():
    values = np.random.default_rng(0).normal(3.0, 1.0, size=5000)
    lo, hi = bootstrap_ci(values, n_boot=500, seed=1)
    assert lo < 3.0 < hi
    assert lo < values.mean() < hi
    assert hi - lo < 0.1  # ~ 2 * 1.96 / sqrt(5000) = 0.055
    assert bootstrap_ci(values, n_boot=500, seed=1) == (lo, hi)  # deterministic


def test_paired_bootstrap_ci_covers_known_difference():
    rng = np.random.default_rng(1)
    a = rng.random(4000)
    b = a + 0.1 + rng.normal(0.0, 0.05, size=a.size)
    diff, lo, hi = paired_bootstrap_ci(a, b, n_boot=500, seed=2)
    assert diff == pytest.approx(0.1, abs=0.01)
    assert lo < 0.1 < hi
    assert lo > 0.0
    assert lo < diff < hi
    with pytest.raises(ValueError):
        paired_bootstrap_ci(a, b[:-1])


def test_an_evaluation_of_many_users_judges_a_seeded_sample(tiny_dir) -> None:
    from engine.data.splits import make_split
    from engine.data.tables import load_dataset
    from engine.evaluation.heldout import EvalContext

    split = make_split(load_dataset(tiny_dir), "loo")
    full = EvalContext.build(split, "test")
    sample = EvalContext.build(split, "test", max_users=10)
    assert full.sampled_from is None and sample.sampled_from == len(full.users) and len(sample.users) == 10
    assert (sample.users == EvalContext.build(split, "test", max_users=10).users).all()  # seeded
    by_user = dict(zip(full.users.tolist(), full.targets))
    assert all(np.array_equal(by_user[u], t) for u, t in zip(sample.users.tolist(), sample.targets))
