"""The traffic simulator on the demo store, ``homepage simulate``, the layout id, and SNIPS against the
simulator's ground truth."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli.parser import main
from engine.core.errors import DataError
from engine.data.demo_store import TASTE_NAMES
from engine.data.feedback import read_feedback
from engine.data.tables import load_dataset
from engine.evaluation.offpolicy import position_based, snips
from engine.page.explore import ExplorePolicy
from engine.page.layout import Card, Layout
from engine.page.rerank import Settings, rank_segment
from engine.page.simulate import (
    ClickModel,
    alternative_items,
    exploration_scores,
    simulate_traffic,
    taste_attraction,
    true_click_rate,
    user_tastes,
)
from engine.studio.segments import Segment


def test_click_model_and_attraction(demo_studio) -> None:
    exam = ClickModel().examination(np.array([0, 0, 1, 3]), np.array([0, 5, 0, 0]))
    assert exam[0] == 1.0 and exam[1] < exam[0] and exam[2] < exam[0] and exam[3] < exam[2]
    attraction = taste_attraction(demo_studio.data.items)
    assert attraction.shape == (len(TASTE_NAMES), demo_studio.n_items)
    assert ((attraction > 0) & (attraction < 1)).all()
    # Tastes prefer different items: a bookworm's favourite items are books, a tech enthusiast's are not.
    items = demo_studio.data.items
    best = lambda t: items["category"].to_numpy()[np.argsort(-attraction[TASTE_NAMES.index(t)])[:20]]  # noqa: E731
    assert (best("bookworm") == "Books").mean() > 0.5 and (best("tech enthusiast") == "Books").mean() < 0.2


def test_tastes_only_on_the_demo_store(tiny_dir: Path, demo_studio) -> None:
    with pytest.raises(DataError, match=r"users\.csv: no taste column"):
        user_tastes(load_dataset(tiny_dir))
    tastes = user_tastes(demo_studio.data)
    assert tastes.shape == (demo_studio.data.n_users,) and (tastes >= 0).all()


def test_layout_id_is_stable_and_follows_the_content(demo_studio) -> None:
    segment = Segment("test:everyone", "Everyone", "rule", members=demo_studio.users)
    layout = rank_segment(demo_studio, segment, Settings(rows=[("top_picks", 5)]), explain=False)
    back = Layout.from_dict(json.loads(json.dumps(layout.to_dict())))
    assert len(layout.layout_id) == 12 and int(layout.layout_id, 16) >= 0
    assert back.layout_id == layout.layout_id == layout.to_dict()["layout_id"]
    moved = dataclasses.replace(layout, rows=[dataclasses.replace(layout.rows[0], items=layout.rows[0].items[::-1])])
    assert moved.layout_id != layout.layout_id
    assert dataclasses.replace(layout, metrics={"ndcg@10": 0.5}, notes=["x"]).layout_id == layout.layout_id


def test_simulate_command_writes_valid_feedback(trained_demo: Path, tiny_dir: Path, tmp_path: Path, capsys) -> None:
    page = tmp_path / "page.json"
    rc = main(["layout", str(trained_demo), "--segment", "rule:heavy-buyers", "--json", str(page)])
    assert rc == 0, capsys.readouterr().err
    layout_id = json.loads(page.read_text())["layout_id"]
    out = tmp_path / "feedback.csv"
    args = ["simulate", str(trained_demo), "--layout", str(page), "--days", "3", "--explore", "0.2", "--seed", "7"]
    rc = main([*args, "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "page views" in captured.out and f"layout {layout_id}" in captured.out
    data = load_dataset(trained_demo)
    feedback = read_feedback(out, data)
    assert len(feedback) > 0 and set(feedback["layout_id"]) == {layout_id}
    assert feedback["clicked"].any() and feedback["purchased"].sum() <= feedback["clicked"].sum()
    assert not (feedback["purchased"] & ~feedback["clicked"]).any()
    assert (feedback["propensity"] < 1).any() and ((feedback["propensity"] > 0) & (feedback["propensity"] <= 1)).all()
    assert feedback["shown_at"].min() > data.interactions["timestamp"].max()
    assert feedback["row"].max() < 4 and feedback["slot"].max() < 10
    # Deterministic for a seed, without exploration every propensity is 1.
    assert main([*args, "--out", str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "again.csv").read_bytes() == out.read_bytes()
    assert main(["simulate", str(trained_demo), "--layout", str(page), "--days", "2", "--out", str(tmp_path / "fixed.parquet")]) == 0
    assert (read_feedback(tmp_path / "fixed.parquet")["propensity"] == 1.0).all()
    capsys.readouterr()
    # Data without tastes: a clear error, exit code 2, no traceback.
    rc = main(["simulate", str(tiny_dir), "--layout", str(page), "--days", "2", "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "no taste column" in err and "Traceback" not in err
    assert main(["simulate", str(trained_demo), "--layout", str(page), "--days", "2", "--out", str(tmp_path / "x.txt")]) == 2


def test_snips_interval_covers_the_true_click_rate_of_another_page(demo_studio) -> None:
    studio = demo_studio
    segment = Segment("test:everyone", "Everyone", "rule", members=studio.users)
    page_a = rank_segment(studio, segment, Settings(rows=[("top_picks", 10), ("top_picks", 10)]), explain=False)
    candidates, scores = exploration_scores(studio, segment, page_a)
    policy = ExplorePolicy.build(page_a, candidates, scores, 0.5)
    # Page B: page A with its first five slots given to pool items, which A's exploration can show there.
    ids = studio.data.item_ids
    first = [Card(str(ids[i]), "", None, item=int(i)) for i in policy.pool[10:15]] + page_a.rows[0].items[5:]
    page_b = dataclasses.replace(page_a, rows=[dataclasses.replace(page_a.rows[0], items=first), page_a.rows[1]])
    tastes = user_tastes(studio.data)[segment.members]
    attraction = taste_attraction(studio.data.items)
    truth_a, truth_b = true_click_rate(page_a, tastes, attraction), true_click_rate(page_b, tastes, attraction)

    # About 5,800 page views (800 members x 24 days x 0.3 visits a day), half the slots explored. Over
    # seeds 0-39 the 95% intervals covered the truth 38 (B) and 40 (A) times; seed 11 is a typical one.
    log = simulate_traffic(page_a, studio.data.user_ids[segment.members], tastes, attraction, ids, days=24,
                           start=pd.Timestamp("2024-06-01"), seed=11, policy=policy)
    shown = log["item_id"].map(studio.data.item_index).to_numpy()
    position = log["row"].to_numpy() * 10 + log["slot"].to_numpy()
    estimate_b, lo_b, hi_b = snips(log, (page_b.flat_items()[position] == shown).astype(float), seed=0)
    estimate_a, lo_a, hi_a = snips(log, (page_a.flat_items()[position] == shown).astype(float), seed=0)
    assert lo_b <= truth_b <= hi_b, (estimate_b, lo_b, hi_b, truth_b)
    assert lo_a <= truth_a <= hi_a, (estimate_a, lo_a, hi_a, truth_a)
    assert hi_b - lo_b < truth_b and hi_a - lo_a < 0.2 * truth_a  # intervals that say something

    # Page C: page A's two rows swapped and each reversed, so every card sits where the log never
    # showed it. SNIPS has no row for C; the position model judges it from A's items in their own
    # slots and the explored items' clicks across slots.
    page_c = dataclasses.replace(page_a, rows=[dataclasses.replace(r, items=r.items[::-1]) for r in page_a.rows[::-1]])
    truth_c = true_click_rate(page_c, tastes, attraction)
    assert not (page_c.flat_items()[position] == shown).any()
    found = position_based(log["user_id"].factorize()[0], position, shown, log["clicked"].to_numpy(), page_c.flat_items(), seed=0)
    assert found.support == 1.0 and found.lo <= truth_c <= found.hi, (found, truth_c)
    assert found.hi - found.lo < 0.25 * truth_c and abs(truth_c - truth_a) > 0.05 * truth_a  # a page that differs, told apart


def test_exploration_covers_the_pages_the_sliders_give(demo_studio) -> None:
    segment = Segment("test:everyone", "Everyone", "rule", members=demo_studio.users)
    page = rank_segment(demo_studio, segment, Settings(rows=[("top_picks", 6), ("hidden_gems", 6)]), explain=False)
    items = alternative_items(demo_studio, segment, page)
    for knobs in ({"diversity": 0.5, "long_tail": 0.25}, {"diversity": 1.0}, {"long_tail": 0.75}):
        other = rank_segment(demo_studio, segment, Settings(rows=[("top_picks", 6), ("hidden_gems", 6)], **knobs), explain=False)
        assert np.isin(other.flat_items(), items).all(), knobs
    candidates, scores = exploration_scores(demo_studio, segment, page)
    policy = ExplorePolicy.build(page, candidates, scores, 0.2, always=items)
    on_page = set(page.flat_items().tolist())
    assert set(items.tolist()) - on_page <= set(policy.pool.tolist())
