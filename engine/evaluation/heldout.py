"""Held-out evaluation of recommenders: tuning on validation, full-ranking metrics on test, JSON report."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from engine.evaluation import metrics as M
from engine.models.baselines import BASELINES, Recommender
from engine.core.constants import DEFAULT_K, HEAD_SHARE, MAP_K, SEED
from engine.data.splits import Split

EVAL_BATCH = 2048  # users scored at once: bounds memory to EVAL_BATCH x n_items floats
# Held-out users judged at most: a seeded random sample above it. Every metric's interval then
# comes from the sample (50,000 users give NDCG@10 intervals of about +-1.5% of the value on the
# demo store), and scoring a million users against 100,000 items for every model and every
# validation epoch is no longer the cost of a shop-sized store.
EVAL_MAX_USERS = 50_000
LIST_K = max(DEFAULT_K, MAP_K)


@dataclass
class EvalContext:
    """Everything metrics need for one stage of a split, computed once and shared by all models."""

    stage: str
    users: np.ndarray
    targets: list[np.ndarray]
    n_items: int
    n_train_users: int
    item_counts: np.ndarray
    item_user_counts: np.ndarray
    is_tail: np.ndarray
    item_vectors: np.ndarray | None = field(default=None, repr=False)
    sampled_from: int | None = None  # held-out users before sampling, when a sample is judged

    @classmethod
    def build(cls, split: Split, stage: str, item_vectors: np.ndarray | None = None,
              max_users: int | None = EVAL_MAX_USERS, seed: int = SEED) -> "EvalContext":
        """The stage's held-out users and targets (a seeded sample of ``max_users`` when there are more)."""
        fit = split.fit_data(stage)
        users, targets = split.targets(stage)
        sampled_from = None
        if max_users is not None and len(users) > max_users:
            keep = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
            sampled_from = len(users)
            users, targets = users[keep], [targets[i] for i in keep]
        counts = fit.item_counts()
        return cls(
            sampled_from=sampled_from,
            stage=stage,
            users=users,
            targets=targets,
            n_items=split.n_items,
            n_train_users=int(fit.interactions["uidx"].nunique()),
            item_counts=counts,
            item_user_counts=fit.item_user_counts(),
            is_tail=M.head_tail_split(counts, HEAD_SHARE),
            item_vectors=item_vectors,
        )


def recommend_lists(model, users: np.ndarray, k: int = LIST_K, mask_history: bool = True, batch: int = EVAL_BATCH) -> np.ndarray:
    """Top-k item lists for many users, scored in batches: (U, k) int."""
    out = []
    for start in range(0, len(users), batch):
        items, _ = model.rank(users[start : start + batch], k, mask_history=mask_history)
        out.append(items)
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def list_metrics(recs: np.ndarray, ctx: EvalContext, k: int = DEFAULT_K) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Aggregate metrics of top-k lists (the JSON keys) plus per-user accuracy arrays for bootstraps."""
    acc = M.accuracy_per_user(recs, ctx.targets, k)
    acc_map = M.accuracy_per_user(recs, ctx.targets, MAP_K)
    out = {
        f"ndcg@{k}": float(acc["ndcg"].mean()),
        f"recall@{k}": float(acc["recall"].mean()),
        f"hr@{k}": float(acc["hr"].mean()),
        f"mrr@{k}": float(acc["mrr"].mean()),
        f"map@{MAP_K}": float(acc_map["map"].mean()),
        f"recall@{MAP_K}": float(acc_map["recall"].mean()),
        f"coverage@{k}": M.coverage_at_k(recs, ctx.n_items, k),
        f"tail_share@{k}": M.tail_share_at_k(recs, ctx.is_tail, k),
        f"novelty@{k}": M.novelty_at_k(recs, ctx.item_user_counts, ctx.n_train_users, k),
        f"avg_popularity@{k}": M.avg_popularity_at_k(recs, ctx.item_counts, k),
        f"gini@{k}": M.gini_at_k(recs, ctx.n_items, k),
        f"ild@{k}": M.ild_at_k(recs, ctx.item_vectors, k),
    }
    lo, hi = M.bootstrap_ci(acc["ndcg"]) if len(acc["ndcg"]) > 1 else (out[f"ndcg@{k}"],) * 2
    out[f"ndcg@{k}_ci95"] = [float(lo), float(hi)]
    per_user = {f"ndcg@{k}": acc["ndcg"], f"recall@{MAP_K}": acc_map["recall"], f"map@{MAP_K}": acc_map["map"], f"hr@{k}": acc["hr"]}
    return out, per_user


def evaluate_model(model, ctx: EvalContext, mask_history: bool = True) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Rank every evaluated user's full catalogue and score the lists."""
    start = time.perf_counter()
    recs = recommend_lists(model, ctx.users, LIST_K, mask_history)
    result, per_user = list_metrics(recs, ctx)
    result["eval_seconds"] = round(time.perf_counter() - start, 3)
    return result, per_user


def tune(make: Callable[[], Recommender], split: Split, valid_ctx: EvalContext | None, mask_history: bool = True) -> dict:
    """The parameter-grid point with the best validation NDCG@10 (models fitted on training data only;
    each grid point is scored by the model's ``for_tuning`` stand-in, the model itself unless it has
    a cheaper one).

    Returns:
        ``{"params": {...}}`` plus ``"valid_ndcg@10"`` (score per grid point) when there was a grid
        and validation users; empty params otherwise.
    """
    grid = make().param_grid
    info: dict = {"params": {}}
    if grid and valid_ctx is not None and len(valid_ctx.users):
        names = list(grid)
        scores = {}
        fit = split.fit_data("valid")
        for values in itertools.product(*(grid[n] for n in names)):
            model = make()
            for name, value in zip(names, values):
                setattr(model, name, value)
            model = model.for_tuning(fit).fit(fit)
            res, _ = evaluate_model(model, valid_ctx, mask_history)
            scores[values] = res[f"ndcg@{DEFAULT_K}"]
        best = max(scores, key=lambda v: (scores[v], -list(scores).index(v)))
        info["params"] = dict(zip(names, best))
        info["valid_ndcg@10"] = {"/".join(map(str, v)): round(s, 5) for v, s in scores.items()}
    return info


def tune_and_fit(make: Callable[[], Recommender], split: Split, valid_ctx: EvalContext | None, mask_history: bool = True) -> tuple[Recommender, dict]:
    """Pick the parameter-grid point with the best validation NDCG@10 (:func:`tune`), then refit on train + valid.

    Returns:
        (model fitted on the test stage's data, info with chosen params, validation scores and fit_seconds).
    """
    start = time.perf_counter()
    info = tune(make, split, valid_ctx, mask_history)
    model = make()
    for name, value in info["params"].items():
        setattr(model, name, value)
    model.fit(split.fit_data("test"))
    info["fit_seconds"] = round(time.perf_counter() - start, 3)
    if not info["params"]:
        info["params"] = model.get_params()
    return model, info


def evaluate_on_split(
    split: Split,
    names: Iterable[str] = tuple(BASELINES),
    *,
    trained: Mapping[str, Recommender] | None = None,
    text_vectors: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
    mask_history: bool = True,
    progress: Callable[[str], None] | None = None,  # called after each model
) -> tuple[dict[str, dict], dict[str, dict[str, np.ndarray]], EvalContext]:
    """Evaluate recommenders on a split's test stage: the one function behind ``homepage
    evaluate``, ``homepage baselines``, the model page and the benchmarks.

    Args:
        split: the held-out split.
        names: in order, any of: a name of ``trained``; ``zero_shot`` (the untrained text model,
            needs ``text_vectors``); a baseline (tuned on validation, then refit on train +
            validation).
        trained: already-trained recommenders by name (the fine-tuned ranker): only their
            histories are fitted to the test stage.
        text_vectors: (I, H) pretrained text vectors for ``zero_shot``; None: no item text.
        item_vectors: (I, H) vectors for intra-list diversity (None: ild is null).
        mask_history: items in a user's history are never recommended.
        progress: called with each name once it is evaluated.

    Returns:
        (metrics by name, per-user accuracy arrays by name, the test context). A name that cannot
        run here (zero_shot without text) gets ``{"note": ...}`` and no per-user arrays.
    """
    test_ctx = EvalContext.build(split, "test", item_vectors)
    valid_ctx = None
    results, per_user = {}, {}
    for name in names:
        start = time.perf_counter()
        if trained is not None and name in trained:
            res, pu = evaluate_model(trained[name].fit(split.fit_data("test")), test_ctx, mask_history)
        elif name == "zero_shot":
            if text_vectors is None:
                results[name] = {"note": "no item text in this data set: zero-shot needs text"}
                if progress:
                    progress(name)
                continue
            from engine.models.finetuned import ZeroShot

            res, pu = evaluate_model(ZeroShot(text_vectors).fit(split.fit_data("test")), test_ctx, mask_history)
            res["fit_seconds"] = round(time.perf_counter() - start, 3)
        elif name in BASELINES:
            valid_ctx = valid_ctx or EvalContext.build(split, "valid", item_vectors)
            model, info = tune_and_fit(BASELINES[name], split, valid_ctx, mask_history)
            res, pu = evaluate_model(model, test_ctx, mask_history)
            res.update(info)
        else:
            raise ValueError(f"unknown model {name!r}: choose from {', '.join([*(trained or {}), 'zero_shot', *BASELINES])}")
        results[name], per_user[name] = res, pu
        if progress:
            progress(name)
    return results, per_user, test_ctx


def report(dataset: str, split: Split, ctx: EvalContext, models: dict[str, dict], mask_history: bool) -> dict:
    """The JSON report every command writes (keys are a contract with other tools)."""
    out = {
        "dataset": dataset,
        "protocol": split.protocol,
        "k": DEFAULT_K,
        "n_users": int(len(ctx.users)),
        "n_items": int(split.n_items),
        "masked_history": mask_history,
        "split": split.describe(),
        "models": models,
    }
    if ctx.sampled_from is not None:  # a new key only where a sample was judged
        out["sampled_from_users"] = int(ctx.sampled_from)
    return out


def markdown_table(models: dict[str, dict], keys: tuple[str, ...] = ("ndcg@10", "recall@10", "hr@10", "map@12", "coverage@10", "tail_share@10", "novelty@10", "ild@10", "gini@10", "fit_seconds")) -> str:
    """A markdown table of models x metrics, for the terminal and docs/RESULTS.md."""
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, res in models.items():
        cells = []
        for key in keys:
            value = res.get(key)
            if value is None:
                cells.append("–")
            elif key == "ndcg@10" and "ndcg@10_ci95" in res:
                lo, hi = res["ndcg@10_ci95"]
                cells.append(f"{value:.4f} [{lo:.4f}, {hi:.4f}]")
            elif key.endswith("seconds"):
                cells.append(f"{value:.1f}")
            else:
                cells.append(f"{value:.4f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
