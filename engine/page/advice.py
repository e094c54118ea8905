"""Layout advice: the diversity and long-tail settings that gain the most of one metric while another
stays within a guardrail of the plain ranking.

The points are the accuracy–diversity frontier (:func:`engine.page.judge.frontier`: one row per
(diversity, long_tail) setting, judged on the segment's held-out members). The rule:

1. the plain ranking is the point with diversity 0 and long tail 0;
2. a point is allowed when its guardrail metric (NDCG@10) is at least (1 - max_drop) times the
   plain ranking's, on the point estimates;
3. among allowed points, the one with the highest goal metric (the page's long-tail share) wins;
   ties go to the higher guardrail metric, then to the smaller knob settings;
4. when no allowed point beats the plain ranking's goal metric, the advice is the plain ranking.

The guardrail is checked on point estimates: a chosen point's NDCG@10 interval may reach below the
threshold, and the sentence shows it so that it can be read. Page metrics (long-tail share,
diversity) are the same for every member, so they come without an interval unless the points carry
one (``<metric>_ci95``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

PLAIN = {"diversity": 0.0, "long_tail": 0.0}
LABELS = {"ndcg@10": "NDCG@10", "recall@10": "Recall@10", "hr@10": "HR@10", "ild@10": "diversity (ILD@10)",
          "novelty@10": "novelty@10", "coverage@40": "coverage of the page"}
_TOLERANCE = 1e-12  # a point exactly at the guardrail is allowed despite rounding


@dataclass(frozen=True)
class Goal:
    """What to gain: the metric to maximise (default: the long-tail share of the page)."""

    metric: str = "tail_share@40"


@dataclass(frozen=True)
class Guardrail:
    """What to keep: ``metric`` may fall at most ``max_drop`` (relative, 0.05 = 5%) below the plain ranking's."""

    metric: str = "ndcg@10"
    max_drop: float = 0.05

    def __post_init__(self):
        if not (isinstance(self.max_drop, (int, float)) and 0.0 <= float(self.max_drop) <= 1.0):
            raise ValueError(f"guardrail: max_drop must be a share between 0 and 1, got {self.max_drop!r}")


@dataclass
class Advice:
    """The advised settings and what they gain and cost.

    Attributes:
        settings: ``{"diversity", "long_tail"}`` to set (the other knobs stay as they were).
        plain: True when the advice is the plain ranking.
        point: the chosen point's metrics (a frontier row as a dict).
        baseline: the plain ranking's metrics.
        goal, guardrail: what was asked.
        threshold: the lowest guardrail metric allowed, (1 - max_drop) x the plain ranking's.
        allowed: how many points met the guardrail (the plain ranking included).
        sentence: one sentence saying what the advice gains and costs, with intervals where known.
    """

    settings: dict
    plain: bool
    point: dict = field(repr=False)
    baseline: dict = field(repr=False)
    goal: Goal
    guardrail: Guardrail
    threshold: float | None
    allowed: int
    sentence: str


def _label(metric: str) -> str:
    if metric in LABELS:
        return LABELS[metric]
    if metric.startswith("tail_share@"):
        return f"long-tail share@{metric.split('@', 1)[1]}" if metric != "tail_share@40" else "long-tail share of the page"
    return metric


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _interval(point: Mapping, metric: str) -> tuple[float, float] | None:
    ci = point.get(f"{metric}_ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_number(v) is not None for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def _with_ci(point: Mapping, metric: str) -> str:
    value = _number(point.get(metric))
    if value is None:
        return "–"
    ci = _interval(point, metric)
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def _points(frontier_points) -> list[dict]:
    if isinstance(frontier_points, pd.DataFrame):
        return frontier_points.to_dict(orient="records")
    return [dict(p) for p in frontier_points]


def _goal_metric(goal: Goal, points: list[dict]) -> str:
    """The goal's metric, or (for a long-tail share the points lack) the one at their largest cutoff."""
    if any(goal.metric in p for p in points) or not goal.metric.startswith("tail_share@"):
        return goal.metric
    cutoffs = sorted({int(k.split("@", 1)[1]) for p in points for k in p if k.startswith("tail_share@") and k.split("@", 1)[1].isdigit()})
    return f"tail_share@{cutoffs[-1]}" if cutoffs else goal.metric


def advise(frontier_points: pd.DataFrame | Iterable[Mapping], goal: Goal | str = Goal(), guardrail: Guardrail | float = Guardrail()) -> Advice:
    """The settings that gain the most of ``goal`` while ``guardrail`` holds (rule in the module docstring).

    Args:
        frontier_points: the frontier (a DataFrame of :func:`engine.page.judge.frontier`, or dicts)
            with ``diversity``, ``long_tail``, the goal's and the guardrail's metrics and, optionally,
            ``<metric>_ci95`` intervals.
        goal: a :class:`Goal` or the metric to maximise.
        guardrail: a :class:`Guardrail`, or the largest relative drop of NDCG@10 (0.05).

    Returns:
        The :class:`Advice`.

    Raises:
        ValueError: no plain point (diversity 0, long tail 0), or the metrics are missing.
    """
    goal = Goal(goal) if isinstance(goal, str) else goal
    guardrail = Guardrail(max_drop=float(guardrail)) if isinstance(guardrail, (int, float)) else guardrail
    points = _points(frontier_points)
    metric = _goal_metric(goal, points)
    plain = [p for p in points if _number(p.get("diversity")) == 0.0 and _number(p.get("long_tail")) == 0.0]
    if not plain:
        raise ValueError("the frontier has no plain ranking (diversity 0, long tail 0) to measure the guardrail against")
    base = plain[0]
    for name in (metric, guardrail.metric):
        if not any(name in p for p in points):
            raise ValueError(f"the frontier has no {name} column")
    base_guard, base_goal = _number(base.get(guardrail.metric)), _number(base.get(metric))
    threshold = None if base_guard is None else (1.0 - guardrail.max_drop) * base_guard
    gr_label, goal_label = _label(guardrail.metric), _label(metric)
    if threshold is None:  # nothing held out to judge by: stay with the plain ranking
        allowed = [base]
    else:
        allowed = [p for p in points if (g := _number(p.get(guardrail.metric))) is not None and g >= threshold - _TOLERANCE]

    def value(p: dict, name: str) -> float:
        number = _number(p.get(name))
        return -math.inf if number is None else number

    def rank(p: dict) -> tuple:
        knobs = (_number(p.get("diversity")) or 0.0) + (_number(p.get("long_tail")) or 0.0)
        return value(p, metric), value(p, guardrail.metric), -knobs

    best = max(allowed, key=rank)
    best_goal = _number(best.get(metric))
    is_plain = best is base or best_goal is None or base_goal is None or best_goal <= base_goal
    chosen = base if is_plain else best
    settings = {"diversity": float(chosen.get("diversity", 0.0)), "long_tail": float(chosen.get("long_tail", 0.0))}
    drop = f"{guardrail.max_drop:.0%}"
    if threshold is None:
        sentence = (f"Keep the plain ranking: the segment has no held-out interactions to judge {gr_label} by, "
                    f"so no setting can be shown to keep it within {drop}.")
    elif is_plain:
        sentence = (f"Keep the plain ranking (diversity 0, long tail 0): no setting on the grid raises the {goal_label} above "
                    f"{_with_ci(base, metric)} while keeping {gr_label} within {drop} of its {_with_ci(base, guardrail.metric)}.")
    else:
        sentence = (f"{goal_label[0].upper()}{goal_label[1:]} {_with_ci(base, metric)} → {_with_ci(chosen, metric)} for {gr_label} "
                    f"{_with_ci(base, guardrail.metric)} → {_with_ci(chosen, guardrail.metric)} with diversity {settings['diversity']:.2f} "
                    f"and long tail {settings['long_tail']:.2f}, the most {goal_label} among the {len(allowed)} settings whose "
                    f"{gr_label} stays within {drop} of the plain ranking's (at least {threshold:.3f}).")
    return Advice(settings, is_plain, chosen, base, Goal(metric), guardrail, threshold, len(allowed), sentence)
