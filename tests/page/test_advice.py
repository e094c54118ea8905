"""Layout advice on hand-made frontiers: the guardrail always holds, and the plain ranking is advised when nothing else qualifies."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.page.advice import Advice, Goal, Guardrail, advise


def point(d: float, t: float, ndcg: float, tail: float, ci: tuple[float, float] | None = None) -> dict:
    return {"diversity": d, "long_tail": t, "ndcg@10": ndcg, "tail_share@40": tail,
            "ndcg@10_ci95": list(ci) if ci else [ndcg - 0.004, ndcg + 0.004]}


PLAIN = point(0.0, 0.0, 0.046, 0.12, (0.040, 0.052))


def test_the_chosen_point_meets_the_guardrail_and_has_the_most_tail() -> None:
    points = [
        PLAIN,
        point(0.25, 0.0, 0.045, 0.15),
        point(0.0, 0.5, 0.044, 0.31, (0.040, 0.048)),  # 4.3% below: allowed, and the most tail among allowed
        point(0.0, 1.0, 0.040, 0.55),  # more tail, but 13% below the plain NDCG@10: never chosen
        point(0.5, 0.5, 0.0438, 0.29),
    ]
    advice = advise(points, Goal("tail_share@40"), Guardrail("ndcg@10", 0.05))
    assert isinstance(advice, Advice) and not advice.plain
    assert advice.settings == {"diversity": 0.0, "long_tail": 0.5}
    assert advice.point["ndcg@10"] >= 0.95 * PLAIN["ndcg@10"]
    assert advice.threshold == pytest.approx(0.95 * 0.046)
    assert advice.allowed == 4
    assert "0.120 → 0.310" in advice.sentence and "0.046 [0.040, 0.052] → 0.044 [0.040, 0.048]" in advice.sentence
    assert "5%" in advice.sentence
    # The same from the frontier's DataFrame, with the defaults (tail share of the page, 5% of NDCG@10).
    assert advise(pd.DataFrame(points)).settings == advice.settings


def test_a_point_below_the_guardrail_is_never_chosen_whatever_its_tail_share() -> None:
    for drop in (0.0, 0.01, 0.05, 0.10, 0.2):
        points = [PLAIN, point(0.0, 1.0, 0.046 * (1 - drop) - 1e-4, 0.9), point(0.25, 0.25, 0.046 * (1 - drop) + 1e-4, 0.2)]
        advice = advise(points, "tail_share@40", Guardrail("ndcg@10", drop))
        assert advice.point["ndcg@10"] >= (1 - drop) * PLAIN["ndcg@10"]
        assert advice.settings == {"diversity": 0.25, "long_tail": 0.25}


def test_when_only_the_plain_ranking_meets_the_guardrail_it_is_advised() -> None:
    points = [point(0.5, 0.5, 0.030, 0.4), PLAIN, point(1.0, 0.0, 0.041, 0.2), point(0.0, 1.0, 0.010, 0.8)]
    advice = advise(points, guardrail=0.05)
    assert advice.plain and advice.settings == {"diversity": 0.0, "long_tail": 0.0}
    assert advice.allowed == 1
    assert advice.sentence.startswith("Keep the plain ranking")
    # Allowed points that do not raise the tail share do not count as a gain either.
    flat = advise([PLAIN, point(0.25, 0.0, 0.047, 0.12), point(0.5, 0.0, 0.046, 0.10)])
    assert flat.plain and flat.settings == {"diversity": 0.0, "long_tail": 0.0}


def test_a_point_exactly_at_the_guardrail_is_allowed_and_ties_prefer_accuracy() -> None:
    edge = point(0.0, 0.75, 0.95 * 0.046, 0.3)
    assert advise([PLAIN, edge]).settings == {"diversity": 0.0, "long_tail": 0.75}
    tie = [PLAIN, point(0.5, 0.5, 0.044, 0.3), point(0.25, 0.5, 0.045, 0.3)]
    assert advise(tie).settings == {"diversity": 0.25, "long_tail": 0.5}


def test_a_frontier_without_the_plain_ranking_or_without_the_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="no plain ranking"):
        advise([point(0.5, 0.5, 0.04, 0.3)])
    with pytest.raises(ValueError, match="no novelty@10 column"):
        advise([PLAIN], Goal("novelty@10"))
    with pytest.raises(ValueError, match="max_drop"):
        Guardrail("ndcg@10", 1.5)


def test_without_held_out_interactions_the_plain_ranking_is_kept() -> None:
    none = [{**PLAIN, "ndcg@10": None, "ndcg@10_ci95": None}, {**point(0.0, 1.0, 0.0, 0.9), "ndcg@10": None}]
    advice = advise(none)
    assert advice.plain and advice.threshold is None and "no held-out interactions" in advice.sentence


def test_advice_on_the_real_frontier(demo_studio) -> None:
    from engine.page.judge import frontier
    from engine.studio.segments import learned_segments

    segment = learned_segments(demo_studio, "kmeans", k=6).segments[0]
    table = frontier(demo_studio, segment, None, (0.0, 0.5), (0.0, 0.5))
    assert table["ndcg@10_ci95"].map(lambda ci: ci is None or len(ci) == 2).all()
    advice = advise(table)
    plain = table[(table.diversity == 0) & (table.long_tail == 0)].iloc[0]
    assert advice.point["ndcg@10"] >= 0.95 * plain["ndcg@10"] - 1e-12
    assert advice.point["tail_share@40"] >= plain["tail_share@40"]
