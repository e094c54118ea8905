"""Two-stage ranking: candidates from several recommenders, re-ranked by a LambdaRank
gradient-boosted model (LightGBM) over (user, candidate) cross features.

Stage 1: every source (the fine-tuned two-tower model, re-buy, EASE, recent popularity ...)
proposes its top ``per_source`` items per user; their union is the user's candidate list.
Stage 2: a ``lightgbm.LGBMRanker`` (objective ``lambdarank``) scores each (user, candidate) pair
from the features in :data:`FEATURES`; candidates are ranked by that score, every other item
after them by popularity.

Training (:meth:`TwoStage.train`) uses the validation window: sources are fitted on the training
interactions only, candidates and features come from them, and a candidate is positive when the
user interacts with it in the validation window. Nothing of the validation or test windows reaches
a feature. For the test verdict the sources are refitted on train + validation (``fit``), as the
baselines are, and the learned ranker is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.core.constants import TIME_COL
from engine.data.splits import FitData, Split
from engine.models.baselines import Recommender
from engine.models.topk import mask_rows, top_k

BASE_FEATURES = (
    "user_history_len",  # log1p of the user's interactions
    "item_pop_all",  # log1p of the item's interactions
    "item_pop_7d",  # log1p of the item's interactions in the last 7 days
    "item_trend",  # last 7 days against the 7 before: (a + 1) / (b + 1)
    "item_age_days",  # days since the item's first interaction
    "user_item_count",  # times the user had this item
    "user_item_recency",  # the item's place among the user's own items, latest = 1 (0: never had it)
    "user_item_days_since",  # days since the user last had it (-1: never)
    "user_category_share",  # share of the user's history in the item's category (when items have one)
    "price_ratio",  # price against the user's mean price (when items have prices; 1 otherwise)
    "text_sim_last",  # cosine of the item's text vector with the user's last item (when there is text)
    "text_sim_max5",  # the largest cosine with the user's last five items
)


@dataclass(frozen=True)
class TwoStageConfig:
    """Settings of the candidate union and of the LambdaRank model."""

    per_source: int = 100  # candidates each source proposes per user
    keep_history: bool = False  # may a user's own past items be candidates (repeat purchases)
    n_estimators: int = 400  # boosting rounds at most (early stopping on held-out validation users)
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    early_stopping: int = 30  # rounds without NDCG@10 gain on the held-out users before stopping
    holdout_share: float = 0.2  # validation users set aside for early stopping
    max_train_users: int = 20_000  # validation users sampled for training pairs at most
    base_source: str | None = None  # whose scores (z-scored per user) the trees correct; None: the first source
    seed: int = 42

    def __post_init__(self):
        if self.per_source < 1 or not 0 < self.holdout_share < 1:
            raise ValueError("per_source must be at least 1 and holdout_share in (0, 1)")


@dataclass
class _Context:
    """What features need from one stage's training data, computed once."""

    fit: FitData
    now: pd.Timestamp
    sequences: dict[int, np.ndarray]
    times: dict[int, np.ndarray]
    pop_all: np.ndarray
    pop_7d: np.ndarray
    trend: np.ndarray
    age_days: np.ndarray
    category: np.ndarray | None = None
    price: np.ndarray | None = None
    text: np.ndarray | None = field(default=None, repr=False)


class TwoStage(Recommender):
    """Candidates from ``sources``, re-ranked by a LambdaRank model (see the module docstring).

    Args:
        sources: name -> recommender; each is fitted on every stage's data by :meth:`fit` (a trained
            model, such as the fine-tuned ranker, only attaches histories there).
        items: the catalogue (``category`` and ``price`` columns are used when present).
        text_vectors: (I, H) item text vectors, or None when items have no text.
        config: the settings.
    """

    name = "two_stage"

    def __init__(self, sources: Mapping[str, Recommender], items: pd.DataFrame, text_vectors: np.ndarray | None = None,
                 config: TwoStageConfig | None = None):
        self.sources = dict(sources)
        self.items = items
        self.text_vectors = text_vectors
        self.config = config or TwoStageConfig()

    @property
    def feature_names(self) -> list[str]:
        return [*BASE_FEATURES, *(f"{name}_{kind}" for name in self.sources for kind in ("score", "rank"))]

    # -- stages ---------------------------------------------------------------------------------
    def fit(self, data: FitData) -> "TwoStage":
        """Fit every source on ``data`` and remember what features need from it."""
        self._remember(data)
        for source in self.sources.values():
            source.fit(data)
        self.context_ = self._context(data)
        return self

    def train(self, split: Split) -> "TwoStage":
        """Learn the ranker on the validation window (sources fitted on training data only), then
        leave the model fitted on the validation stage; call :meth:`fit` with the test stage's data
        to score test users."""
        import lightgbm

        c = self.config
        if c.base_source is not None and c.base_source not in self.sources:
            raise ValueError(f"base_source {c.base_source!r} is not one of the sources {sorted(self.sources)}")
        self.fit(split.fit_data("valid"))
        users, targets = split.targets("valid")
        rng = np.random.default_rng(c.seed)
        if len(users) > c.max_train_users:
            keep = np.sort(rng.choice(len(users), c.max_train_users, replace=False))
            users, targets = users[keep], [targets[i] for i in keep]
        frame = self.pairs(users)
        target_sets = {int(u): set(t.tolist()) for u, t in zip(users, targets)}
        frame["label"] = [int(i in target_sets[u]) for u, i in zip(frame["user"].to_numpy(), frame["item"].to_numpy())]
        # Users without a positive among their candidates carry no ranking signal.
        useful = frame.groupby("user")["label"].transform("max") > 0
        frame = frame[useful]
        if frame.empty:
            raise ValueError("no validation user has a held-out item among the candidates: stage 2 has nothing to learn")
        groups = frame["user"].unique()
        held = set(rng.choice(groups, max(1, int(len(groups) * c.holdout_share)), replace=False).tolist()) if len(groups) > 1 else set()
        is_held = frame["user"].isin(held).to_numpy()
        train, hold = frame[~is_held], frame[is_held]
        self.ranker_ = lightgbm.LGBMRanker(
            objective="lambdarank", n_estimators=c.n_estimators, learning_rate=c.learning_rate, num_leaves=c.num_leaves,
            min_child_samples=c.min_child_samples, random_state=c.seed, n_jobs=2, verbose=-1,
        )
        kwargs = {}
        if len(hold):
            kwargs = {"eval_X": (hold[self.feature_names],), "eval_y": (hold["label"],), "eval_group": [hold.groupby("user", sort=False).size().to_numpy()],
                      "eval_init_score": [self._base_margin(hold)],
                      "eval_at": [10], "callbacks": [lightgbm.early_stopping(c.early_stopping, verbose=False)]}
        # The trees learn a correction of the base source's ranking (its per-user z-scores are the
        # starting margin), so a weak ensemble cannot rank worse than stage 1 by coarse leaves.
        self.ranker_.fit(train[self.feature_names], train["label"], group=train.groupby("user", sort=False).size().to_numpy(),
                         init_score=self._base_margin(train), **kwargs)
        self.training_pairs_ = len(frame)
        return self

    # -- scoring --------------------------------------------------------------------------------
    def score(self, users: np.ndarray) -> np.ndarray:
        """Stage-2 scores for the users' candidates, above every other item (those by popularity)."""
        users = np.asarray(users, dtype=np.int64)
        ctx = self.context_
        backoff = ctx.pop_all / (ctx.pop_all.max() + 1.0) if ctx.pop_all.max() > 0 else ctx.pop_all
        out = np.broadcast_to(backoff.astype(np.float32), (len(users), self.n_items_)).copy()
        frame = self.pairs(users)
        if frame.empty:
            return out
        predicted = self.ranker_.predict(frame[self.feature_names]) + self._base_margin(frame)
        predicted = predicted - predicted.min() + 2.0  # every candidate above every non-candidate
        row_of = {int(u): r for r, u in enumerate(users)}
        rows = np.array([row_of[int(u)] for u in frame["user"].to_numpy()])
        out[rows, frame["item"].to_numpy()] = predicted.astype(np.float32)
        return out

    def _base_margin(self, frame: pd.DataFrame) -> np.ndarray:
        """The base source's scores standardised within each user's candidates."""
        name = self.config.base_source or next(iter(self.sources))
        scores = frame[f"{name}_score"].astype(np.float64)
        grouped = scores.groupby(frame["user"].to_numpy())
        std = grouped.transform("std").fillna(0.0).to_numpy()
        return ((scores - grouped.transform("mean")).to_numpy() / np.where(std > 0, std, 1.0))

    def pairs(self, users: np.ndarray) -> pd.DataFrame:
        """The candidate (user, item) pairs of ``users`` with every feature (one row each)."""
        c = self.config
        users = np.asarray(users, dtype=np.int64)
        per_source: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, source in self.sources.items():
            scores = source.score(users).astype(np.float32, copy=True)
            if not c.keep_history:
                mask_rows(scores, users, self.history_)
            items, _ = top_k(scores, min(c.per_source, self.n_items_))
            per_source[name] = (scores, items)  # (U, I) scores, (U, K) top items
        cand = [np.unique(np.concatenate([per_source[n][1][r] for n in self.sources])) for r in range(len(users))]
        user_col = np.repeat(users, [len(x) for x in cand])
        item_col = np.concatenate(cand) if cand else np.zeros(0, dtype=np.int64)
        row_col = np.repeat(np.arange(len(users)), [len(x) for x in cand])
        frame = pd.DataFrame({"user": user_col, "item": item_col})
        for name, (scores, items) in per_source.items():
            rank = np.full(scores.shape, c.per_source + 1, dtype=np.float32)
            np.put_along_axis(rank, items, np.arange(1, items.shape[1] + 1, dtype=np.float32)[None, :].repeat(len(users), 0), axis=1)
            frame[f"{name}_score"] = np.nan_to_num(scores[row_col, item_col], neginf=-1e9)
            frame[f"{name}_rank"] = rank[row_col, item_col]
        for key, values in self._base_features(user_col, item_col).items():
            frame[key] = values
        return frame

    # -- features -------------------------------------------------------------------------------
    def _context(self, data: FitData) -> _Context:
        inter = data.interactions
        now = inter[TIME_COL].max()
        items, times = inter["iidx"].to_numpy(), inter[TIME_COL]
        last7 = (times > now - pd.Timedelta(days=7)).to_numpy()
        prev7 = ((times > now - pd.Timedelta(days=14)) & ~last7).to_numpy() if len(inter) else last7
        pop_all = np.bincount(items, minlength=data.n_items).astype(np.float64)
        pop_7d = np.bincount(items[last7], minlength=data.n_items).astype(np.float64)
        pop_prev = np.bincount(items[prev7], minlength=data.n_items).astype(np.float64)
        first = pd.Series(times.to_numpy()).groupby(items).min()
        age = np.full(data.n_items, -1.0)
        age[first.index.to_numpy()] = (now - first).dt.total_seconds().to_numpy() / 86400.0
        order = np.argsort(inter["uidx"].to_numpy(), kind="stable")
        u_sorted = inter["uidx"].to_numpy()[order]
        starts = np.flatnonzero(np.r_[True, u_sorted[1:] != u_sorted[:-1]]) if len(u_sorted) else np.zeros(0, int)
        ends = np.r_[starts[1:], len(u_sorted)]
        t_sorted = times.to_numpy()[order]
        i_sorted = items[order]
        sequences = {int(u_sorted[s]): i_sorted[s:e] for s, e in zip(starts, ends)}
        stamps = {int(u_sorted[s]): t_sorted[s:e] for s, e in zip(starts, ends)}
        category = self.items["category"].astype(str).to_numpy() if "category" in self.items.columns else None
        price = pd.to_numeric(self.items["price"], errors="coerce").to_numpy(dtype=np.float64) if "price" in self.items.columns else None
        text = None
        if self.text_vectors is not None:
            norms = np.linalg.norm(self.text_vectors, axis=1, keepdims=True)
            text = (self.text_vectors / np.maximum(norms, 1e-9)).astype(np.float32)
        return _Context(data, now, sequences, stamps, pop_all, pop_7d, (pop_7d + 1.0) / (pop_prev + 1.0), age, category, price, text)

    def _base_features(self, users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        ctx = self.context_
        n = len(users)
        out = {key: np.zeros(n, dtype=np.float32) for key in BASE_FEATURES}
        out["item_pop_all"] = np.log1p(ctx.pop_all[items]).astype(np.float32)
        out["item_pop_7d"] = np.log1p(ctx.pop_7d[items]).astype(np.float32)
        out["item_trend"] = ctx.trend[items].astype(np.float32)
        out["item_age_days"] = ctx.age_days[items].astype(np.float32)
        out["price_ratio"][:] = 1.0
        out["user_item_days_since"][:] = -1.0
        empty = np.zeros(0, dtype=np.int64)
        start = 0
        while start < n:
            user = int(users[start])
            stop = start
            while stop < n and users[stop] == user:
                stop += 1
            cand = items[start:stop]
            seq = ctx.sequences.get(user, empty)
            stamps = ctx.times.get(user)
            out["user_history_len"][start:stop] = np.log1p(len(seq))
            if len(seq):
                counts = pd.Series(seq).value_counts()
                out["user_item_count"][start:stop] = counts.reindex(cand, fill_value=0).to_numpy()
                # The item's place among the user's own items by last interaction, latest = 1.
                last_pos = pd.Series(np.arange(len(seq))).groupby(seq).max()
                place = last_pos.rank(ascending=False, method="first")
                out["user_item_recency"][start:stop] = place.reindex(cand, fill_value=0).to_numpy()
                last_time = pd.Series(stamps).groupby(seq).max()
                days = (ctx.now - pd.to_datetime(last_time)).dt.total_seconds() / 86400.0
                out["user_item_days_since"][start:stop] = days.reindex(cand, fill_value=-1.0).to_numpy()
                if ctx.category is not None:
                    share = pd.Series(ctx.category[seq]).value_counts(normalize=True)
                    out["user_category_share"][start:stop] = share.reindex(ctx.category[cand], fill_value=0.0).to_numpy()
                if ctx.price is not None:
                    mean = np.nanmean(ctx.price[seq]) if np.isfinite(ctx.price[seq]).any() else np.nan
                    if np.isfinite(mean) and mean > 0:
                        out["price_ratio"][start:stop] = np.nan_to_num(ctx.price[cand] / mean, nan=1.0)
                if ctx.text is not None:
                    sims = ctx.text[cand] @ ctx.text[seq[-5:]].T  # (C, <=5)
                    out["text_sim_last"][start:stop] = sims[:, -1]
                    out["text_sim_max5"][start:stop] = sims.max(axis=1)
            start = stop
        return out
