"""Classical baselines: popularity, recent popularity, item-kNN, EASE, last-item transitions and re-buy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from engine.core.constants import TIME_COL
from engine.core.files import cache_key, cached_array
from engine.core.memory import require
from engine.data.splits import FitData
from engine.models.topk import mask_rows, top_k


class Recommender:
    """scikit-learn style contract: ``__init__`` stores hyperparameters, ``fit`` returns self.

    Subclasses implement ``fit`` (calling ``_remember``) and ``score``. ``param_grid`` names the
    hyperparameters tuned on the validation split, best by NDCG@10.
    """

    name = "recommender"
    param_grid: dict[str, list] = {}

    def _remember(self, data: FitData) -> None:
        self.history_ = data.matrix(binary=True)
        self.n_items_ = data.n_items

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each user: (len(users), n_items) float32, a new array the caller
        may write into (stage 2 masks history items in place)."""
        raise NotImplementedError

    def rank(self, users: np.ndarray, k: int, mask_history: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Each user's top-k items and scores, best first; history items masked by default."""
        users = np.asarray(users, dtype=np.int64)
        scores = self.score(users).astype(np.float32, copy=False)  # score() returns a new array
        if mask_history:
            mask_rows(scores, users, self.history_)
        return top_k(scores, k)

    def get_params(self) -> dict:
        return {key: getattr(self, key) for key in self.param_grid}

    def for_tuning(self, data: FitData) -> "Recommender":
        """The model whose validation score stands for this one's while its parameters are tuned
        on ``data`` (``engine.evaluation.heldout.tune``): itself, unless a subclass has a cheaper one."""
        return self


class Popularity(Recommender):
    """Items by how many users interacted with them in the training data."""

    name = "popularity"

    def fit(self, data: FitData) -> "Popularity":
        self._remember(data)
        self.counts_ = np.asarray(self.history_.sum(axis=0)).ravel().astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(users), self.n_items_)).copy()


class RecentPopularity(Popularity):
    """Popularity over the last ``days`` days of the training data."""

    name = "recent_popularity"

    def __init__(self, days: int = 7):
        self.days = days

    def fit(self, data: FitData) -> "RecentPopularity":
        self._remember(data)
        inter = data.interactions
        start = inter[TIME_COL].max() - pd.Timedelta(days=self.days)
        recent = inter[inter[TIME_COL] > start].drop_duplicates(["uidx", "iidx"])
        counts = np.bincount(recent["iidx"].to_numpy(), minlength=data.n_items).astype(np.float32)
        overall = np.asarray(self.history_.sum(axis=0)).ravel().astype(np.float32)
        # All-time popularity only breaks ties among recent counts.
        self.counts_ = counts + overall / (overall.max() + 1.0)
        return self


KNN_BLOCK_ITEMS = 2_000  # items whose similarity rows are computed at once


class ItemKNN(Recommender):
    """Item-based collaborative filtering with cosine similarity (Sarwar et al. 2001).

    score(u, j) = sum_{i in history(u)} cos(i, j), cos over binary user columns.
    """

    name = "item_knn"

    def __init__(self, neighbours: int = 200):
        self.neighbours = neighbours

    def fit(self, data: FitData) -> "ItemKNN":
        self._remember(data)
        x = self.history_.astype(np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        xs = (x @ sp.diags(inv.astype(np.float32))).tocsc()  # unit-norm item columns
        # Co-occurrences a block of items at a time, each row cut to its neighbours at once, so a
        # shop's catalogue never holds the whole item x item table (hundreds of millions of pairs).
        blocks = []
        for start in range(0, xs.shape[1], KNN_BLOCK_ITEMS):
            stop = min(start + KNN_BLOCK_ITEMS, xs.shape[1])
            sim = (xs[:, start:stop].T @ xs).tocoo()  # (block, I)
            other = sim.row + start != sim.col  # an item is not its own neighbour
            sim = sp.csr_matrix((sim.data[other], (sim.row[other], sim.col[other])), shape=sim.shape)
            blocks.append(_top_per_row(sim, self.neighbours))
        # Transposed so that history @ sim sums over neighbours i of each candidate j.
        self.sim_ = sp.vstack(blocks).T.tocsr().astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.history_[users] @ self.sim_).todense(), dtype=np.float32)


def _top_per_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the n largest entries of each row (the nearest neighbours)."""
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        if hi - lo > n:
            pick = lo + np.argpartition(-m.data[lo:hi], n - 1)[:n]
        else:
            pick = np.arange(lo, hi)
        rows.append(np.full(len(pick), r))
        cols.append(m.indices[pick])
        vals.append(m.data[pick])
    if not rows:
        return m
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape)


EASE_MAX_ITEMS = 20_000  # items EASE inverts at most (3 x 20,000^2 float32 = 4.8 GB, a few minutes on 2 cores)
EASE_TUNE_ITEMS = 5_000  # beyond max_items active items, lambda is tuned on an EASE of this many (see EASE.for_tuning)
EASE_WIDE_RATIO = 1.25  # a table gets a column for every item when items <= this x active items
EASE_CACHE_ABOVE = 5_000  # items from which a fitted EASE table is worth keeping on disk (5,000: 100 MB, seconds to invert)


class EASE(Recommender):
    """EASE^R (Steck 2019): a closed-form item-item linear autoencoder.

    B = I - P diagMat(1 / diag(P)), P = (X^T X + lambda I)^-1, score = X_u B. Items with no
    training interaction are left out (their rows and columns of B are zero).

    With fewer users m than items n (H&M histories: 1,364 users, 17,033 items) the fit uses the
    Woodbury identity P = (I - X^T (X X^T + lambda I)^-1 X) / lambda, an m x m inverse instead of an
    n x n one, and never forms B: X_u B = X_u - (X_u P) diagMat(1 / diag(P)). Both forms give the
    same scores.

    Above ``max_items`` items with interactions, it models the ``max_items`` most popular ones only.
    ``b_`` holds the active items' rows; its columns are the active items, or every item (zero for
    the inactive ones) where that costs at most ``EASE_WIDE_RATIO`` times the memory.

    With ``cache_dir`` set (a data directory's ``.cache``; the loaders of a trained model set it),
    a table of ``EASE_CACHE_ABOVE`` items or more is kept there, keyed by the training history and
    lambda, so serving the same model again reads it instead of inverting again.
    """

    name = "ease"
    param_grid = {"lam": [50.0, 200.0, 1000.0]}

    def __init__(self, lam: float = 200.0, max_items: int = EASE_MAX_ITEMS):
        self.lam = lam
        self.max_items = max_items
        self.cache_dir: Path | None = None

    def fit(self, data: FitData) -> "EASE":
        self._remember(data)
        x = self.history_
        counts = np.asarray(x.sum(axis=0)).ravel()
        active = np.flatnonzero(counts > 0)
        if len(active) > self.max_items:
            # A shop-sized catalogue: EASE over its most popular items (the others score 0). The
            # dense n x n inverse needs 3 n^2 floats: 100,000 items would need 120 GB.
            active = np.sort(active[np.argsort(-counts[active], kind="stable")[: self.max_items]])
        has_history = np.diff(x.indptr) > 0
        self.b_ = self.xtw_ = None
        if 2 * int(has_history.sum()) <= len(active):
            self._fit_dual(x[has_history].astype(np.float64))
        else:
            self._fit_primal(x[:, active].astype(np.float32), active)
        return self

    def for_tuning(self, data: FitData) -> "EASE":
        """A shop-sized catalogue (more than ``max_items`` items with interactions) tunes lambda on
        an EASE of its ``EASE_TUNE_ITEMS`` most popular items: each grid point inverts a 5,000-item
        table, where a 20,000-item one took 182 s on 2 cores. Smaller catalogues tune the model itself."""
        if int(np.count_nonzero(data.item_counts())) <= self.max_items or self.max_items <= EASE_TUNE_ITEMS:
            return self
        proxy = EASE(lam=self.lam, max_items=EASE_TUNE_ITEMS)
        proxy.cache_dir = self.cache_dir
        return proxy

    def _fit_primal(self, xa: sp.csr_matrix, active: np.ndarray) -> None:
        n = len(active)
        # (active, active): scoring gathers the history's active columns; a full (n_items, active)
        # table would take n_items x active floats (8 GB for 100,000 items).
        if self.cache_dir is not None and n >= EASE_CACHE_ABOVE:
            key = cache_key(np.asarray(xa.shape), xa.indptr, xa.indices, active, np.asarray([self.lam], dtype=np.float64))
            b = cached_array(self.cache_dir, "ease", key, lambda: self._invert(xa),
                             lambda b: b.shape == (n, n) and b.dtype == np.float32)
        else:
            b = self._invert(xa)
        self.active_ = active
        if n < self.n_items_ <= EASE_WIDE_RATIO * n:
            # Columns for every item, zero for the inactive ones, so scores come out whole (placing
            # the active columns into a (users, items) array took 50 ms per 1,000 users of 18,000 items).
            self.b_ = np.zeros((n, self.n_items_), dtype=np.float32)
            self.b_[:, active] = b
        else:
            # Row-major: scipy's sparse @ dense copies a column-major operand on every call (0.6 s
            # of a 12,000-item table for 1,000 users), and LAPACK's inverse comes back column-major.
            self.b_ = np.ascontiguousarray(b)

    def _invert(self, xa: sp.csr_matrix) -> np.ndarray:
        """B over the active items, (n, n) float32."""
        n = xa.shape[1]
        require(f"EASE over {n:,} items", 3 * 4 * n * n, "pass a smaller max_items (EASE over the most popular items) "
                "or leave ease out (--models)")
        gram = torch.from_numpy((xa.T @ xa).toarray())
        gram.diagonal().add_(float(self.lam))
        # Cholesky is about 3x faster than a general inverse for this symmetric positive matrix.
        b = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        del gram
        b.div_(-b.diagonal().clone())  # in place: this matrix is n_items^2 floats
        b.diagonal().zero_()
        return np.ascontiguousarray(b.numpy())

    def _fit_dual(self, x: sp.csr_matrix) -> None:
        m, n = x.shape
        require(f"EASE's dual form over {m:,} users and {n:,} items", 8 * (2 * m * m + n * m),
                "leave ease out (--models)")
        kernel = torch.from_numpy((x @ x.T).toarray())
        kernel.diagonal().add_(float(self.lam))
        w = torch.cholesky_inverse(torch.linalg.cholesky(kernel)).numpy()
        xtw = np.asarray(x.T @ w)  # (n_items, m): X^T (X X^T + lambda I)^-1
        diag_p = (1.0 - np.asarray(x.T.multiply(xtw).sum(axis=1)).ravel()) / self.lam
        self.x_, self.xtw_, self.diag_p_ = x.tocsr(), xtw, diag_p
        self.active_ = np.arange(self.n_items_)

    def score(self, users: np.ndarray) -> np.ndarray:
        hist = self.history_[users]
        if self.xtw_ is not None:
            # X_u P = (X_u - (X_u X^T W) X) / lambda, then X_u B = X_u - X_u P / diag(P).
            x_u = hist.astype(np.float64)
            dense = x_u.toarray()
            x_u_p = (dense - np.asarray(self.x_.T @ np.asarray(x_u @ self.xtw_).T).T) / self.lam
            return (dense - x_u_p / self.diag_p_).astype(np.float32)
        if len(self.active_) < self.n_items_:
            hist = hist[:, self.active_]
        scores = np.asarray(hist @ self.b_, dtype=np.float32)
        if scores.shape[1] == self.n_items_:
            return scores
        out = np.zeros((len(users), self.n_items_), dtype=np.float32)
        out[:, self.active_] = scores
        return out


class Transition(Recommender):
    """Next-item counts from the user's last item, backing off to popularity.

    score(u, j) = count(last(u) -> j) + popularity(j) / (max popularity + 1).
    """

    name = "transition"

    def fit(self, data: FitData) -> "Transition":
        self._remember(data)
        seqs = data.sequences()
        flat, lengths = seqs.flat, np.diff(seqs.indptr)
        last = np.full(data.n_users, -1, dtype=np.int64)
        has = lengths > 0
        last[has] = flat[seqs.indptr[1:][has] - 1]
        # Consecutive items of one user: every neighbouring pair in the flat array but those
        # across a boundary between two users.
        s, d = flat[:-1], flat[1:]
        ends = seqs.indptr[1:-1]
        keep = s != d
        keep[ends[(ends > 0) & (ends < len(flat))] - 1] = False
        trans = sp.csr_matrix((np.ones(keep.sum(), np.float32), (s[keep], d[keep])), shape=(data.n_items, data.n_items))
        trans.sum_duplicates()
        pop = np.asarray(self.history_.sum(axis=0)).ravel().astype(np.float32)
        self.trans_, self.last_, self.backoff_ = trans, last, pop / (pop.max() + 1.0)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        out = np.broadcast_to(self.backoff_, (len(users), self.n_items_)).copy()
        last = self.last_[users]
        has = last >= 0
        if has.any():
            # Only the stored counts are added (a dense copy of the rows cost 0.2 s per 1,000 users
            # of 18,000 items); a CSR row holds each column once, so the fancy += adds each once.
            rows = self.trans_[last[has]]
            out[np.flatnonzero(has)[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))], rows.indices] += rows.data
        return out


class Rebuy(Recommender):
    """The user's own past items first, then popularity (what repeat-purchase shops are judged by).

    score(u, j) = 2 + r(u, j) for an item j in u's history, popularity(j) / (max popularity + 1)
    otherwise, where r in [0, 1) orders the user's items: by their last interaction, latest first
    (``order="recent"``), or by how often the user had them, ties to the latest (``"frequent"``).
    With history masked it is popularity.
    """

    name = "rebuy"
    param_grid = {"order": ["recent", "frequent"]}

    def __init__(self, order: str = "recent"):
        self.order = order

    def fit(self, data: FitData) -> "Rebuy":
        if self.order not in ("recent", "frequent"):
            raise ValueError(f"order must be 'recent' or 'frequent', got {self.order!r}")
        self._remember(data)
        inter = data.interactions
        users, items = inter["uidx"].to_numpy(), inter["iidx"].to_numpy()
        position = np.arange(len(inter), dtype=np.float64)  # time order (interactions are sorted by time)
        frame = pd.DataFrame({"u": users, "i": items, "pos": position})
        per_item = frame.groupby(["u", "i"], sort=False).agg(last=("pos", "max"), count=("pos", "size")).reset_index()
        recency = per_item["last"].to_numpy() / (len(inter) + 1.0)  # in [0, 1), larger = later
        if self.order == "recent":
            rank = recency
        else:
            counts = per_item["count"].to_numpy().astype(np.float64)
            rank = (counts + recency) / (counts.max() + 1.0)  # count first, the latest breaks ties
        self.own_ = sp.csr_matrix((2.0 + rank, (per_item["u"].to_numpy(), per_item["i"].to_numpy())),
                                  shape=(data.n_users, data.n_items), dtype=np.float64)
        pop = np.asarray(self.history_.sum(axis=0)).ravel().astype(np.float64)
        self.backoff_ = pop / (pop.max() + 1.0) if len(pop) and pop.max() > 0 else pop
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        own = self.own_[users]
        out = np.broadcast_to(self.backoff_.astype(np.float32), (len(users), self.n_items_)).copy()
        out[np.repeat(np.arange(len(users)), np.diff(own.indptr)), own.indices] = own.data
        return out


BASELINES = {cls.name: cls for cls in (Popularity, RecentPopularity, ItemKNN, EASE, Transition, Rebuy)}


def make_baseline(name: str) -> Recommender:
    """A fresh baseline by its JSON name."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    return BASELINES[name]()
