"""Two-stage ranking: candidates from several recommenders, re-ranked by a LambdaRank
gradient-boosted model (LightGBM) over (user, candidate) cross features.

Stage 1: every source (the fine-tuned two-tower model, EASE, recent popularity, transitions,
re-buy ...) proposes its top ``per_source`` items per user; their union is the user's candidate
list. Stage 2: a LightGBM booster (objective ``lambdarank``) scores each (user, candidate) pair from
the features in :data:`BASE_FEATURES` plus each source's score and rank; candidates are ranked by
that score, every other item after them by popularity.

Training (:meth:`TwoStage.train`) uses the validation window: sources are fitted on the training
interactions only, candidates and features come from them, and a candidate is positive when the
user interacts with it in the validation window. Nothing of the validation or test windows reaches
a feature. For the test verdict the sources are refitted on train + validation (``fit``), as the
baselines are, and the learned booster is applied.

Every feature is computed for all pairs at once from per-user and per-(user, item) tables built
by ``fit``; only the text similarities run one small product per user.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from engine.core.constants import TIME_COL
from engine.core.errors import ModelError
from engine.data.splits import FitData, Split
from engine.models.baselines import BASELINES, Recommender
from engine.models.topk import mask_rows

BASE_FEATURES = (
    "user_history_len",  # log1p of the user's interactions
    "item_pop_all",  # log1p of the item's interactions
    "item_pop_7d",  # log1p of the item's interactions in the last 7 days
    "item_trend",  # last 7 days against the 7 before: (a + 1) / (b + 1)
    "item_age_days",  # days since the item's first interaction (-1: never had one)
    "user_item_count",  # times the user had this item
    "user_item_recency",  # the item's place among the user's own items, latest = 1 (0: never had it)
    "user_item_days_since",  # days since the user last had it (-1: never)
    "user_category_share",  # share of the user's history in the item's category (when items have one)
    "price_ratio",  # price against the user's mean price (when items have prices; 1 otherwise)
    "text_sim_last",  # cosine of the item's text vector with the user's last item (when there is text)
    "text_sim_max5",  # the largest cosine with the user's last five items
)
PAIRS_BLOCK = 2_048  # users whose candidates and features are built at once
BOOSTER_FILE = "stage2.txt"  # LightGBM's own text format
SPEC_FILE = "stage2.json"  # config, sources and feature names


@dataclass(frozen=True)
class TwoStageConfig:
    """Settings of the candidate union and of the LambdaRank model."""

    per_source: int = 100  # candidates each source proposes per user
    keep_history: bool = False  # may a user's own past items be candidates (repeat purchases)
    n_estimators: int = 300  # boosting rounds at most (early stopping on held-out validation users)
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    early_stopping: int = 30  # rounds without NDCG@10 gain on the held-out users before stopping
    holdout_share: float = 0.2  # training users set aside for early stopping
    max_train_users: int = 20_000  # validation users sampled for training pairs at most
    base_source: str | None = None  # whose scores (z-scored per user) the trees correct; None: the first source
    seed: int = 42

    def __post_init__(self):
        if self.per_source < 1 or not 0 < self.holdout_share < 1 or self.n_estimators < 1:
            raise ValueError("per_source and n_estimators must be at least 1 and holdout_share in (0, 1)")

    @classmethod
    def from_dict(cls, values: Mapping) -> "TwoStageConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown stage-2 settings {unknown}")
        return cls(**values)


@dataclass
class _Context:
    """What features need from one stage's training data, computed once by ``fit``."""

    fit: FitData
    now: pd.Timestamp
    user_len: np.ndarray  # (n_users,) interactions per user
    count: sp.csr_matrix  # (n_users, I) times the user had the item
    place: sp.csr_matrix  # (n_users, I) the item's place among the user's items by last interaction, latest = 1
    days_plus_one: sp.csr_matrix  # (n_users, I) 1 + days since the user last had the item
    last5: np.ndarray  # (n_users, 5) the user's last five items, latest last; -1 pads
    pop_all: np.ndarray
    pop_7d: np.ndarray
    trend: np.ndarray
    age_days: np.ndarray
    category: np.ndarray | None = None  # (I,) category codes
    category_share: sp.csr_matrix | None = None  # (n_users, n_categories)
    price: np.ndarray | None = None  # (I,)
    user_price: np.ndarray | None = None  # (n_users,) mean price of the user's items (NaN: unknown)
    text: np.ndarray | None = field(default=None, repr=False)  # (I, H) unit text vectors
    covered: np.ndarray | None = field(default=None, repr=False)  # (n_users,) bool: users with per-user tables; None: all


def _days_before(now: pd.Timestamp, stamps: np.ndarray) -> np.ndarray:
    """Days from each time stamp to ``now``, as floats."""
    return ((now - pd.DatetimeIndex(stamps)).total_seconds() / 86400.0).to_numpy() if len(stamps) else np.zeros(0)


def _lookup(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[j], cols[j]]`` for every j, as a float32 array (0 where not stored)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.asarray(matrix[rows, cols], dtype=np.float32).ravel()


class TwoStage(Recommender):
    """Candidates from ``sources``, re-ranked by a LambdaRank booster (see the module docstring).

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
        self.booster_ = None
        self.best_iteration_ = 0

    @property
    def feature_names(self) -> list[str]:
        return [*BASE_FEATURES, *(f"{name}_{kind}" for name in self.sources for kind in ("score", "rank"))]

    @property
    def base_source(self) -> str:
        return self.config.base_source or next(iter(self.sources))

    # -- stages ---------------------------------------------------------------------------------
    def use_cache(self, folder: str | Path | None) -> "TwoStage":
        """Keep the sources' costly fitted tables (EASE's) in ``folder``, a data directory's
        ``.cache`` (None: no cache); returns self."""
        for source in self.sources.values():
            if hasattr(source, "cache_dir"):
                source.cache_dir = None if folder is None else Path(folder)
        return self

    def fit(self, data: FitData, users: np.ndarray | None = None) -> "TwoStage":
        """Fit every source on ``data`` and build the feature tables from it.

        Args:
            data: the stage's training data.
            users: the only users this model will score (None: every user). Their per-user tables
                come from their own interactions, item statistics and the sources from everyone's,
                so their features are what a fit over every user gives them; scoring anyone else
                raises. A million-user shop's studio holds 100,000 of them: the per-user tables of
                all 26 million interactions took 30 s there.
        """
        self._remember(data)
        for source in self.sources.values():
            source.fit(data)
        self.context_ = self._context(data, users)
        return self

    def train(self, split: Split, exclude_users: np.ndarray | None = None) -> "TwoStage":
        """Learn the booster on the validation window (sources fitted on training data only), then
        leave the model fitted on the validation stage; call :meth:`fit` with the test stage's data
        to score test users.

        Args:
            split: the held-out split.
            exclude_users: validation users kept out of training altogether (to judge stage 2 on
                users it never saw; see ``engine.training.stage2``).
        """
        import lightgbm

        c = self.config
        if c.base_source is not None and c.base_source not in self.sources:
            raise ValueError(f"base_source {c.base_source!r} is not one of the sources {sorted(self.sources)}")
        self.fit(split.fit_data("valid"))
        users, targets = split.targets("valid")
        if exclude_users is not None and len(exclude_users):
            keep = ~np.isin(users, exclude_users)
            users, targets = users[keep], [t for t, k in zip(targets, keep) if k]
        rng = np.random.default_rng(c.seed)
        if len(users) > c.max_train_users:
            keep = np.sort(rng.choice(len(users), c.max_train_users, replace=False))
            users, targets = users[keep], [targets[i] for i in keep]
        frame = self.pairs(users)
        target_rows = np.repeat(np.arange(len(users)), [len(t) for t in targets])
        target_items = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
        positives = sp.csr_matrix((np.ones(len(target_rows), np.float32), (users[target_rows], target_items)),
                                  shape=(self.history_.shape[0], self.n_items_))
        frame["label"] = (_lookup(positives, frame["user"].to_numpy(), frame["item"].to_numpy()) > 0).astype(np.int32)
        # Users without a positive among their candidates carry no ranking signal.
        useful = frame.groupby("user", sort=False)["label"].transform("max").to_numpy() > 0
        frame = frame[useful]
        if frame.empty:
            raise ValueError("no validation user has a held-out item among the candidates: stage 2 has nothing to learn")
        groups = frame["user"].unique()
        held = rng.choice(groups, max(1, int(len(groups) * c.holdout_share)), replace=False) if len(groups) > 1 else np.zeros(0, np.int64)
        is_held = frame["user"].isin(held).to_numpy()
        train, hold = frame[~is_held], frame[is_held]
        params = {"objective": "lambdarank", "learning_rate": c.learning_rate, "num_leaves": c.num_leaves,
                  "min_child_samples": c.min_child_samples, "seed": c.seed, "num_threads": 2, "verbose": -1,
                  "eval_at": [10], "metric": "ndcg", "deterministic": True}
        train_set = lightgbm.Dataset(train[self.feature_names].to_numpy(np.float32), train["label"].to_numpy(),
                                     group=_group_sizes(train), init_score=self._base_margin(train), free_raw_data=True)
        valid_sets, callbacks = [], []
        if len(hold):
            valid_sets = [lightgbm.Dataset(hold[self.feature_names].to_numpy(np.float32), hold["label"].to_numpy(),
                                           group=_group_sizes(hold), init_score=self._base_margin(hold), reference=train_set)]
            callbacks = [lightgbm.early_stopping(c.early_stopping, verbose=False)]
        # The trees learn a correction of the base source's ranking (its per-user z-scores are the
        # starting margin), so a weak ensemble cannot rank worse than stage 1 by coarse leaves.
        self.booster_ = lightgbm.train(params, train_set, num_boost_round=c.n_estimators, valid_sets=valid_sets, callbacks=callbacks)
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        self.training_pairs_ = len(frame)
        self.training_users_ = len(groups)
        return self

    # -- scoring --------------------------------------------------------------------------------
    def candidate_scores(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each user's candidates and their stage-2 scores: (rows into ``users``, items, scores)."""
        frame = self.pairs(users)
        if frame.empty:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        predicted = self.booster_.predict(frame[self.feature_names].to_numpy(np.float32), num_iteration=self.best_iteration_)
        return frame["row"].to_numpy(), frame["item"].to_numpy(), predicted + self._base_margin(frame)

    def score(self, users: np.ndarray) -> np.ndarray:
        """Stage-2 scores for the users' candidates, above every other item (those by popularity)."""
        users = np.asarray(users, dtype=np.int64)
        ctx = self.context_
        backoff = ctx.pop_all / (ctx.pop_all.max() + 1.0) if len(ctx.pop_all) and ctx.pop_all.max() > 0 else ctx.pop_all
        out = np.broadcast_to(backoff.astype(np.float32), (len(users), self.n_items_)).copy()
        rows, items, predicted = self.candidate_scores(users)
        if len(rows):
            out[rows, items] = (predicted - predicted.min() + 2.0).astype(np.float32)  # every candidate above every other item
        return out

    def _base_margin(self, frame: pd.DataFrame) -> np.ndarray:
        """The base source's scores standardised within each user's candidates."""
        scores = frame[f"{self.base_source}_score"].to_numpy(np.float64)
        key = frame["row"].to_numpy()
        grouped = pd.Series(scores).groupby(key)
        mean = grouped.transform("mean").to_numpy()
        std = np.nan_to_num(grouped.transform("std").to_numpy())
        return (scores - mean) / np.where(std > 0, std, 1.0)

    def pairs(self, users: np.ndarray) -> pd.DataFrame:
        """The candidate (user, item) pairs of ``users`` with every feature (one row each), grouped by
        user in the order of ``users``; ``row`` is the user's position in ``users``.

        Users go through in blocks of :data:`PAIRS_BLOCK`: each source's (users, items) score matrix
        exists for one block at a time (20,000 users x 30,000 items x 4 sources took 18.8 GB at once).
        """
        users = np.asarray(users, dtype=np.int64)
        if len(users) <= PAIRS_BLOCK:
            return self._pairs_block(users)
        frames = []
        for start in range(0, len(users), PAIRS_BLOCK):
            frame = self._pairs_block(users[start:start + PAIRS_BLOCK])
            frame["row"] += start
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def _pairs_block(self, users: np.ndarray) -> pd.DataFrame:
        c = self.config
        covered = self.context_.covered
        if covered is not None and len(users) and not covered[users].all():
            raise ValueError(f"user index {int(users[~covered[users]][0])} is not among the users this model was fitted for (TwoStage.fit's users)")
        k = min(c.per_source, self.n_items_)
        per_source: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, source in self.sources.items():
            scores = source.score(users).astype(np.float32, copy=False)  # a new array (Recommender.score), masked in place
            if not c.keep_history:
                mask_rows(scores, users, self.history_)
            # torch.topk alone: candidates need no tie order beyond the boundary (top_k's
            # deterministic tie-breaking cost about 0.3 s per source for 1,000 users x 18k items).
            items = torch.topk(torch.from_numpy(scores), k, dim=1, sorted=True).indices.numpy()
            per_source[name] = (scores, items)  # (U, I) scores, (U, K) top items, best first
        union = np.sort(np.concatenate([items for _, items in per_source.values()], axis=1), axis=1)
        first = np.ones(union.shape, dtype=bool)
        first[:, 1:] = union[:, 1:] != union[:, :-1]
        row_col, _ = np.nonzero(first)
        item_col = union[first]
        if not c.keep_history and len(row_col):  # a source with fewer than k allowed items fills up with masked ones
            allowed = _lookup(self.history_[users], row_col, item_col) == 0
            row_col, item_col = row_col[allowed], item_col[allowed]
        user_col = users[row_col]
        frame = pd.DataFrame({"row": row_col, "user": user_col, "item": item_col})
        ranks = np.arange(1, k + 1, dtype=np.float32)
        for name, (scores, items) in per_source.items():
            rank = sp.csr_matrix((np.tile(ranks, len(users)), (np.repeat(np.arange(len(users)), k), items.ravel())),
                                 shape=(len(users), self.n_items_))
            found = _lookup(rank, row_col, item_col)
            frame[f"{name}_score"] = np.nan_to_num(scores[row_col, item_col], neginf=-1e9)
            frame[f"{name}_rank"] = np.where(found > 0, found, k + 1).astype(np.float32)
        for key, values in self._base_features(user_col, item_col).items():
            frame[key] = values
        return frame

    # -- features -------------------------------------------------------------------------------
    def _context(self, data: FitData, users: np.ndarray | None = None) -> _Context:
        inter = data.interactions
        n_users, n_items = data.n_users, data.n_items
        now = inter[TIME_COL].max() if len(inter) else pd.Timestamp(0)
        i = inter["iidx"].to_numpy()
        times = inter[TIME_COL]
        last7 = (times > now - pd.Timedelta(days=7)).to_numpy()
        prev7 = ((times > now - pd.Timedelta(days=14)) & ~last7).to_numpy()
        pop_all = np.bincount(i, minlength=n_items).astype(np.float64)
        pop_7d = np.bincount(i[last7], minlength=n_items).astype(np.float64)
        pop_prev = np.bincount(i[prev7], minlength=n_items).astype(np.float64)
        # An item's age: days from its earliest training row to now.
        age = np.full(n_items, -1.0)
        stamps = times.to_numpy()
        if len(inter):
            earliest = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(earliest, i, stamps.view(np.int64))
            seen = earliest != np.iinfo(np.int64).max
            age[seen] = _days_before(now, earliest[seen].view(stamps.dtype))
        # Per-user tables from the covered users' rows only (every row when users is None).
        u = inter["uidx"].to_numpy()
        pos = np.arange(len(inter))
        covered = None
        if users is not None:
            covered = np.zeros(n_users, dtype=bool)
            covered[np.asarray(users, dtype=np.int64)] = True
            mine = covered[u]
            u, i, pos, stamps = u[mine], i[mine], pos[mine], stamps[mine]
        days_before = _days_before(now, stamps)
        # Per (user, item): count, last position, days since the last time (interactions are in time order).
        frame = pd.DataFrame({"u": u, "i": i, "pos": pos, "days": days_before})
        per = frame.groupby(["u", "i"], sort=False).agg(count=("pos", "size"), last=("pos", "max"), days=("days", "min")).reset_index()
        per["place"] = per.groupby("u")["last"].rank(ascending=False, method="first")
        pu, pi = per["u"].to_numpy(), per["i"].to_numpy()

        def table(values) -> sp.csr_matrix:
            return sp.csr_matrix((np.asarray(values, dtype=np.float32), (pu, pi)), shape=(n_users, n_items))

        user_len = np.bincount(u, minlength=n_users).astype(np.float64)
        last5 = np.full((n_users, 5), -1, dtype=np.int64)
        seqs = data.sequences()
        lengths = np.diff(seqs.indptr)
        for back in range(5):  # column 4 is the user's last item, column 3 the one before, ...
            has = lengths > back if covered is None else (lengths > back) & covered
            last5[has, 4 - back] = seqs.flat[seqs.indptr[1:][has] - 1 - back]
        ctx = _Context(data, now, user_len, table(per["count"]), table(per["place"]), table(per["days"] + 1.0), last5,
                       pop_all, pop_7d, (pop_7d + 1.0) / (pop_prev + 1.0), age, covered=covered)
        if "category" in self.items.columns:
            codes, _ = pd.factorize(self.items["category"].astype(str))
            share = sp.csr_matrix((np.ones(len(u), np.float32), (u, codes[i])), shape=(n_users, codes.max() + 1))
            share.sum_duplicates()
            ctx.category = codes
            ctx.category_share = sp.diags(1.0 / np.maximum(user_len, 1.0)).astype(np.float32) @ share
        if "price" in self.items.columns:
            price = pd.to_numeric(self.items["price"], errors="coerce").to_numpy(dtype=np.float64)
            known = np.isfinite(price[i]) if len(i) else np.zeros(0, bool)
            total = np.bincount(u[known], weights=price[i][known], minlength=n_users)
            n = np.bincount(u[known], minlength=n_users)
            ctx.price = price
            ctx.user_price = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        if self.text_vectors is not None:
            norms = np.linalg.norm(self.text_vectors, axis=1, keepdims=True)
            ctx.text = (self.text_vectors / np.maximum(norms, 1e-9)).astype(np.float32)
        return ctx

    def _base_features(self, users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        ctx = self.context_
        n = len(users)
        out = {key: np.zeros(n, dtype=np.float32) for key in BASE_FEATURES}
        out["user_history_len"] = np.log1p(ctx.user_len[users]).astype(np.float32)
        out["item_pop_all"] = np.log1p(ctx.pop_all[items]).astype(np.float32)
        out["item_pop_7d"] = np.log1p(ctx.pop_7d[items]).astype(np.float32)
        out["item_trend"] = ctx.trend[items].astype(np.float32)
        out["item_age_days"] = ctx.age_days[items].astype(np.float32)
        out["user_item_count"] = _lookup(ctx.count, users, items)
        out["user_item_recency"] = _lookup(ctx.place, users, items)
        out["user_item_days_since"] = _lookup(ctx.days_plus_one, users, items) - 1.0
        if ctx.category_share is not None:
            out["user_category_share"] = _lookup(ctx.category_share, users, ctx.category[items])
        out["price_ratio"][:] = 1.0
        if ctx.price is not None:
            mean = ctx.user_price[users]
            ratio = ctx.price[items] / np.where(np.isfinite(mean) & (mean > 0), mean, np.nan)
            out["price_ratio"] = np.nan_to_num(ratio, nan=1.0, posinf=1.0, neginf=1.0).astype(np.float32)
        if ctx.text is not None and n:
            # One small product per user's run of pairs: gathering the last five vectors for every
            # pair instead moved five times the candidates' own vectors through memory.
            starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
            for start, stop in zip(starts, np.r_[starts[1:], n]):
                recent = ctx.last5[users[start]]
                recent = recent[recent >= 0]  # latest last
                if len(recent):
                    sims = ctx.text[items[start:stop]] @ ctx.text[recent].T  # (c, <=5)
                    out["text_sim_last"][start:stop] = sims[:, -1]
                    out["text_sim_max5"][start:stop] = sims.max(axis=1)
        return out

    # -- saving ---------------------------------------------------------------------------------
    def spec(self) -> dict:
        """What :func:`load_two_stage` needs besides the booster: config, sources with their
        parameters, feature names and the trained tree count."""
        sources = {name: {"kind": s.name, "params": _init_params(s) if s.name in BASELINES else {}} for name, s in self.sources.items()}
        return {"config": dataclasses.asdict(self.config), "sources": sources, "features": self.feature_names,
                "best_iteration": self.best_iteration_}

    def save(self, directory: str | Path) -> None:
        """Write ``stage2.txt`` (the booster, LightGBM's text format) and ``stage2.json`` into a directory."""
        directory = Path(directory)
        self.booster_.save_model(str(directory / BOOSTER_FILE), num_iteration=self.best_iteration_)
        (directory / SPEC_FILE).write_text(json.dumps(self.spec(), indent=2))


def _init_params(model: Recommender) -> dict:
    """A baseline's constructor arguments as they are now (tuned values included)."""
    names = [p for p in inspect.signature(type(model).__init__).parameters if p != "self"]
    return {name: getattr(model, name) for name in names if hasattr(model, name)}


def _group_sizes(frame: pd.DataFrame) -> np.ndarray:
    """Pairs per user, in the frame's order (pairs are grouped by user)."""
    user = frame["user"].to_numpy()
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    return np.diff(np.r_[starts, len(user)])


def has_two_stage(model_dir: str | Path) -> bool:
    return (Path(model_dir) / SPEC_FILE).is_file()


def load_two_stage(model_dir: str | Path, trained: Mapping[str, Recommender], items: pd.DataFrame,
                   text_vectors: np.ndarray | None) -> TwoStage:
    """A saved stage 2 with its sources: trained ones (the fine-tuned model) passed in by name,
    baselines rebuilt from their saved parameters (fit them, by ``TwoStage.fit``, before scoring).

    Raises:
        ModelError: a missing or damaged ``stage2.json`` or ``stage2.txt``, naming the file.
    """
    import lightgbm

    model_dir = Path(model_dir)
    path = model_dir / SPEC_FILE
    try:
        spec = json.loads(path.read_text())
        config = TwoStageConfig.from_dict(spec["config"])
        sources: dict[str, Recommender] = {}
        for name, entry in spec["sources"].items():
            if name in trained:
                sources[name] = trained[name]
                continue
            source = BASELINES[entry["kind"]]()
            for key, value in entry.get("params", {}).items():
                setattr(source, key, value)
            sources[name] = source
        best = int(spec["best_iteration"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: corrupted stage-2 description ({type(exc).__name__}: {exc}); train a new model with `homepage train DIR`") from exc
    model = TwoStage(sources, items, text_vectors, config)
    if model.feature_names != spec.get("features"):
        raise ModelError(f"{path}: the saved feature names do not match this version's; train a new model with `homepage train DIR`")
    try:
        model.booster_ = lightgbm.Booster(model_file=str(model_dir / BOOSTER_FILE))
    except (lightgbm.basic.LightGBMError, OSError) as exc:
        raise ModelError(f"{model_dir / BOOSTER_FILE}: corrupted stage-2 booster ({exc}); train a new model with `homepage train DIR`") from exc
    if model.booster_.num_feature() != len(model.feature_names):
        raise ModelError(f"{model_dir / BOOSTER_FILE}: the booster expects {model.booster_.num_feature()} features, not {len(model.feature_names)}")
    model.best_iteration_ = min(best, model.booster_.current_iteration()) or model.booster_.current_iteration()
    return model
