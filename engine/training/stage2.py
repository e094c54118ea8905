"""Stage 2 for a trained fine-tuned model: candidate sources tuned on the validation split, a
LambdaRank booster trained on the validation window, kept only where it ranks better than stage 1
for validation users it never trained on.

How each choice is made, with no per-data-set setting:
- sources: the fine-tuned model, EASE (its lambda tuned on validation NDCG@10, as the baselines
  are), recent popularity (7 days), last-item transitions and, when a user's own items may be
  recommended again (``--keep-history``), re-buy (its order tuned on validation);
- whether to use it: a share of the validation users (:data:`JUDGE_SHARE`) is set aside before
  training; stage 2 is kept when its NDCG@10 on them is above the fine-tuned model's alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from engine.data.splits import Split
from engine.evaluation.heldout import EvalContext, evaluate_model, tune
from engine.evaluation.metrics import paired_bootstrap_ci
from engine.models.baselines import EASE, Rebuy, RecentPopularity, Recommender, Transition
from engine.models.two_stage import TwoStage, TwoStageConfig

JUDGE_SHARE = 0.3  # validation users set aside to judge stage 2 against stage 1
MIN_JUDGED_USERS = 30  # fewer validation users than this: too few to judge, stage 2 is not trained


@dataclasses.dataclass
class Stage2Result:
    """What training stage 2 decided. ``model`` is None when it was not trained or not kept."""

    model: TwoStage | None
    info: dict


def choose_sources(finetuned: Recommender, split: Split, valid_ctx: EvalContext, keep_history: bool) -> tuple[dict[str, Recommender], dict]:
    """Stage 1's candidate sources, their parameters tuned on the validation split."""
    mask = not keep_history
    tuned = {}
    sources: dict[str, Recommender] = {"finetuned": finetuned}
    tuned["ease"] = tune(EASE, split, valid_ctx, mask)["params"]  # no refit here: the sources are fitted per stage
    sources["ease"] = EASE(**tuned["ease"])
    sources["recent_popularity"] = RecentPopularity()
    sources["transition"] = Transition()
    if keep_history:
        tuned["rebuy"] = tune(Rebuy, split, valid_ctx, mask)["params"]
        sources["rebuy"] = Rebuy(**tuned["rebuy"])
    return sources, tuned


def train_stage2(
    split: Split,
    finetuned: Recommender,
    items,
    text_vectors: np.ndarray | None,
    keep_history: bool,
    seed: int = 42,
    log: Callable[[str], None] | None = None,
) -> Stage2Result:
    """Train stage 2 on the validation window and decide, on held-out validation users, whether to keep it.

    Args:
        split: the held-out split the fine-tuned model was trained on.
        finetuned: the trained stage-1 recommender (its histories are refitted here).
        items: the catalogue.
        text_vectors: pretrained item text vectors (text-similarity features), or None.
        keep_history: a user's own past items may be recommended (repeat purchases).
        seed: the random share of judged users and the booster's seed.
        log: called with a line per step.

    Returns:
        The kept model (fitted on the validation stage) or None, and what was measured.
    """
    say = log or (lambda _: None)
    start = time.perf_counter()
    mask = not keep_history
    valid_ctx = EvalContext.build(split, "valid")
    users = valid_ctx.users
    n_judged = int(len(users) * JUDGE_SHARE)
    if n_judged < MIN_JUDGED_USERS:
        return Stage2Result(None, {"used": False, "reason": f"{len(users)} validation users: too few to judge a second stage"})
    rng = np.random.default_rng(seed)
    judged = np.sort(rng.choice(users, n_judged, replace=False))
    sources, tuned = choose_sources(finetuned, split, valid_ctx, keep_history)
    say(f"stage 2: sources {', '.join(sources)}; tuned on validation: {tuned}")
    model = TwoStage(sources, items, text_vectors, TwoStageConfig(keep_history=keep_history, seed=seed))
    try:
        model.train(split, exclude_users=judged)
    except ValueError as exc:  # no validation user has a target among the candidates
        return Stage2Result(None, {"used": False, "reason": str(exc)})
    keep = np.isin(users, judged)
    judge_ctx = dataclasses.replace(valid_ctx, users=users[keep], targets=[t for t, k in zip(valid_ctx.targets, keep) if k])
    two, two_users = evaluate_model(model, judge_ctx, mask)  # sources stand on the validation stage after train()
    one, one_users = evaluate_model(finetuned, judge_ctx, mask)
    diff, lo, hi = paired_bootstrap_ci(one_users["ndcg@10"], two_users["ndcg@10"])
    used = bool(diff > 0)
    info = {
        "used": used,
        "judged_users": int(n_judged),
        "valid_ndcg@10": {"finetuned": round(float(one["ndcg@10"]), 5), "two_stage": round(float(two["ndcg@10"]), 5)},
        "valid_diff_ci95": [round(float(diff), 5), round(float(lo), 5), round(float(hi), 5)],
        "sources": list(sources),
        "tuned": tuned,
        "training_pairs": int(model.training_pairs_),
        "trees": int(model.best_iteration_),
        "seconds": round(time.perf_counter() - start, 1),
    }
    say(f"stage 2: validation NDCG@10 {two['ndcg@10']:.4f} against stage 1's {one['ndcg@10']:.4f} on {n_judged:,} "
        f"held-out validation users: {'kept' if used else 'not kept'}")
    return Stage2Result(model if used else None, info)
