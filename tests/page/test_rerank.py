"""Re-ranking: the greedy objective on hand-made cases, the knobs on the demo store, merchandising rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.page.judge import judged_layout
from engine.page.rerank import (
    Rules,
    Settings,
    greedy_rerank,
    load_rules,
    load_settings,
    rank_segment,
    rules_from_dict,
    segment_relevance,
)
from engine.studio.segments import learned_segments


@pytest.fixture(scope="module")
def segment(demo_studio):
    """The largest learned segment of the demo store."""
    return learned_segments(demo_studio, "kmeans", k=6).segments[0]


def _all_open(n_slots: int, n: int) -> np.ndarray:
    return np.ones((n_slots, n), dtype=bool)


# ----------------------------------------------------------------------------------------------
# The greedy objective on hand-made cases


def test_no_knob_is_relevance_order() -> None:
    rel = np.array([0.2, 0.9, 0.5, 1.0, 0.1])
    chosen, gains = greedy_rerank(rel, np.eye(5), _all_open(4, 5))
    assert chosen.tolist() == [3, 1, 2, 0]
    np.testing.assert_allclose(gains, [1.0, 0.9, 0.5, 0.2])


@pytest.mark.parametrize("method", ["mmr", "dpp"])
def test_diversity_skips_near_duplicates(method: str) -> None:
    # Items 0-2 are near copies of one direction, 3 and 4 point elsewhere.
    v = np.array([[1, 0, 0], [1, 0.01, 0], [1, 0, 0.01], [0, 1, 0], [0, 0, 1]], dtype=float)
    rel = np.array([1.0, 0.95, 0.9, 0.6, 0.5])
    plain, _ = greedy_rerank(rel, v, _all_open(3, 5), method=method)
    diverse, _ = greedy_rerank(rel, v, _all_open(3, 5), diversity=0.7, method=method)
    assert plain.tolist() == [0, 1, 2]
    assert diverse.tolist() == [0, 3, 4]


def test_mmr_gain_formula() -> None:
    v = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=float)
    rel = np.array([1.0, 0.8, 0.5])
    chosen, gains = greedy_rerank(rel, v, _all_open(2, 3), diversity=0.5)
    # step 2: item 1 = 0.5*0.8 - 0.5*0.6 = 0.1; item 2 = 0.5*0.5 - 0 = 0.25
    assert chosen.tolist() == [0, 2]
    assert gains[1] == pytest.approx(0.25)


def test_xquad_fills_the_tail_group() -> None:
    rel = np.array([1.0, 0.9, 0.8, 0.7, 0.3, 0.2])
    tail = np.array([False, False, False, False, True, True])
    plain, _ = greedy_rerank(rel, np.eye(6), _all_open(4, 6), is_tail=tail, tail_weight=0.5)
    boosted, _ = greedy_rerank(rel, np.eye(6), _all_open(4, 6), long_tail=0.8, is_tail=tail, tail_weight=0.5)
    assert tail[plain].sum() == 0
    assert tail[boosted].sum() == 2  # smooth xQuAD with P(tail) = 0.5 balances the groups


def test_visual_penalty_separates_neighbours() -> None:
    rel = np.array([1.0, 0.99, 0.98, 0.97])
    red, blue = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    colours = np.stack([red, red, blue, blue])
    neighbours = [[], [0], [1], [2]]  # one row of four
    plain, _ = greedy_rerank(rel, np.eye(4), _all_open(4, 4))
    varied, _ = greedy_rerank(rel, np.eye(4), _all_open(4, 4), visual=0.5, colours=colours, neighbours=neighbours)
    assert plain.tolist() == [0, 1, 2, 3]
    assert varied.tolist() == [0, 2, 1, 3]


def test_slot_masks_and_empty_slots() -> None:
    rel = np.array([1.0, 0.5, 0.2])
    masks = np.array([[True, True, True], [False, False, True], [False, False, True]])
    chosen, _ = greedy_rerank(rel, np.eye(3), masks)
    assert chosen.tolist() == [0, 2, -1]


# ----------------------------------------------------------------------------------------------
# The knobs on the demo store


def test_segment_relevance_is_mean_member_score(demo_studio, segment) -> None:
    members = segment.members[:50]
    sub = type(segment)(segment.id, segment.name, segment.kind, members)
    expected = demo_studio.scores(members).mean(axis=0)
    np.testing.assert_allclose(segment_relevance(demo_studio, sub), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["mmr", "dpp"])
def test_raising_diversity_raises_ild(demo_studio, segment, method: str) -> None:
    ild = []
    for d in (0.0, 0.5, 1.0):
        layout = judged_layout(demo_studio, segment, Settings(diversity=d, method=method))
        ild.append(layout.metrics["ild@10"])
    assert ild[2] > ild[0] + 0.02
    assert ild[1] >= ild[0] - 1e-9


def test_raising_long_tail_raises_tail_share(demo_studio, segment) -> None:
    share = []
    for t in (0.0, 0.5, 1.0):
        layout = judged_layout(demo_studio, segment, Settings(long_tail=t))
        share.append(layout.metrics["tail_share@10"])
    assert share[2] > share[0]
    assert share[1] >= share[0]


def test_visual_knob_makes_neighbours_differ(demo_studio, segment) -> None:
    colours = demo_studio.colours
    assert colours is not None

    def neighbour_similarity(settings: Settings) -> float:
        page = rank_segment(demo_studio, segment, settings, explain=False)
        sims = [colours.similarity([a.item], [b.item])[0, 0] for row in page.rows for a, b in zip(row.items, row.items[1:])]
        return float(np.mean(sims))

    assert neighbour_similarity(Settings(visual=1.0)) < neighbour_similarity(Settings(visual=0.0))


# ----------------------------------------------------------------------------------------------
# Merchandising rules


def _ids(page, studio) -> list[str]:
    return [studio.data.item_ids[i] for i in page.items()]


def test_pins_land_in_their_slots(demo_studio, segment) -> None:
    studio = demo_studio
    rel = segment_relevance(studio, segment)
    worst = [str(studio.data.item_ids[i]) for i in np.argsort(rel)[:2]]  # would never make the page
    rules = {"pin": [{"item": worst[0], "row": 1, "slot": 1}, {"item": worst[1], "row": 3, "slot": 4}]}
    layout = rank_segment(studio, segment, Settings(diversity=0.3, rules=rules))
    assert layout.card_at(0, 0).item_id == worst[0]
    assert layout.card_at(2, 3).item_id == worst[1]
    assert "pinned" in layout.card_at(0, 0).badges and layout.card_at(0, 0).why[0].startswith("pinned")
    assert layout.item_ids().count(worst[0]) == 1


def test_excluded_items_never_appear(demo_studio, segment) -> None:
    studio = demo_studio
    base = rank_segment(studio, segment, Settings(), explain=False)
    shown = base.items()
    items = studio.data.items
    ex_items = [str(studio.data.item_ids[i]) for i in shown[:5]]
    ex_cat = str(items["category"].iat[shown[5]])
    ex_brand = str(items["brand"].iat[shown[6]])
    pinned = ex_items[0]
    rules = {"exclude": {"items": ex_items, "categories": [ex_cat], "brands": [ex_brand]},
             "boost": [{"category": ex_cat, "weight": 5}], "pin": [{"item": pinned, "row": 1, "slot": 2}]}
    for settings in (Settings(rules=rules), Settings(rules=rules, diversity=0.8, long_tail=0.8, visual=0.5, method="dpp")):
        page = rank_segment(studio, segment, settings)
        got = page.items()
        assert not set(_ids(page, studio)) & set(ex_items)
        assert not (items["category"].to_numpy()[got] == ex_cat).any()
        assert not (items["brand"].to_numpy()[got] == ex_brand).any()
        assert any("excluded" in n for n in page.notes)


def test_a_knob_move_reuses_the_candidates_and_ranks_as_a_fresh_studio(demo_studio, segment) -> None:
    import dataclasses

    studio = demo_studio
    rules = {"pin": [{"item": str(studio.data.item_ids[0]), "row": 2, "slot": 1}], "bury": [{"category": str(studio.data.items["category"].iat[1]), "weight": 1}]}
    settings = [Settings(rules=rules), Settings(rules=rules, diversity=0.6, long_tail=0.5, visual=0.4), Settings(rules=rules, diversity=0.6, method="dpp")]
    pages = [rank_segment(studio, segment, s) for s in settings]

    def candidates() -> set:
        return {key for key in studio._made if key[0] == "candidates"}

    made, kept = len(studio._made), candidates()
    rank_segment(studio, segment, Settings(rules=rules, diversity=0.9))
    assert len(studio._made) == made  # nothing new made for another knob value
    other = {"bury": [{"category": str(studio.data.items["category"].iat[2]), "weight": 0.37}]}  # rules no other test uses
    rank_segment(studio, segment, Settings(rules=other, diversity=0.6))
    assert len(candidates() - kept) == 1  # other rules: other candidates
    fresh = dataclasses.replace(studio, _made={}, _relevance={})
    for s, page in zip(settings, pages):
        again = rank_segment(fresh, segment, s)
        assert list(again.items()) == list(page.items()) and [c.why for r in again.rows for c in r.items] == [c.why for r in page.rows for c in r.items]


def test_boost_and_bury_move_items(demo_studio, segment) -> None:
    studio = demo_studio
    cats = studio.data.items["category"].to_numpy()
    base = rank_segment(studio, segment, Settings(rows=[("top_picks", 10)]), explain=False).items()
    top_cat = cats[base[0]]
    absent = next(c for c in np.unique(cats) if c not in set(cats[base]))
    page = rank_segment(studio, segment, Settings(rows=[("top_picks", 10)], rules={"bury": [{"category": top_cat, "weight": 5}], "boost": [{"category": absent, "weight": 5}]}))
    got = page.items()
    assert top_cat not in set(cats[got])
    assert (cats[got] == absent).all()
    assert any(w.startswith("boosted") for w in page.rows[0].items[0].why)


def test_rules_file_round_trip_and_errors(demo_studio, segment, tmp_path: Path) -> None:
    obj = {"exclude": {"items": ["P00001"], "categories": ["Books"]}, "boost": [{"brand": "Kiro", "weight": 0.5}],
           "bury": [{"item": "P00002", "weight": 0.25}], "pin": [{"item": "P00003", "row": 2, "slot": 3}]}
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(obj))
    rules = load_rules(path)
    assert rules.pins[0].row == 1 and rules.pins[0].slot == 2  # 0-based inside
    assert rules.to_dict() == obj
    assert Rules().is_empty()
    for bad, message in (
        ({"exclud": {}}, "unknown key"),
        ({"boost": [{"category": "Books", "brand": "Kiro"}]}, "exactly one"),
        ({"boost": [{"category": "Books", "weight": "lots"}]}, "not a number"),
        ({"pin": [{"item": "P1", "row": 0, "slot": 1}]}, "count from 1"),
        ({"pin": [{"item": "P1", "row": 1, "slot": 1}, {"item": "P2", "row": 1, "slot": 1}]}, "two pins"),
    ):
        with pytest.raises(ValueError, match=message):
            rules_from_dict(bad, "rules.json")
    path.write_text("{not json")
    with pytest.raises(ValueError, match="rules.json: not valid JSON"):
        load_rules(path)
    with pytest.raises(ValueError, match="unknown category"):
        rank_segment(demo_studio, segment, Settings(rules={"exclude": {"categories": ["Shoess"]}}))
    with pytest.raises(ValueError, match="outside the page"):
        rank_segment(demo_studio, segment, Settings(rules={"pin": [{"item": "P00003", "row": 9, "slot": 1}]}))


def test_settings_files_and_validation(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text(json.dumps({"exclude": {"brands": ["Kiro"]}}))
    (tmp_path / "s.json").write_text(json.dumps({"diversity": 0.4, "long_tail": 0.2, "method": "dpp", "rules": "r.json"}))
    s = load_settings(tmp_path / "s.json")
    assert (s.diversity, s.long_tail, s.method) == (0.4, 0.2, "dpp")
    assert s.rules == {"exclude": {"brands": ["Kiro"]}}
    assert Settings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="diversity must be in"):
        Settings(diversity=1.5)
    with pytest.raises(ValueError, match="unknown setting"):
        Settings.from_dict({"diversty": 0.1})
    with pytest.raises(ValueError, match="theme"):
        Settings(rows=[("bestsellers", 10)])


def test_with_two_stages_a_segment_ranks_by_its_members_final_scores(demo_model, segment) -> None:
    """With a kept second stage, a segment's relevance is the mean of its members' final scores over
    their candidates (each member's lowest candidate at 0), computed once per segment."""
    import dataclasses

    import pandas as pd

    from engine.models.baselines import Popularity
    from engine.models.two_stage import TwoStage, TwoStageConfig
    from engine.studio.context import Studio, load_studio

    studio = load_studio(*demo_model)  # a copy of its own: this test attaches a second stage
    final = TwoStage({"finetuned": studio.rec, "popularity": Popularity()}, studio.data.items,
                     config=TwoStageConfig(per_source=20, n_estimators=10, min_child_samples=5)).train(studio.split)
    final.fit(studio.fit)
    studio = dataclasses.replace(studio, final=final, _relevance={})
    rel = segment_relevance(studio, segment)
    members = np.unique(segment.members)
    members = members[studio.rows_of(members) >= 0]
    rows, items, scores = final.candidate_scores(members)
    shifted = scores - pd.Series(scores).groupby(rows).transform("min").to_numpy()
    expected = np.bincount(items, weights=shifted, minlength=studio.n_items) / len(members)
    np.testing.assert_allclose(rel, expected, rtol=1e-6, atol=1e-9)
    assert segment_relevance(studio, segment) is rel  # cached: a slider move does not score again
    layout = rank_segment(studio, segment)
    first = [card.item for card in layout.rows[0].items][:3]
    assert all(rel[i] >= np.partition(rel, -50)[-50] for i in first)  # the page opens with the segment's best
    assert isinstance(studio, Studio) and studio.scores(members[:5]).shape == (5, studio.n_items)
