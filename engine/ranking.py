"""Top-k selection shared by every recommender: deterministic ties, optional history masking."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k with ties broken by lower item index.

    Args:
        scores: (U, I) scores; ``-inf`` marks items that must not be recommended.
        k: list length (clipped to the number of items).

    Returns:
        (items, scores), both (U, k), best first.
    """
    scores = np.asarray(scores)
    n_items = scores.shape[1]
    k = min(k, n_items)
    # A tiny index-proportional penalty makes argpartition deterministic on exact ties (popularity
    # counts tie often) without reordering scores that really differ.
    finite = np.isfinite(scores)
    scale = np.abs(np.where(finite, scores, 0)).max() + 1.0
    keyed = scores.astype(np.float64) - np.arange(n_items) * (1e-12 * scale)
    part = np.argpartition(-keyed, k - 1, axis=1)[:, :k]
    part_keys = np.take_along_axis(keyed, part, axis=1)
    order = np.argsort(-part_keys, axis=1, kind="stable")
    items = np.take_along_axis(part, order, axis=1)
    return items, np.take_along_axis(scores, items, axis=1)


def mask_rows(scores: np.ndarray, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
    """Set the scores of each user's history items to -inf (in place) and return them."""
    sub = history[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    scores[rows, sub.indices] = -np.inf
    return scores
