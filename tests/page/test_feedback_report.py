"""Feedback analysis: click rates by position, theme, badge and segment on a hand-made log, their
intervals, and the off-policy comparison of another page on simulated traffic."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from engine.page.feedback_report import (
    NO_BADGE,
    NO_SEGMENT,
    click_rates,
    feedback_report,
    offpolicy_comparison,
    rates_by_badge,
    rates_by_row,
    rates_by_segment,
    rates_by_slot,
    rates_by_theme,
    wilson_interval,
)
from engine.page.layout import Card, Layout, Row
from engine.studio.segments import Segment

ITEMS = ["A", "B", "C", "D"]
USERS = ["u0", "u1", "u2", "u3"]


def fake_studio() -> SimpleNamespace:
    """What the report reads of a studio: the data's indices and the badge arrays (C new, D long-tail)."""
    data = SimpleNamespace(item_index={i: n for n, i in enumerate(ITEMS)}, user_index={u: n for n, u in enumerate(USERS)}, n_users=len(USERS))
    return SimpleNamespace(data=data, is_new=np.array([False, False, True, False]), is_tail=np.array([False, False, False, True]))


def page() -> Layout:
    rows = [Row("top_picks", "Top picks", 3, [Card("A", "a", 1.0, ["pinned"]), Card("B", "b", 0.9), Card("C", "c", 0.8, ["new"])]),
            Row("hidden_gems", "Hidden gems", 1, [Card("D", "d", 0.5, ["long-tail"])])]
    return Layout({"id": "kmeans-1", "size": 3}, {"diversity": 0.0}, rows)


def log(layout_id: str) -> pd.DataFrame:
    """Slot 0: 10 cards, 5 clicks (A, pinned); slot 1: 10 cards, 2 clicks (B); slot 2: 5 cards, 0 clicks (C, new);
    row 1 slot 0: 4 cards, 1 click (D, long-tail); plus 2 cards of a page nobody gave (row 2: "row 3")."""
    rows = []
    for n in range(10):
        rows.append((USERS[n % 4], "A", layout_id, 0, 0, n < 5))
        rows.append((USERS[n % 4], "B", layout_id, 0, 1, n in (0, 7)))
    for n in range(5):
        rows.append((USERS[n % 4], "C", layout_id, 0, 2, False))
    for n in range(4):
        rows.append((USERS[n], "D", layout_id, 1, 0, n == 2))
    rows += [("u0", "B", "otherpage000", 2, 0, True), ("ghost", "A", "otherpage000", 2, 1, False)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "layout_id", "row", "slot", "clicked"])
    frame["shown_at"] = pd.Timestamp("2024-06-01")
    return frame


def by(frame: pd.DataFrame, key: str) -> dict:
    return {k: r for k, r in zip(frame[key], frame.to_dict(orient="records"))}


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = wilson_interval([5, 0, 10], [10, 5, 10])
    assert low[0] == pytest.approx(0.2366, abs=1e-4) and high[0] == pytest.approx(0.7634, abs=1e-4)
    assert low[1] == 0.0 and high[1] == pytest.approx(0.4345, abs=1e-4)
    assert high[2] == 1.0 and low[2] == pytest.approx(0.7225, abs=1e-4)
    assert np.isnan(wilson_interval([0], [0])[0][0])


@pytest.mark.parametrize("interval", ["wilson", "bootstrap"])
def test_rates_by_slot_and_row_on_a_hand_made_log(interval: str) -> None:
    feedback = log(page().layout_id)
    slots = by(rates_by_slot(feedback, interval=interval), "slot")
    assert (slots[0]["impressions"], slots[0]["clicks"]) == (10 + 4 + 1, 5 + 1 + 1)  # slot 0 of rows 0, 1 and 2
    assert (slots[1]["impressions"], slots[1]["clicks"]) == (10 + 1, 2)
    assert (slots[2]["impressions"], slots[2]["clicks"], slots[2]["click_rate"]) == (5, 0, 0.0)
    rows = by(rates_by_row(feedback, interval=interval), "row")
    assert rows[0]["click_rate"] == pytest.approx(7 / 25) and rows[1]["click_rate"] == 0.25 and rows[2]["users"] == 2
    for frame in (rates_by_slot(feedback, interval=interval), rates_by_row(feedback, interval=interval)):
        assert ((frame["low"] <= frame["click_rate"]) & (frame["click_rate"] <= frame["high"])).all(), frame
        assert ((frame["low"] >= 0) & (frame["high"] <= 1)).all()


def test_row_themes_come_from_the_layouts_given() -> None:
    layout = page()
    feedback = log(layout.layout_id)
    themes = by(rates_by_theme(feedback, [layout]), "theme")
    assert set(themes) == {"top_picks", "hidden_gems", "row 3"}
    assert (themes["top_picks"]["impressions"], themes["top_picks"]["clicks"]) == (25, 7)
    assert themes["hidden_gems"]["click_rate"] == 0.25
    assert set(rates_by_theme(feedback)["theme"]) == {"row 1", "row 2", "row 3"}  # no layout: rows by number


def test_badges_follow_the_page_definition_and_pins_need_the_layout() -> None:
    layout = page()
    feedback = log(layout.layout_id)
    badges = by(rates_by_badge(fake_studio(), feedback, [layout]), "badge")
    assert list(badges) == ["new", "long-tail", "pinned", NO_BADGE]
    assert (badges["new"]["impressions"], badges["new"]["clicks"]) == (5, 0)
    assert (badges["long-tail"]["impressions"], badges["long-tail"]["clicks"]) == (4, 1)
    assert (badges["pinned"]["impressions"], badges["pinned"]["clicks"]) == (10, 5)  # A at row 0, slot 0 of the page only
    assert badges[NO_BADGE]["impressions"] == 10 + 1 + 1  # B everywhere, and A shown on the other page
    assert "pinned" not in set(rates_by_badge(fake_studio(), feedback)["badge"])


def test_segment_attribution() -> None:
    feedback = log(page().layout_id)
    segments = [Segment("kmeans-1", "Runners", "learned", np.array([0, 1])), Segment("kmeans-2", "Readers", "learned", np.array([2]))]
    table = rates_by_segment(fake_studio(), feedback, segments)
    rows = by(table, "segment")
    expected = {}
    for user, clicked in zip(feedback["user_id"], feedback["clicked"]):
        seg = {"u0": "kmeans-1", "u1": "kmeans-1", "u2": "kmeans-2"}.get(user, NO_SEGMENT)  # u3 has no segment, nor does "ghost"
        n, k = expected.get(seg, (0, 0))
        expected[seg] = (n + 1, k + int(clicked))
    assert {s: (r["impressions"], r["clicks"]) for s, r in rows.items()} == expected
    assert rows["kmeans-1"]["name"] == "Runners" and rows[NO_SEGMENT]["users"] == 2
    assert table["impressions"].is_monotonic_decreasing
    assert ((table["low"] <= table["click_rate"]) & (table["click_rate"] <= table["high"])).all()


def test_report_bundles_every_table_and_refuses_an_unknown_interval() -> None:
    layout = page()
    feedback = log(layout.layout_id)
    report = feedback_report(fake_studio(), feedback, [layout], [Segment("kmeans-1", "Runners", "learned", np.array([0, 1]))])
    assert set(report) == {"summary", "position", "slot", "row", "theme", "badge", "segment"}
    summary = report["summary"]
    assert summary["impressions"] == len(feedback) and summary["clicks"] == int(feedback["clicked"].sum())
    assert summary["low"] <= summary["click_rate"] <= summary["high"] and not summary["explored"]
    assert len(report["position"]) == feedback[["row", "slot"]].drop_duplicates().shape[0]
    with pytest.raises(ValueError, match="interval must be one of"):
        click_rates(feedback, "slot", interval="normal")


def test_offpolicy_comparison_on_simulated_traffic(demo_studio) -> None:
    from engine.page.rerank import Settings, rank_segment
    from engine.page.simulate import simulate_segment
    from engine.studio.segments import learned_segments

    segment = learned_segments(demo_studio, "kmeans", k=6).segments[0]
    settings = Settings(rows=[("top_picks", 8), ("hidden_gems", 8)])
    logged = rank_segment(demo_studio, segment, settings, explain=False)
    feedback, summary = simulate_segment(demo_studio, segment, logged, days=6, explore=0.5, seed=3)

    same = offpolicy_comparison(demo_studio, feedback, logged, settings, segment=segment, n_boot=200)
    assert same["current_layout_id"] == logged.layout_id and same["explored"]
    assert same["current"]["support"] == 1.0
    assert same["current"]["click_rate"] == pytest.approx(same["logged_page"]["click_rate"])
    assert same["logged"]["click_rate"] == pytest.approx(summary["click_rate"])
    for part in ("logged", "logged_page", "current"):
        lo, hi = same[part]["ci95"]
        assert lo <= same[part]["click_rate"] <= hi
    lo, hi = same["difference"]["ci95"]
    assert lo <= same["difference"]["value"] <= hi

    other = offpolicy_comparison(demo_studio, feedback, logged, {"diversity": 0.8, "long_tail": 0.5}, segment=segment, n_boot=200)
    assert other["current_layout_id"] != logged.layout_id
    assert other["settings"]["rows"] == [{"theme": "top_picks", "slots": 8}, {"theme": "hidden_gems", "slots": 8}]  # the logged slots
    assert 0 < other["current"]["matched_impressions"] < len(feedback)
    assert "SNIPS" in other["sentence"] and "weight" in other["sentence"]
    pbm = other["current_position_model"]  # the explored log moves items between slots: the position model applies
    assert pbm["support"] >= other["current"]["support"] and pbm["ci95"][0] <= pbm["click_rate"] <= pbm["ci95"][1]
    assert "position model" in other["sentence"]

    with pytest.raises(ValueError, match="no row of the logged page"):
        offpolicy_comparison(demo_studio, feedback.assign(layout_id="elsewhere"), logged, settings, segment=segment)
