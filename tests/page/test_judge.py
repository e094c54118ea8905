"""Judging pages: grid NDCG on hand-worked cases, paired bootstrap coverage, compare, frontier, segment value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.evaluation import metrics as M
from engine.cli.parser import main
from engine.data.tables import load_dataset
from engine.page.judge import compare, evaluate_layout, evaluate_lists, frontier, grid_discount, rank_changes, segment_value
from engine.page.layout import Card, Layout, Row
from engine.data.splits import make_split
from engine.page.rerank import Settings, rank_segment
from engine.studio.segments import Segment, learned_segments
from engine.studio.context import Studio


@pytest.fixture
def toy(tiny_dir: Path) -> Studio:
    """A Studio over the 20-item tiny data set with random vectors (no trained model needed)."""
    data = load_dataset(tiny_dir)
    split = make_split(data, "loo")
    fit = split.fit_data("test")
    users = np.unique(fit.interactions["uidx"].to_numpy())
    rng = np.random.default_rng(0)
    counts = fit.item_counts()
    eval_users, targets = split.targets("test")
    return Studio(
        data=data, split=split, stage="test", fit=fit, users=users,
        user_vectors=rng.normal(size=(len(users), 4)).astype(np.float32), state_means=rng.normal(size=(len(users), 4)).astype(np.float32),
        item_vectors=rng.normal(size=(data.n_items, 4)).astype(np.float32), history=fit.matrix(), item_counts=counts,
        item_user_counts=fit.item_user_counts(), n_train_users=len(users), is_tail=M.head_tail_split(counts),
        is_new=np.zeros(data.n_items, dtype=bool), eval_users=eval_users, eval_targets=targets,
    )


def _layout(ids: list[str], per_row: int = 2) -> Layout:
    rows = [Row("top_picks", f"row {r}", per_row, [Card(i, i, 1.0) for i in ids[r * per_row : (r + 1) * per_row]]) for r in range(len(ids) // per_row)]
    return Layout({"id": "rule:toy", "name": "Toy", "size": 30}, Settings().to_dict(), rows)


def test_grid_discount_is_reading_order() -> None:
    d = grid_discount([3, 3])
    np.testing.assert_allclose(d, 1.0 / np.log2(np.arange(6) + 2.0))
    assert d[3] < d[2]  # first card of row two comes after the last card of row one


def test_grid_ndcg_hand_worked(toy: Studio) -> None:
    hist = toy.history
    u0, u1 = int(toy.eval_users[0]), int(toy.eval_users[1])
    seen1 = int(hist[u1].indices[0])  # an item user 1 interacted with in training
    free = [i for i in range(toy.n_items) if hist[u0, i] == 0 and hist[u1, i] == 0 and i != seen1]
    a, x, c, y = free[:4]
    page = np.array([a, x, seen1, y])  # two rows of two
    targets = [np.array([a]), np.array([seen1, c])]
    ev = evaluate_lists(toy, page, np.array([u0, u1]), targets, [2, 2], mask_history=False)
    # user 0: hit at p=0 -> 1. user 1: hit at p=2 -> (1/log2 4) / (1 + 1/log2 3).
    ndcg1 = 0.5 / (1.0 + 1.0 / np.log2(3.0))
    assert ev.per_user["ndcg@10"].tolist() == pytest.approx([1.0, ndcg1])
    assert ev.metrics["ndcg@10"] == pytest.approx((1.0 + ndcg1) / 2)
    assert ev.metrics["recall@10"] == pytest.approx(0.75)
    assert ev.metrics["hr@10"] == pytest.approx(1.0)
    assert ev.metrics["coverage@10"] == pytest.approx(4 / toy.n_items)
    # Masked: user 1's hit is an item from their history, so it no longer counts.
    masked = evaluate_lists(toy, page, np.array([u0, u1]), targets, [2, 2], mask_history=True)
    assert masked.per_user["ndcg@10"].tolist() == pytest.approx([1.0, 0.0])
    # Same page, 1-D page vs one row per user: same accuracy.
    per_user = evaluate_lists(toy, np.stack([page, page]), np.array([u0, u1]), targets, [2, 2], mask_history=False)
    assert per_user.metrics["ndcg@10"] == pytest.approx(ev.metrics["ndcg@10"])


def test_page_metrics_agree_with_foundation_metrics(toy: Studio) -> None:
    page = np.arange(12)
    users, targets = toy.eval_users, toy.eval_targets
    ev = evaluate_lists(toy, page, users, targets, [6, 6], mask_history=False)
    recs = np.broadcast_to(page, (len(users), 12))
    acc = M.accuracy_per_user(recs, targets, 10)
    assert ev.metrics["ndcg@10"] == pytest.approx(acc["ndcg"].mean())
    assert ev.metrics["recall@10"] == pytest.approx(acc["recall"].mean())
    assert ev.metrics["tail_share@12"] == pytest.approx(M.tail_share_at_k(page[None], toy.is_tail, 12))
    assert ev.metrics["novelty@10"] == pytest.approx(M.novelty_at_k(page[None], toy.item_user_counts, toy.n_train_users, 10))
    assert ev.metrics["ild@10"] == pytest.approx(M.ild_at_k(page[None], toy.item_vectors, 10))
    assert ev.metrics["avg_price@10"] == pytest.approx(toy.data.items["price"].iloc[:10].mean())
    assert ev.metrics["n_users"] == len(users)


def test_one_shared_page_scores_each_user_as_their_own_copy_does(toy: Studio) -> None:
    page = np.r_[np.arange(5), -1, np.arange(6, 11), -1]  # two empty slots
    users, targets = toy.eval_users, toy.eval_targets
    for masked in (False, True):
        shared = evaluate_lists(toy, page, users, targets, [6, 6], mask_history=masked, k=4)
        copies = evaluate_lists(toy, np.tile(page, (len(users), 1)), users, targets, [6, 6], mask_history=masked, k=4)
        assert set(shared.per_user) == set(copies.per_user) == {f"{m}@{c}" for m in ("ndcg", "recall", "hr") for c in (4, 12)}
        for key, values in shared.per_user.items():
            np.testing.assert_allclose(values, copies.per_user[key], rtol=1e-12)
        assert shared.per_user["hr@12"].sum() > 0


def test_paired_bootstrap_covers_the_true_difference() -> None:
    """Synthetic users hit with probability 0.30 under A and 0.38 under B (correlated): the 95%
    paired interval covers the true difference 0.08 in about 95% of 200 replications."""
    rng = np.random.default_rng(7)
    covered = 0
    for rep in range(200):
        base = rng.random(300)
        a = (base < 0.30).astype(float)
        b = (base < 0.38).astype(float)
        flip = rng.random(300) < 0.1  # some users behave independently
        b[flip] = (rng.random(flip.sum()) < 0.38).astype(float)
        _, lo, hi = M.paired_bootstrap_ci(a, b, n_boot=400, seed=rep)
        covered += lo <= 0.08 <= hi
    assert 0.90 <= covered / 200 <= 0.99


def test_compare_hand_made_layouts(toy: Studio) -> None:
    ids = toy.data.item_ids
    members = toy.eval_users
    segment = Segment("rule:toy", "Toy", "rule", members)
    users, targets = toy.held_out(members)
    first_target = [int(t[0]) for t in targets]
    # A: the most common held-out items first; B: the reverse order of A.
    order = np.argsort(-np.bincount(first_target, minlength=toy.n_items), kind="stable")[:10]
    a = _layout([str(ids[i]) for i in order])
    b = _layout([str(ids[i]) for i in order[::-1]])
    result = compare(toy, segment, a, b, n_boot=500)
    assert result["n_users"] == len(users)
    ev_a = evaluate_layout(toy, a, segment)
    ev_b = evaluate_layout(toy, b, segment)
    ndcg = result["metrics"]["ndcg@10"]
    assert ndcg["a"] == pytest.approx(ev_a.metrics["ndcg@10"]) and ndcg["b"] == pytest.approx(ev_b.metrics["ndcg@10"])
    assert ndcg["diff"] == pytest.approx(ndcg["b"] - ndcg["a"])
    assert ndcg["ci95"][0] <= ndcg["diff"] <= ndcg["ci95"][1]
    assert ndcg["level"] == "user"
    recall = result["metrics"]["recall@10"]
    assert recall["diff"] == pytest.approx(0.0) and recall["ci95"] == pytest.approx([0.0, 0.0])  # same items, same recall
    assert result["metrics"]["ild@10"]["level"] == "page" and result["metrics"]["ild@10"]["ci95"] is None
    changes = {c["item_id"]: c for c in result["items"]}
    assert changes[str(ids[order[0]])]["rank_a"] == 1 and changes[str(ids[order[0]])]["rank_b"] == 10
    assert changes[str(ids[order[0]])]["change"] == -9


def test_rank_changes_entering_and_leaving() -> None:
    a = _layout(["x", "y", "z", "w"])
    b = _layout(["y", "x", "v", "z"])
    rows = {r["item_id"]: r for r in rank_changes(a, b)}
    assert rows["y"]["change"] == 1 and rows["x"]["change"] == -1 and rows["z"]["change"] == -1
    assert rows["v"]["rank_a"] is None and rows["v"]["change"] is None
    assert rows["w"]["rank_b"] is None
    assert [r["item_id"] for r in rank_changes(a, b)] == ["y", "x", "v", "z", "w"]


def test_small_segment_is_refused_by_evaluation(toy: Studio) -> None:
    small = Segment("rule:small", "Small", "rule", toy.eval_users[:5])
    with pytest.raises(ValueError, match="under the minimum"):
        evaluate_layout(toy, _layout(["x", "y"]), small)


def test_frontier_and_segment_value(demo_studio) -> None:
    segment = learned_segments(demo_studio, "kmeans", k=6).segments[0]
    current = Settings(diversity=0.3, long_tail=0.1)
    table = frontier(demo_studio, segment, current)
    assert len(table) == 26 and table["current"].sum() == 1
    assert {"diversity", "long_tail", "ndcg@10", "ild@10", "tail_share@10", "coverage@40", "avg_price@10"} <= set(table.columns)
    row = table[table["current"]].iloc[0]
    assert (row["diversity"], row["long_tail"]) == (0.3, 0.1)
    plain = table[(table.diversity == 0) & (table.long_tail == 0)].iloc[0]
    diverse = table[(table.diversity == 1) & (table.long_tail == 0)].iloc[0]
    assert diverse["ild@10"] > plain["ild@10"]
    on_grid = frontier(demo_studio, segment, Settings(diversity=0.5, long_tail=0.5), (0.0, 0.5), (0.0, 0.5))
    assert len(on_grid) == 4 and on_grid["current"].sum() == 1

    layout = rank_segment(demo_studio, segment, current)
    value = segment_value(demo_studio, segment, layout)
    assert value["page"].tolist() == ["segment page", "personalised top-k", "global popular page"]
    assert (value["n_users"] == value["n_users"].iloc[0]).all()
    by = value.set_index("page")
    assert by.loc["personalised top-k", "coverage@40"] > by.loc["segment page", "coverage@40"]
    assert by.loc["global popular page", "tail_share@40"] == 0.0


def test_compare_command(demo_model, demo_studio, tmp_path: Path, capsys) -> None:
    data_dir, model_dir = demo_model
    segment = learned_segments(demo_studio, "kmeans", k=6).segments[0]
    (tmp_path / "a.json").write_text(json.dumps({"diversity": 0.0}))
    (tmp_path / "b.json").write_text(json.dumps({"diversity": 0.8, "long_tail": 0.5, "method": "dpp"}))
    out = tmp_path / "cmp.json"
    rc = main(["compare", str(data_dir), "--model", str(model_dir), "--k", "6", "--segment", segment.id,
               "--a", str(tmp_path / "a.json"), "--b", str(tmp_path / "b.json"), "--json", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "| ndcg@10 |" in captured.out and "95% CI" in captured.out
    result = json.loads(out.read_text())
    assert {"a", "b", "diff", "ci95"} <= set(result["metrics"]["ndcg@10"])
    assert result["settings"]["b"]["method"] == "dpp"
    (tmp_path / "bad.json").write_text(json.dumps({"diversity": 3}))
    rc = main(["compare", str(data_dir), "--model", str(model_dir), "--segment", "rule:heavy-buyers",
               "--a", str(tmp_path / "a.json"), "--b", str(tmp_path / "bad.json")])
    assert rc == 2 and "diversity must be in [0, 1]" in capsys.readouterr().err
