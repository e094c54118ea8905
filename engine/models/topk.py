"""Top-k selection shared by every recommender: deterministic ties, optional history masking."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k with ties broken by lower item index.

    Args:
        scores: (U, I) scores; ``-inf`` marks items that must not be recommended.
        k: list length (clipped to the number of items).

    Returns:
        (items, scores), both (U, k), best first.
    """
    s = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))
    k = min(k, s.shape[1])
    if s.shape[0] == 0 or k == 0:
        return np.zeros((s.shape[0], k), dtype=np.int64), np.zeros((s.shape[0], k), dtype=np.float32)
    # torch.topk (multi-threaded) finds each row's k + 1 best. Where the k-th is above the
    # (k + 1)-th, the list's items are settled and only the order of equal scores within it is
    # left: items sorted by index, then stably by score. Rows with a tie across the k-th place
    # (few, but every row of a constant score) choose among the tied items by index.
    values, items = torch.topk(s, min(k + 1, s.shape[1]), dim=1, sorted=True)
    if torch.isnan(values[:, 0]).any():  # topk ranks NaN above every number
        raise ValueError("top_k: scores contain NaN")
    tied = values[:, k - 1] == values[:, k] if k < s.shape[1] else torch.zeros(len(s), dtype=torch.bool)
    items = torch.sort(items[:, :k], dim=1).values
    rows = tied.nonzero()[:, 0]
    if len(rows):
        items[rows] = _choose_among_ties(s[rows], k)
    values, order = torch.sort(torch.gather(s, 1, items), dim=1, descending=True, stable=True)
    return torch.gather(items, 1, order).numpy(), values.numpy()


def _choose_among_ties(s: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's top-k items in index order, the lowest indices among the scores equal to the k-th."""
    kth = torch.topk(s, k, dim=1, sorted=False).values.min(dim=1, keepdim=True).values
    above, at = s > kth, s == kth
    room = k - above.sum(dim=1, keepdim=True)
    chosen = above | (at & (torch.cumsum(at, dim=1, dtype=torch.int32) <= room))
    return chosen.nonzero()[:, 1].reshape(-1, k)


def mask_rows(scores: np.ndarray, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
    """Set the scores of each user's history items to -inf (in place) and return them."""
    sub = history[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    scores[rows, sub.indices] = -np.inf
    return scores
