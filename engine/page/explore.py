"""Exploration: show a share of a page's slots to strong candidates that are not on it, and log with
what probability every shown item was put in its slot (the propensity off-policy estimates divide by).

The policy, for a page of N filled slots (empty slots stay empty and are never explored):

1. the pool: the ``POOL_FACTOR`` x N best candidates by score that are not on the page (fewer when
   there are not that many; items with a non-finite score never enter it), plus any items the caller
   names to be always explored (the items of the pages other slider settings would show, so that a
   log can later judge those pages; :func:`engine.page.simulate.alternative_items`). Call its size P;
2. every filled slot is explored independently with probability ``share``; say M slots are;
3. min(M, P) pool items are drawn **uniformly** without replacement and put in min(M, P) of the
   explored slots, chosen uniformly; an explored slot left without a pool item (only when M > P)
   keeps the page's own item. Every other slot shows the page's item.

Uniform draws make the per-slot probabilities exact and the same for every slot. With
B ~ Binomial(N - 1, share) the number of *other* explored slots, M = 1 + B given that a slot is
explored, and for a slot s with page item d_s and a pool item j:

    pi(j | s)   = share * E[1 / max(1 + B, P)]
    pi(d_s | s) = (1 - share) + share * E[max(0, 1 - P / (1 + B))]

and pi(d_s | s) + P * pi(j | s) = 1: every slot's distribution over the items that can appear in it
sums to one (given M, an explored slot gets each pool item with probability 1 / max(M, P) and keeps
its own with probability max(0, 1 - P / M)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.page.layout import Layout

POOL_FACTOR = 3  # the exploration pool's best candidates: up to this many times the page's filled slots (plus any `always` items)


@dataclass(frozen=True)
class ExplorePolicy:
    """The exploring version of one page, ready to draw pages and to give propensities.

    Attributes:
        page: (S,) item index per slot in reading order (``Layout.flat_items``), -1 for empty slots.
        pool: (P,) the exploration pool, best score first.
        share: the probability that a filled slot is explored.
        keep: pi(d_s | s), the probability that a filled slot shows the page's own item.
        pool_prob: pi(j | s), the probability that a filled slot shows a given pool item j.
    """

    page: np.ndarray
    pool: np.ndarray
    share: float
    keep: float
    pool_prob: float

    @classmethod
    def build(cls, layout: Layout, candidates: np.ndarray, scores: np.ndarray, share: float,
              always: np.ndarray | None = None) -> "ExplorePolicy":
        """The policy of ``layout`` (its cards must carry item indices, as ``rank_segment``'s do).

        Args:
            layout: the page.
            candidates: (C,) item indices the pool is drawn from.
            scores: (C,) their scores (higher is stronger); non-finite scores are never explored.
            share: probability in [0, 1] that a filled slot is explored.
            always: item indices that join the pool whatever their rank (those on the page, not
                among ``candidates`` or with a non-finite score there are left out).

        Returns:
            The policy, with ``keep`` and ``pool_prob`` from the formulas of the module docstring.

        Raises:
            ValueError: a share outside [0, 1], or candidates and scores of different lengths.
        """
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"explore share must be between 0 and 1, got {share}")
        candidates = np.asarray(candidates, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        if candidates.shape != scores.shape:
            raise ValueError(f"candidates and scores differ in length: {candidates.shape} vs {scores.shape}")
        page = layout.flat_items()
        filled = page[page >= 0]
        n = len(filled)
        ok = np.isfinite(scores) & ~np.isin(candidates, filled)
        ok_items, ok_scores = np.unique(candidates[ok], return_index=True)  # an item listed twice counts once
        order = np.lexsort((ok_items, -scores[ok][ok_scores]))  # best first, ties by item index
        ranked = ok_items[order]
        pool = ranked[: POOL_FACTOR * n]
        if always is not None and len(always):  # appended after the top ones, best first
            rest = ranked[POOL_FACTOR * n:]
            pool = np.concatenate([pool, rest[np.isin(rest, np.asarray(always, dtype=np.int64))]])
        keep, pool_prob = slot_probabilities(n, len(pool), share)
        return cls(page, pool, float(share), keep, pool_prob)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw one shown page.

        Args:
            rng: the random generator (the only source of randomness).

        Returns:
            (shown, propensity): (S,) item per slot (-1 where the page's slot is empty) and the
            probability the policy gives that item in that slot (1.0 for empty slots).
        """
        shown = self.page.copy()
        filled = np.flatnonzero(self.page >= 0)
        explored = filled[rng.random(len(filled)) < self.share]
        if len(explored) and len(self.pool):
            n_draw = min(len(explored), len(self.pool))
            slots = rng.permutation(explored)[:n_draw]
            shown[slots] = self.pool[rng.choice(len(self.pool), size=n_draw, replace=False)]
        return shown, self.propensity(shown)

    def propensity(self, shown: np.ndarray) -> np.ndarray:
        """pi(item | slot) for a page of items per slot (aligned with ``page``).

        Returns:
            (S,) ``keep`` where the slot shows the page's item, ``pool_prob`` for a pool item, 0 for
            an item the policy never puts there, 1.0 for the page's empty slots.
        """
        shown = np.asarray(shown, dtype=np.int64)
        out = np.where(np.isin(shown, self.pool), self.pool_prob, 0.0)
        out = np.where(shown == self.page, self.keep, out)
        return np.where(self.page < 0, 1.0, out)


def slot_probabilities(n_slots: int, pool_size: int, share: float) -> tuple[float, float]:
    """Per-slot probabilities of the page's own item and of each pool item (module docstring).

    Args:
        n_slots: N, the page's filled slots.
        pool_size: P, the pool's items.
        share: the probability that a slot is explored.

    Returns:
        (keep, pool_prob) = (pi(d_s | s), pi(j | s)); keep + P * pool_prob = 1.
    """
    if n_slots == 0 or pool_size == 0 or share == 0.0:
        return 1.0, 0.0
    m = 1 + np.arange(n_slots)  # explored slots including this one
    pmf = _binomial_pmf(n_slots - 1, share)  # P(B = m - 1)
    pool_prob = share * float(pmf @ (1.0 / np.maximum(m, pool_size)))
    keep = (1.0 - share) + share * float(pmf @ np.maximum(0.0, 1.0 - pool_size / m))
    return keep, pool_prob


def _binomial_pmf(n: int, p: float) -> np.ndarray:
    """P(B = k) for k = 0..n, B ~ Binomial(n, p), computed in logs (no overflow for large n)."""
    if p >= 1.0:
        return np.eye(n + 1)[n]
    k = np.arange(n + 1)
    log_choose = math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
    pmf = np.exp(log_choose + k * math.log(p) + (n - k) * math.log1p(-p))
    return pmf / pmf.sum()


def explore_page(layout: Layout, candidates: np.ndarray, scores: np.ndarray, share: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One page shown with exploration, and the propensity of every shown item.

    See the module docstring for the policy (uniform draws from the top ``POOL_FACTOR`` x slots
    candidates not on the page) and the propensity formulas. To draw many pages, build the
    :class:`ExplorePolicy` once and call its ``sample``.

    Args:
        layout: the page; its cards carry item indices (``Card.item``).
        candidates: (C,) item indices the exploration pool is drawn from.
        scores: (C,) their scores.
        share: probability in [0, 1] that a filled slot is explored.
        rng: the random generator.

    Returns:
        (shown, propensity), both (S,) in reading order aligned with ``layout.flat_items()``:
        the item of each slot (-1 for an empty slot) and pi(item | slot) (1.0 for empty slots).
    """
    return ExplorePolicy.build(layout, candidates, scores, share).sample(rng)
