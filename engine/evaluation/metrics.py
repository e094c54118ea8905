"""Ranking metrics (accuracy and beyond-accuracy) and bootstrap intervals, in pure numpy."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

# Conventions shared by every function below:
#   * item indices are non-negative integers; a negative entry in ``recs`` (e.g. -1) is an empty
#     slot (a list shorter than k) and is never a hit, never counted as exposure and skipped by
#     the averaged beyond-accuracy metrics;
#   * a ranked list holds each item at most once (the metrics do not de-duplicate it);
#   * a held-out set ``relevant`` / ``targets[u]`` is de-duplicated before use.

_ILD_CHUNK = 1024  # users per batched matmul in ild_at_k (bounds memory to chunk * k * d floats)
_BOOT_CHUNK = 64  # bootstrap replicates drawn at a time (bounds memory to chunk * n values)


# ----------------------------------------------------------------------------------------------
# Helpers


def _as_index_array(values: Iterable[int] | np.ndarray, name: str) -> np.ndarray:
    """A 1-D int64 array from an array, list, tuple or set of item indices."""
    if isinstance(values, (set, frozenset)):
        arr = np.fromiter(values, dtype=np.int64, count=len(values))
    else:
        arr = np.asarray(values)
        if arr.size == 0:
            arr = arr.astype(np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer item indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _hits(
    ranked: np.ndarray | Sequence[int], relevant: Iterable[int], k: int
) -> tuple[np.ndarray, int]:
    """The 0/1 hit vector of the top-k of ``ranked`` and the number of distinct relevant items."""
    k = _check_k(k)
    top = _as_index_array(ranked, "ranked")[:k]
    rel = np.unique(_as_index_array(relevant, "relevant"))
    hits = np.isin(top, rel) & (top >= 0)
    return hits.astype(np.float64), int(rel.size)


def _top_k(recs: np.ndarray, k: int) -> np.ndarray:
    """The first k columns of a (n_users, K) recommendation matrix as int64."""
    k = _check_k(k)
    recs = np.asarray(recs)
    if recs.ndim != 2:
        raise ValueError(f"recs must be 2-D (n_users, k), got shape {recs.shape}")
    if recs.size and not np.issubdtype(recs.dtype, np.integer):
        raise ValueError(f"recs must hold integer item indices, got dtype {recs.dtype}")
    return recs[:, :k].astype(np.int64, copy=False)


def _shown(recs: np.ndarray, k: int, n_items: int | None = None) -> np.ndarray:
    """The flat array of item indices actually shown in the top k (empty slots dropped)."""
    top = _top_k(recs, k)
    shown = top[top >= 0]
    if n_items is not None and shown.size and shown.max() >= n_items:
        raise ValueError(f"recs holds item index {int(shown.max())} but n_items is {n_items}")
    return shown


def _discounts(k: int) -> np.ndarray:
    """1 / log2(i + 2) for positions i = 0 .. k-1."""
    return 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)


# ----------------------------------------------------------------------------------------------
# Accuracy metrics over one ranked list


def ndcg_at_k(ranked: np.ndarray | Sequence[int], relevant: Iterable[int], k: int) -> float:
    """Normalised discounted cumulative gain with binary relevance.

    DCG@k = sum_{i<k} rel_i / log2(i + 2) (i 0-based),
    IDCG@k = sum_{i<min(|T|, k)} 1 / log2(i + 2) and NDCG@k = DCG@k / IDCG@k.
    Range [0, 1]; 0 when T is empty.
    Reference: Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques",
    TOIS 2002.

    Args:
        ranked: item indices, best first.
        relevant: the held-out item indices T.
        k: the cutoff.

    Returns:
        NDCG@k as a float.
    """
    hits, n_rel = _hits(ranked, relevant, k)
    if n_rel == 0:
        return 0.0
    disc = _discounts(k)
    idcg = disc[: min(n_rel, k)].sum()
    return float(hits @ disc[: hits.size] / idcg)


def recall_at_k(ranked: np.ndarray | Sequence[int], relevant: Iterable[int], k: int) -> float:
    """Recall: share of the held-out items found in the top k.

    Recall@k = |top-k ∩ T| / |T|. Range [0, 1]; 0 when T is empty.
    Reference: Manning, Raghavan & Schütze, "Introduction to Information Retrieval", 2008, ch. 8.

    Args:
        ranked: item indices, best first.
        relevant: the held-out item indices T.
        k: the cutoff.

    Returns:
        Recall@k as a float.
    """
    hits, n_rel = _hits(ranked, relevant, k)
    return float(hits.sum() / n_rel) if n_rel else 0.0


def hr_at_k(ranked: np.ndarray | Sequence[int], relevant: Iterable[int], k: int) -> float:
    """Hit rate: whether any held-out item is in the top k.

    HR@k = 1 if |top-k ∩ T| > 0 else 0. Range {0, 1}.
    Reference: Deshpande & Karypis, "Item-based top-N recommendation algorithms", TOIS 2004.

    Args:
        ranked: item indices, best first.
        relevant: the held-out item indices T.
        k: the cutoff.

    Returns:
        1.0 or 0.0.
    """
    hits, _ = _hits(ranked, relevant, k)
    return float(hits.any())


def precision_at_k(ranked: np.ndarray | Sequence[int], relevant: Iterable[int], k: int) -> float:
    """Precision: share of the k slots that hold a held-out item.

    Precision@k = |top-k ∩ T| / k (the denominator is k even when the list is shorter).
    Range [0, 1].
    Reference: Manning, Raghavan & Schütze, "Introduction to Information Retrieval", 2008, ch. 8.

    Args:
        ranked: item indices, best first.
        relevant: the held-out item indices T.
        k: the cutoff.

    Returns:
        Precision@k as a float.
    """
    hits, _ = _hits(ranked, relevant, k)
    return float(hits.sum() / _check_k(k))


def map_at_k(ranked: np.ndarray | Sequence[int], relevant: Iterable[int], k: int) -> float:
    """Average precision at k, as scored by the H&M Kaggle competition (MAP@12).

    AP@k = sum_{i<k} P@(i+1) * rel_i / min(|T|, k), with P@(i+1) the precision of the first i+1
    items; MAP@k is its mean over users. Range [0, 1]; 0 when T is empty.
    Reference: H&M Personalized Fashion Recommendations (Kaggle, 2022), evaluation page; the
    ``apk`` function of benhamner/Metrics.

    Args:
        ranked: item indices, best first.
        relevant: the held-out item indices T.
        k: the cutoff.

    Returns:
        AP@k as a float.
    """
    hits, n_rel = _hits(ranked, relevant, k)
    if n_rel == 0:
        return 0.0
    prec = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float((prec * hits).sum() / min(n_rel, k))


def mrr_at_k(ranked: np.ndarray | Sequence[int], relevant: Iterable[int], k: int) -> float:
    """Reciprocal rank of the first held-out item in the top k.

    RR@k = 1 / rank of the first hit (1-based) if it is within the top k, else 0; MRR is its mean
    over users. Range [0, 1].
    Reference: Voorhees, "The TREC-8 question answering track report", TREC 1999.

    Args:
        ranked: item indices, best first.
        relevant: the held-out item indices T.
        k: the cutoff.

    Returns:
        RR@k as a float.
    """
    hits, _ = _hits(ranked, relevant, k)
    if not hits.any():
        return 0.0
    return float(1.0 / (np.argmax(hits) + 1))


# ----------------------------------------------------------------------------------------------
# Accuracy over many users at once


def hit_matrix(
    recs: np.ndarray, targets: Sequence[Iterable[int]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The (U, k) 0/1 hit matrix of the top-k recommendations and the distinct |T| per user.

    Membership is tested for all users at once: each (user, item) pair is encoded as the single key
    ``user * M + item`` and looked up in the sorted keys of the targets.

    Args:
        recs: (U, K) item indices, best first per row; negative entries are empty slots.
        targets: U collections of held-out item indices; none may be empty.
        k: the cutoff (columns beyond k are ignored).

    Returns:
        ``(hits, n_rel)``: a (U, min(K, k)) bool matrix and a (U,) int64 array of distinct |T|.

    Raises:
        ValueError: if the sizes disagree, an item index is negative, or a user has no targets.
    """
    top = _top_k(recs, k)
    n_users = top.shape[0]
    if len(targets) != n_users:
        raise ValueError(f"recs has {n_users} rows but targets has {len(targets)} entries")
    arrays = [_as_index_array(t, "targets[u]") for t in targets]
    lens = np.fromiter((a.size for a in arrays), dtype=np.int64, count=n_users)
    if n_users and lens.min() == 0:
        raise ValueError(
            f"user row {int(np.argmin(lens))} has no targets; leave users with an empty "
            "held-out set out of the evaluation"
        )
    flat = np.concatenate(arrays) if arrays else np.empty(0, np.int64)
    if flat.size and flat.min() < 0:
        raise ValueError("targets hold a negative item index")
    top_max = int(top.max()) if top.size else -1
    width = np.int64(max(top_max, int(flat.max()) if flat.size else -1) + 1)
    users = np.repeat(np.arange(n_users, dtype=np.int64), lens)
    keys = np.unique(users * width + flat)  # sorted, duplicates dropped
    n_rel = np.bincount(keys // width, minlength=n_users).astype(np.int64)
    if top.size == 0 or keys.size == 0:
        return np.zeros(top.shape, dtype=bool), n_rel
    rec_keys = np.arange(n_users, dtype=np.int64)[:, None] * width + top
    pos = np.minimum(np.searchsorted(keys, rec_keys), keys.size - 1)
    hits = (keys[pos] == rec_keys) & (top >= 0)
    return hits, n_rel


def accuracy_per_user(
    recs: np.ndarray, targets: Sequence[Iterable[int]], k: int
) -> dict[str, np.ndarray]:
    """Every accuracy metric at cutoff k for every user, vectorised over users.

    The values equal those of :func:`ndcg_at_k`, :func:`recall_at_k`, :func:`hr_at_k`,
    :func:`map_at_k`, :func:`mrr_at_k` and :func:`precision_at_k` on each row. Call it once per
    cutoff (e.g. k=10 for the headline metrics and k=12 for H&M-style MAP@12).

    Args:
        recs: (U, K) item indices, best first per row; negative entries are empty slots.
        targets: U non-empty collections of held-out item indices (users with an empty held-out set
            must be left out by the caller: their metrics are undefined).
        k: the cutoff.

    Returns:
        A dict with float64 arrays of shape (U,) under "ndcg", "recall", "hr", "map", "mrr" and
        "precision".

    Raises:
        ValueError: if a user has no targets or the sizes disagree.
    """
    k = _check_k(k)
    hits_b, n_rel = hit_matrix(recs, targets, k)
    hits = hits_b.astype(np.float64)
    n_users, width = hits.shape
    n_hit = hits.sum(axis=1)
    disc = _discounts(k)
    idcg = np.cumsum(disc)[np.minimum(n_rel, k) - 1] if n_users else np.zeros(0)
    dcg = hits @ disc[:width]
    prec_at_i = np.cumsum(hits, axis=1) / np.arange(1, width + 1)
    any_hit = hits_b.any(axis=1)
    first = np.argmax(hits_b, axis=1) if width else np.zeros(n_users, dtype=np.int64)
    return {
        "ndcg": dcg / idcg,
        "recall": n_hit / n_rel,
        "hr": any_hit.astype(np.float64),
        "map": (prec_at_i * hits).sum(axis=1) / np.minimum(n_rel, k),
        "mrr": np.where(any_hit, 1.0 / (first + 1.0), 0.0),
        "precision": n_hit / k,
    }


# ----------------------------------------------------------------------------------------------
# Beyond-accuracy metrics over the whole catalogue


def coverage_at_k(recs: np.ndarray, n_items: int, k: int) -> float:
    """Catalogue coverage: share of the catalogue that appears in at least one top-k list.

    Coverage@k = |∪_u top-k(u)| / n_items. Range [0, 1].
    Reference: Ge, Delgado-Battenfeld & Jannach, "Beyond accuracy: evaluating recommender systems
    by coverage and serendipity", RecSys 2010.

    Args:
        recs: (n_users, K) item indices; negative entries are empty slots.
        n_items: catalogue size.
        k: the cutoff.

    Returns:
        Coverage@k as a float.
    """
    if n_items < 1:
        raise ValueError(f"n_items must be positive, got {n_items}")
    shown = _shown(recs, k, n_items)
    return float(np.unique(shown).size / n_items)


def head_tail_split(item_counts: np.ndarray, head_share: float = 0.8) -> np.ndarray:
    """Mark the long-tail items.

    The head is the smallest set of most popular items (by train interaction count, ties broken by
    the lower item index) whose counts sum to at least ``head_share`` of all train interactions,
    so the item that reaches or crosses the threshold is in the head. Every other item, including
    items never interacted with, is tail. With no interactions at all every item is tail.
    Reference: Abdollahpouri, Burke & Mobasher, "Managing popularity bias in recommender systems
    with personalized re-ranking", FLAIRS 2019 (the 80/20 short-head split).

    Args:
        item_counts: (n_items,) non-negative train interaction count per item.
        head_share: share of interactions the head accounts for, in (0, 1].

    Returns:
        (n_items,) bool array, True for tail items.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.ndim != 1:
        raise ValueError(f"item_counts must be 1-D, got shape {counts.shape}")
    if not 0.0 < head_share <= 1.0:
        raise ValueError(f"head_share must be in (0, 1], got {head_share}")
    if counts.size and counts.min() < 0:
        raise ValueError("item_counts must be non-negative")
    is_tail = np.ones(counts.size, dtype=bool)
    total = counts.sum()
    if total <= 0:
        return is_tail
    order = np.lexsort((np.arange(counts.size), -counts))  # count descending, then index ascending
    share = np.cumsum(counts[order]) / total  # exact division: 80/100 == 0.8 compares equal
    n_head = min(int(np.searchsorted(share, head_share, side="left")) + 1, counts.size)
    is_tail[order[:n_head]] = False
    return is_tail


def tail_share_at_k(recs: np.ndarray, is_tail: np.ndarray, k: int) -> float:
    """Long-tail share: fraction of the recommended slots that hold a tail item.

    TailShare@k = sum_u sum_{i<k} [item_{u,i} is tail] / (number of filled slots, U * k when no
    slot is empty). Range [0, 1]. Use :func:`head_tail_split` to build ``is_tail``.
    Reference: Abdollahpouri, Burke & Mobasher, "Managing popularity bias in recommender systems
    with personalized re-ranking", FLAIRS 2019 (the "APLT" measure, pooled over slots).

    Args:
        recs: (n_users, K) item indices; negative entries are empty slots.
        is_tail: (n_items,) bool, True for tail items.
        k: the cutoff.

    Returns:
        The tail share as a float.

    Raises:
        ValueError: if no item is recommended at all.
    """
    is_tail = np.asarray(is_tail, dtype=bool)
    shown = _shown(recs, k, is_tail.size)
    if shown.size == 0:
        raise ValueError("recs holds no recommended item")
    return float(is_tail[shown].mean())


def avg_popularity_at_k(recs: np.ndarray, item_counts: np.ndarray, k: int) -> float:
    """Average popularity of the recommended items.

    AvgPop@k = mean over filled slots of the item's train interaction count. Range [0, max count];
    lower means less popularity-biased recommendations.
    Reference: Yin et al., "Challenging the long tail recommendation", VLDB 2012; Abdollahpouri
    et al., FLAIRS 2019 ("ARP").

    Args:
        recs: (n_users, K) item indices; negative entries are empty slots.
        item_counts: (n_items,) train interaction count per item.
        k: the cutoff.

    Returns:
        The mean count as a float.

    Raises:
        ValueError: if no item is recommended at all.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    shown = _shown(recs, k, counts.size)
    if shown.size == 0:
        raise ValueError("recs holds no recommended item")
    return float(counts[shown].mean())


def novelty_at_k(recs: np.ndarray, item_user_counts: np.ndarray, n_users: int, k: int) -> float:
    """Novelty: mean self-information of the recommended items.

    Novelty@k = mean over filled slots of -log2(p_i), p_i = (u_i + 1) / (n_users + 1), where u_i is
    the number of train users who interacted with item i. The add-one smoothing keeps items no
    train user has seen finite (they score log2(n_users + 1), the maximum). Range
    [0, log2(n_users + 1)]; higher means less well-known items.
    Reference: Zhou et al., "Solving the apparent diversity-accuracy dilemma of recommender
    systems", PNAS 2010; Castells, Hurley & Vargas, "Novelty and diversity in recommender
    systems", Recommender Systems Handbook 2015.

    Args:
        recs: (n_users, K) item indices; negative entries are empty slots.
        item_user_counts: (n_items,) number of distinct train users per item.
        n_users: number of train users.
        k: the cutoff.

    Returns:
        The mean self-information in bits.

    Raises:
        ValueError: if no item is recommended at all.
    """
    counts = np.asarray(item_user_counts, dtype=np.float64)
    if n_users < 0:
        raise ValueError(f"n_users must be non-negative, got {n_users}")
    shown = _shown(recs, k, counts.size)
    if shown.size == 0:
        raise ValueError("recs holds no recommended item")
    p = (counts[shown] + 1.0) / (n_users + 1.0)
    return float(-np.log2(p).mean())


def gini_at_k(recs: np.ndarray, n_items: int, k: int) -> float:
    """Gini index of how often each catalogue item is shown.

    With x the exposure counts of all n items (items never shown count 0) sorted ascending,
    G = sum_{i=1..n} (2i - n - 1) x_i / (n * sum_i x_i). Range [0, 1 - 1/n]: 0 is equal exposure,
    1 - 1/n is every slot on one item.
    Reference: Fleder & Hosanagar, "Blockbuster culture's next rise or fall", Management Science
    2009; Castells, Hurley & Vargas, Recommender Systems Handbook 2015.

    Args:
        recs: (n_users, K) item indices; negative entries are empty slots.
        n_items: catalogue size.
        k: the cutoff.

    Returns:
        The Gini index as a float.

    Raises:
        ValueError: if no item is recommended at all.
    """
    if n_items < 1:
        raise ValueError(f"n_items must be positive, got {n_items}")
    shown = _shown(recs, k, n_items)
    if shown.size == 0:
        raise ValueError("recs holds no recommended item")
    x = np.sort(np.bincount(shown, minlength=n_items)).astype(np.float64)
    n = x.size
    weights = 2.0 * np.arange(1, n + 1) - n - 1.0
    return float(weights @ x / (n * x.sum()))


def ild_at_k(recs: np.ndarray, item_vectors: np.ndarray | None, k: int) -> float | None:
    """Intra-list diversity: mean pairwise cosine distance inside each top-k list.

    ILD(u) = 2 / (m (m - 1)) * sum_{i<j} (1 - cos(v_i, v_j)) over the m filled slots of the user's
    top k; ILD@k is its mean over users with m >= 2 (shorter lists are skipped). Rows are
    L2-normalised first; a zero vector has cosine 0 with everything. Range [0, 2] (in practice
    [0, 1] for non-negative embeddings). Computed in chunks of users with a batched matmul.
    Reference: Ziegler et al., "Improving recommendation lists through topic diversification",
    WWW 2005; Smyth & McClave, "Similarity vs. diversity", ICCBR 2001.

    Args:
        recs: (n_users, K) item indices; negative entries are empty slots.
        item_vectors: (n_items, d) float item embeddings, or None.
        k: the cutoff.

    Returns:
        The mean ILD as a float, or None when ``item_vectors`` is None or no list has 2 items.
    """
    if item_vectors is None:
        return None
    vectors = np.asarray(item_vectors)
    if vectors.ndim != 2:
        raise ValueError(f"item_vectors must be 2-D (n_items, d), got shape {vectors.shape}")
    if not np.issubdtype(vectors.dtype, np.floating):
        vectors = vectors.astype(np.float64)
    top = _top_k(recs, k)
    if top.size and top.max() >= vectors.shape[0]:
        raise ValueError(
            f"recs holds item index {int(top.max())} but item_vectors has {vectors.shape[0]} rows"
        )
    valid = top >= 0
    m = valid.sum(axis=1)
    keep = m >= 2
    if not keep.any():
        return None
    top, valid, m = top[keep], valid[keep], m[keep].astype(np.float64)
    total = 0.0
    for start in range(0, top.shape[0], _ILD_CHUNK):
        rows = slice(start, start + _ILD_CHUNK)
        v = vectors[np.where(valid[rows], top[rows], 0)]  # (c, k, d)
        norms = np.linalg.norm(v, axis=2, keepdims=True)
        v = v / np.where(norms > 0, norms, 1.0)
        v *= valid[rows][:, :, None]  # empty slots become zero vectors
        sim = v @ v.transpose(0, 2, 1)  # (c, k, k)
        off_diag = sim.sum(axis=(1, 2), dtype=np.float64) - np.trace(sim, axis1=1, axis2=2)
        mc = m[rows]
        total += float((1.0 - off_diag / (mc * (mc - 1.0))).sum())
    return total / top.shape[0]


# ----------------------------------------------------------------------------------------------
# Bootstrap confidence intervals over users


def resample_indices(n: int, n_boot: int, seed: int, chunk: int = _BOOT_CHUNK) -> Iterator[tuple[int, int, np.ndarray]]:
    """Bootstrap resamples of n units (with replacement, same size), ``chunk`` at a time.

    Yields (start, stop, idx): idx is (stop - start, n) indices, the resamples start..stop-1 of
    ``n_boot``; drawn from one generator seeded ``seed``, so a chunk size gives the same draws.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        yield start, stop, rng.integers(0, n, size=(stop - start, n))


def _bootstrap_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement, same size) of ``values``."""
    means = np.empty(n_boot, dtype=np.float64)
    for start, stop, idx in resample_indices(values.size, n_boot, seed):
        means[start:stop] = values[idx].mean(axis=1)
    return means


def _check_values(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean over users.

    Draws ``n_boot`` resamples of the users with replacement and returns the alpha/2 and
    1 - alpha/2 quantiles of their means.
    Reference: Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13.

    Args:
        values: (U,) per-user metric values.
        n_boot: number of bootstrap resamples.
        alpha: 1 - confidence level (0.05 gives a 95% interval).
        seed: seed of the resampling generator (results are deterministic for a given seed).

    Returns:
        ``(lo, hi)`` bounds of the interval.
    """
    arr = _check_values(values, "values")
    if n_boot < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need n_boot >= 1 and 0 < alpha < 1, got n_boot={n_boot}, alpha={alpha}")
    means = _bootstrap_means(arr, n_boot, seed)
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def paired_bootstrap_ci(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """Paired percentile bootstrap interval of the mean difference b - a over the same users.

    Users are resampled together, so the per-user differences d_u = b_u - a_u are bootstrapped;
    an interval that excludes 0 marks a difference significant at level alpha.
    Reference: Efron & Tibshirani, "An Introduction to the Bootstrap", 1993; Sakai, "Statistical
    reform in information retrieval?", SIGIR Forum 2014.

    Args:
        a: (U,) per-user values of the baseline.
        b: (U,) per-user values of the contender, same users in the same order.
        n_boot: number of bootstrap resamples.
        alpha: 1 - confidence level.
        seed: seed of the resampling generator.

    Returns:
        ``(diff, lo, hi)``: the observed mean difference and the interval bounds.
    """
    a_arr = _check_values(a, "a")
    b_arr = _check_values(b, "b")
    if a_arr.shape != b_arr.shape:
        raise ValueError(
            f"a and b must cover the same users, got shapes {a_arr.shape} and {b_arr.shape}"
        )
    diff = b_arr - a_arr
    lo, hi = bootstrap_ci(diff, n_boot=n_boot, alpha=alpha, seed=seed)
    return float(diff.mean()), lo, hi
