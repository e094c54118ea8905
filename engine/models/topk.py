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
    # torch.topk (multi-threaded) finds each row's k-th best score; every item above it is in the
    # list, and items equal to it fill the remaining places in item order, so ties are deterministic.
    kth = torch.topk(s, k, dim=1, sorted=False).values.min(dim=1, keepdim=True).values
    above, at = s > kth, s == kth
    room = k - above.sum(dim=1, keepdim=True)
    chosen = above | (at & (torch.cumsum(at, dim=1, dtype=torch.int32) <= room))
    picked = chosen.nonzero()[:, 1]
    if picked.numel() != s.shape[0] * k:  # NaN compares false everywhere, so some row came up short
        raise ValueError("top_k: scores contain NaN")
    items = picked.reshape(-1, k)
    values, order = torch.sort(torch.gather(s, 1, items), dim=1, descending=True, stable=True)
    return torch.gather(items, 1, order).numpy(), values.numpy()


def mask_rows(scores: np.ndarray, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
    """Set the scores of each user's history items to -inf (in place) and return them."""
    sub = history[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    scores[rows, sub.indices] = -np.inf
    return scores
