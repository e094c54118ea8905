"""Exploration with logged propensities, and the SNIPS off-policy estimate on hand-computable logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.evaluation.offpolicy import position_based, snips
from engine.page.explore import (
    POOL_FACTOR,
    ExplorePolicy,
    explore_page,
    slot_probabilities,
)
from engine.page.layout import Card, Layout, Row


def page(rows: list[list[int]]) -> Layout:
    """A layout whose cards carry item indices (-1: an empty slot)."""
    return Layout({"id": "test"}, {}, [Row("top_picks", f"row {r}", len(items),
                                             [Card(None if i < 0 else f"I{i}", "", None, item=i) for i in items])
                                         for r, items in enumerate(rows)])


@pytest.mark.parametrize("n_slots", [1, 4, 40])
@pytest.mark.parametrize("pool_size", [0, 2, 4, 120])
@pytest.mark.parametrize("share", [0.0, 0.2, 0.5, 1.0])
def test_each_slot_distribution_sums_to_one(n_slots: int, pool_size: int, share: float) -> None:
    keep, pool_prob = slot_probabilities(n_slots, pool_size, share)
    assert 0.0 <= keep <= 1.0 and 0.0 <= pool_prob <= 1.0
    assert keep + pool_size * pool_prob == pytest.approx(1.0, abs=1e-12)


def test_policy_pool_and_per_slot_propensities_sum_to_one() -> None:
    layout = page([[0, 1, 2], [3, -1]])  # four filled slots, one empty
    candidates = np.arange(30)
    scores = -candidates.astype(float)  # item 0 is the best candidate
    scores[5] = np.nan  # never explored
    policy = ExplorePolicy.build(layout, candidates, scores, 0.3)
    assert policy.pool.tolist() == [4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16][: POOL_FACTOR * 4]
    # Items named to be always explored join after the top ones, best first; page items, items with
    # no score and items outside the candidates never do.
    wider = ExplorePolicy.build(layout, candidates, scores, 0.3, always=np.array([29, 2, 5, 20, 99, 8]))
    assert wider.pool.tolist() == policy.pool.tolist() + [20, 29]
    assert wider.keep + len(wider.pool) * wider.pool_prob == pytest.approx(1.0, abs=1e-12)
    for s, own in enumerate(layout.flat_items()):
        if own < 0:
            continue
        # Every item that could appear in slot s: the page's own item and each pool item.
        options = np.concatenate([[own], policy.pool])
        total = 0.0
        for item in options:
            shown = layout.flat_items().copy()
            shown[s] = item
            total += policy.propensity(shown)[s]
        assert total == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n_candidates", [6, 40])  # pool of 2 (< 4 slots: some explored slots keep their item) and of 12
def test_propensities_match_the_sampling_frequencies(n_candidates: int) -> None:
    layout = page([[0, 1], [2, 3, -1]])
    candidates = np.arange(n_candidates)
    policy = ExplorePolicy.build(layout, candidates, np.linspace(1, 0, n_candidates), 0.5)
    rng = np.random.default_rng(3)
    draws = 20_000
    counts: dict[tuple[int, int], int] = {}
    for _ in range(draws):
        shown, prop = policy.sample(rng)
        filled = shown[shown >= 0]
        assert len(set(filled.tolist())) == len(filled)  # never an item twice on a page
        assert shown[4] == -1 and prop[4] == 1.0  # empty slots stay empty
        for s, item in enumerate(shown[:4]):
            counts[(s, int(item))] = counts.get((s, int(item)), 0) + 1
    for (s, item), n in counts.items():
        shown = layout.flat_items().copy()
        shown[s] = item
        expected = policy.propensity(shown)[s]
        assert n / draws == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / draws) + 1e-9), (s, item)


def test_explore_page_without_exploration_is_the_page() -> None:
    layout = page([[5, 6, 7]])
    shown, prop = explore_page(layout, np.arange(20), np.zeros(20), 0.0, np.random.default_rng(0))
    assert shown.tolist() == [5, 6, 7] and prop.tolist() == [1.0, 1.0, 1.0]
    shown, prop = explore_page(layout, np.arange(20), np.zeros(20), 1.0, np.random.default_rng(0))
    assert not set(shown.tolist()) & {5, 6, 7} and np.allclose(prop, 1 / 9)  # 3 slots, pool of 9, all explored
    with pytest.raises(ValueError, match="between 0 and 1"):
        explore_page(layout, np.arange(20), np.zeros(20), 1.5, np.random.default_rng(0))


# ----------------------------------------------------------------------------------------------
# SNIPS


def hand_log() -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u2"],
        "item_id": ["A", "B", "A", "C"],
        "clicked": [True, False, False, True],
        "propensity": [0.5, 0.25, 0.5, 0.25],
    })


def test_snips_on_a_hand_made_log() -> None:
    # Target shows A and C (pi = 1), never B: w = [1/0.5, 0, 1/0.5, 1/0.25] = [2, 0, 2, 4],
    # V = (2*1 + 0 + 2*0 + 4*1) / (2 + 0 + 2 + 4) = 6/8.
    estimate, lo, hi = snips(hand_log(), np.array([1.0, 0.0, 1.0, 1.0]), seed=1)
    assert estimate == pytest.approx(0.75)
    # Resamples of the two users: only u1 -> 2/2 = 1, only u2 -> 4/6, both -> 6/8.
    assert 4 / 6 - 1e-12 <= lo <= estimate <= hi <= 1.0 + 1e-12
    assert lo == pytest.approx(4 / 6) and hi == pytest.approx(1.0)
    # The logging policy itself (pi = mu): weights 1, the plain click rate.
    assert snips(hand_log(), hand_log()["propensity"].to_numpy())[0] == pytest.approx(0.5)
    # A fixed page logged without propensities (mu = 1).
    assert snips(hand_log().drop(columns="propensity"), np.array([1.0, 1.0, 0.0, 0.0]))[0] == pytest.approx(0.5)


def test_snips_refuses_what_it_cannot_estimate() -> None:
    with pytest.raises(ValueError, match="one value per logged row"):
        snips(hand_log(), np.ones(3))
    with pytest.raises(ValueError, match="no logged row"):
        snips(hand_log(), np.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        snips(hand_log(), np.full(4, 2.0))


def pbm_log() -> dict:
    """Two positions with theta = (1, 0.5); items A (r 0.4, shown at both), B (0.2, only at 0), C (0.6, only at 1);
    100 rows a cell, clicks exactly at their expectation theta_p * r_j, one user per row."""
    cells = [(0, 0, 40), (1, 0, 20), (0, 1, 20), (1, 2, 30)]  # (position, item, clicks of 100 rows)
    position = np.repeat([p for p, _, _ in cells], 100)
    item = np.repeat([j for _, j, _ in cells], 100)
    click = np.concatenate([np.r_[np.ones(k), np.zeros(100 - k)] for _, _, k in cells])
    return {"user": np.arange(400), "position": position, "item": item, "click": click}


def test_position_model_on_a_hand_made_log() -> None:
    # Only A moves between positions, so theta_1 / theta_0 = (20/100) / (40/100) = 0.5; then
    # r_B = 0.2 / 1 and r_C = 0.3 / 0.5 = 0.6. A page with C first and B second, which the log never
    # showed (SNIPS has no row for it): V = (1 * 0.6 + 0.5 * 0.2) / 2 = 0.35.
    found = position_based(**pbm_log(), target=np.array([2, 1]), n_boot=200, seed=0)
    assert found.estimate == pytest.approx(0.35)
    assert found.theta == pytest.approx([1.0, 0.5])
    assert found.support == 1.0 and found.lo <= 0.35 <= found.hi and found.hi - found.lo < 0.4
    # The logged page as laid out, B at 0 and C at 1, is its observed click rate (0.2 + 0.3) / 2.
    assert position_based(**pbm_log(), target=np.array([1, 2]), n_boot=50).estimate == pytest.approx(0.25)
    # An item the log never shows carries no estimate: half the page is supported.
    half = position_based(**pbm_log(), target=np.array([3, 2]), n_boot=50)
    assert half.support == 0.5 and half.estimate == pytest.approx(0.5 * 0.6)


def test_position_model_judges_only_cards_it_can_place_on_one_scale() -> None:
    log = pbm_log()
    # Item D (3) shown only at position 2, which no moved item reaches: theta_2 is unknown, so D's r is
    # too, wherever a page puts it. Positions 3 and 4 form a second, smaller group (item E moves
    # between them, 50 rows each), whose theta cannot be put on the first group's scale.
    extra = {"position": np.repeat([2, 3, 4], [100, 50, 50]), "item": np.repeat([3, 4, 4], [100, 50, 50]),
             "click": np.concatenate([np.r_[np.ones(k), np.zeros(n - k)] for k, n in ((30, 100), (20, 50), (10, 50))])}
    wide = {k: np.concatenate([log[k], extra[k]]) if k != "user" else np.arange(600) for k in log}
    found = position_based(**wide, target=np.array([3, 2, 1, 4, 4]), n_boot=50)
    # Only position 1 (C) counts: D has no rated position, positions 2-4 lie outside the fitted group.
    assert found.support == pytest.approx(1 / 5) and found.estimate == pytest.approx(0.5 * 0.6)
    assert found.theta[2:].tolist() == [0.0, 0.0, 0.0]


def test_position_model_refuses_what_it_cannot_estimate() -> None:
    log = pbm_log()
    fixed = {k: v[log["item"] != 0] for k, v in log.items()}  # A removed: no item moves between positions
    with pytest.raises(ValueError, match="two positions"):
        position_based(**fixed, target=np.array([1, 2]))
    with pytest.raises(ValueError, match="never shows any"):
        position_based(**log, target=np.array([5, -1]))
    with pytest.raises(ValueError, match=r"positions must lie in \[0, 1\)"):
        position_based(**log, target=np.array([1]))
    with pytest.raises(ValueError, match="one value per logged row"):
        position_based(**{**log, "click": log["click"][:10]}, target=np.array([1, 2]))
