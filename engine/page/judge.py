"""Judging segment pages on held-out data: grid NDCG and friends, paired comparisons, the frontier."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine.evaluation import metrics as M
from engine.core.constants import DEFAULT_K, ITEM_COL, TITLE_COL
from engine.page.layout import Layout
from engine.models.topk import mask_rows, top_k
from engine.page.rerank import Settings, excluded_mask, rank_segment
from engine.studio.segments import Segment, check_size
from engine.studio.context import Studio, digest, single_thread

USER_METRICS = ("ndcg", "recall", "hr")  # per-user accuracy; everything else describes the page
GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # default frontier axis values
ILD_USERS = 1000  # personalised lists: intra-list diversity on at most this many users (seeded sample)


@dataclass
class PageEval:
    """Held-out metrics of one page (or one list per user) for a group of users.

    Attributes:
        metrics: aggregate values (``ndcg@10`` ... and the page-wide ``@n`` keys), ``n_users``.
        per_user: (U,) arrays of the per-user accuracy metrics, for paired bootstraps.
        users: (U,) the held-out users evaluated, ascending.
    """

    metrics: dict
    per_user: dict[str, np.ndarray] = field(repr=False)
    users: np.ndarray = field(repr=False)


def grid_discount(row_sizes: list[int]) -> np.ndarray:
    """Position discount of a grid page read row by row, left to right.

    The reading position p counts the slots of all rows above plus the column (0-based), and the
    discount is the NDCG one, 1 / log2(p + 2): the first card of row two follows the last card of
    row one. This is the row-major reading order eye-tracking finds on grid pages (rows first,
    then left to right within a row; Xie et al., "Grid-based evaluation metrics for web image
    search", WWW 2019). With one row it is plain NDCG.

    Args:
        row_sizes: cards per row, top to bottom.

    Returns:
        (sum(row_sizes),) discounts in reading order.
    """
    n = int(sum(row_sizes))
    return 1.0 / np.log2(np.arange(n, dtype=np.float64) + 2.0)


def _history_hits(studio: Studio, users: np.ndarray, recs: np.ndarray) -> np.ndarray:
    """(U, n) bool: the user already interacted with the item in that slot (in training)."""
    sub = studio.history[users]
    out = np.zeros(recs.shape, dtype=bool)
    filled = recs >= 0
    if not filled.any():
        return out
    rows = np.repeat(np.arange(len(users)), recs.shape[1]).reshape(recs.shape)
    vals = np.asarray(sub[rows[filled], recs[filled]]).ravel() > 0
    out[filled] = vals
    return out


def _shared_hits(studio: Studio, page: np.ndarray, users: np.ndarray, targets: list[np.ndarray], mask_history: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hits of one page shown to every user, as (user row, page position) pairs, and the
    distinct |T| per user.

    The held-out items become a sparse user x item matrix, and the page's columns are read from it
    (and from the training history when masking): much cheaper than a search per user and slot,
    and hits are few, so they stay pairs (a dense users x slots matrix took most of a slider move's
    judging at 35,000 members).
    """
    def build() -> tuple[sp.csc_matrix, np.ndarray, sp.csc_matrix | None]:
        """The users' held-out items and (when masking) training items, by columns: one page's slots are columns."""
        lens = np.fromiter((len(t) for t in targets), dtype=np.int64, count=len(targets))
        if len(lens) and lens.min() == 0:
            raise ValueError(f"user row {int(np.argmin(lens))} has no targets; leave users with an empty held-out set out of the evaluation")
        flat = np.concatenate(targets).astype(np.int64) if len(targets) else np.zeros(0, np.int64)
        held = sp.csr_matrix((np.ones(flat.size, dtype=np.float32), flat, np.r_[0, np.cumsum(lens)]), shape=(len(users), studio.n_items))
        held.sum_duplicates()
        return held.tocsc(), np.diff(held.indptr).astype(np.int64), studio.history[users].tocsc() if mask_history else None

    # Made once per target list (``Studio.held_out`` hands out one list per member set, kept alive
    # here, so the identity check cannot meet a recycled id): every slider move judges a new page
    # on the same members, and gathering 35,000 members' targets took 90 ms of each move.
    held, n_rel, seen = studio.made_for(targets, ("shared_hits", digest(users), mask_history), build)
    filled = np.flatnonzero(page >= 0)
    if not filled.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), n_rel
    cols = page[filled]
    got = held[:, cols].tocoo()
    rows, where = got.row.astype(np.int64), got.col.astype(np.int64)
    if seen is not None and rows.size:
        had = seen[:, cols].tocoo()
        keep = ~np.isin(rows * len(cols) + where, had.row.astype(np.int64) * len(cols) + had.col)
        rows, where = rows[keep], where[keep]
    return rows, filled[where], n_rel


def _accuracy(rows: np.ndarray, positions: np.ndarray, n_rel: np.ndarray, discount: np.ndarray, cutoffs: tuple[int, ...], n: int) -> dict[str, np.ndarray]:
    """Per-user NDCG, recall and HR at each cutoff from the hits, given as (user row, page
    position) pairs (a user and position at most once), and the discounts of the n positions.

    NDCG@k = sum_{p<k} hit_p d_p / sum_{p<min(|T|, k)} 1 / log2(p + 2); Recall@k = hits in the
    first k / |T|; HR@k = 1 if any hit in the first k. |T| counts distinct held-out items.
    """
    n_users = len(n_rel)
    out = {}
    # The ideal list fills the first min(|T|, k) positions, also where the page has fewer than k slots.
    ideal = np.cumsum(1.0 / np.log2(np.arange(max(cutoffs), dtype=np.float64) + 2.0))
    for k in cutoffs:
        inside = positions < min(k, n)
        r, p = rows[inside], positions[inside]
        idcg = ideal[np.minimum(n_rel, k) - 1]
        found = np.bincount(r, minlength=n_users).astype(np.float64)
        out[f"ndcg@{k}"] = np.bincount(r, weights=discount[p], minlength=n_users) / idcg
        out[f"recall@{k}"] = found / n_rel
        out[f"hr@{k}"] = (found > 0).astype(np.float64)
    return out


def bootstrap_ci_counts(values: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over users, drawn as counts of distinct values.

    Resampling n users with replacement gives each distinct value v_j a count
    c ~ Multinomial(n, n_j / n), and the resampled mean is sum_j c_j v_j / n: the same
    distribution as ``metrics.bootstrap_ci`` (Efron & Tibshirani 1993, ch. 13) at a cost in the
    number of distinct values, not of users. Per-user accuracy of one shared page takes few
    distinct values (most users score 0).

    Args:
        values: (U,) per-user metric values.
        n_boot: bootstrap resamples.
        alpha: 1 - confidence level.
        seed: seed of the resampling.

    Returns:
        ``(lo, hi)``.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {arr.shape}")
    distinct, counts = np.unique(arr, return_counts=True)
    draws = np.random.default_rng(seed).multinomial(arr.size, counts / arr.size, size=n_boot)  # (B, J)
    means = draws @ distinct / arr.size
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def _ild(studio: Studio, lists: np.ndarray, k: int) -> float | None:
    """``metrics.ild_at_k`` on the rows of the vectors the lists use (cheap for one page)."""
    if not (lists[:, :k] >= 0).any():
        return None
    used, inverse = np.unique(np.where(lists >= 0, lists, -1), return_inverse=True)
    inverse = inverse.reshape(lists.shape)
    if used[0] == -1:  # keep empty slots empty
        remap = np.where(lists >= 0, inverse - 1, -1)
        used = used[1:]
    else:
        remap = inverse
    return M.ild_at_k(remap, ild_vectors(studio)[used], k)


def _beyond(studio: Studio, shown: np.ndarray, cutoffs: tuple[int, ...]) -> dict[str, float | None]:
    """Coverage, tail share, novelty and average price of (L, n) displayed lists."""
    out: dict[str, float | None] = {}
    prices = studio.data.items["price"].to_numpy(dtype=np.float64) if "price" in studio.data.items.columns else None
    for k in cutoffs:
        top = shown[:, :k]
        filled = top[top >= 0]
        if filled.size == 0:
            for key in ("coverage", "tail_share", "novelty", "avg_price"):
                out[f"{key}@{k}"] = None
            continue
        out[f"coverage@{k}"] = M.coverage_at_k(top, studio.n_items, k)
        out[f"tail_share@{k}"] = M.tail_share_at_k(top, studio.is_tail, k)
        out[f"novelty@{k}"] = M.novelty_at_k(top, studio.item_user_counts, studio.n_train_users, k)
        if prices is not None:
            p = prices[filled]
            out[f"avg_price@{k}"] = float(np.nanmean(p)) if np.isfinite(p).any() else None
        else:
            out[f"avg_price@{k}"] = None
    return out


def ild_vectors(studio: Studio) -> np.ndarray:
    """Vectors intra-list diversity is measured with: pretrained text vectors, else the model's item vectors."""
    return studio.text_vectors if studio.text_vectors is not None else studio.item_vectors


def evaluate_lists(
    studio: Studio,
    recs: np.ndarray,
    users: np.ndarray,
    targets: list[np.ndarray],
    row_sizes: list[int] | None = None,
    *,
    mask_history: bool = True,
    k: int = DEFAULT_K,
) -> PageEval:
    """Held-out metrics of pages shown to users.

    Accuracy (NDCG with :func:`grid_discount`, Recall, HR) is per user at k and at the page size
    n; with ``mask_history`` a slot holding an item the user interacted with in training counts as
    empty for that user (the convention of ``homepage evaluate``). Coverage, tail share, novelty,
    intra-list diversity and average price describe what is displayed: the one page when ``recs``
    is 1-D (they do not depend on the user), else every user's list (ILD on a seeded sample of
    ``ILD_USERS`` lists).

    Args:
        studio: the shared context.
        recs: (n,) one page for everyone, or (U, n) one list per user; item indices in reading
            order, -1 for empty slots.
        users: (U,) held-out users.
        targets: their held-out items.
        row_sizes: cards per row (default: one row).
        mask_history: see above.
        k: the headline cutoff (10).

    Returns:
        The :class:`PageEval`; accuracy values are None when no user is held out.
    """
    recs = np.asarray(recs, dtype=np.int64)
    if recs.ndim == 1:
        with single_thread():  # one page: small, latency-bound products
            return _evaluate(studio, recs[None, :], users, targets, row_sizes, mask_history, k)
    return _evaluate(studio, recs, users, targets, row_sizes, mask_history, k)


def _evaluate(studio: Studio, page: np.ndarray, users: np.ndarray, targets: list[np.ndarray], row_sizes: list[int] | None, mask_history: bool, k: int) -> PageEval:
    n = page.shape[1]
    row_sizes = list(row_sizes) if row_sizes is not None else [n]
    if sum(row_sizes) != n:
        raise ValueError(f"row sizes {row_sizes} do not add up to the {n} slots of the page")
    cutoffs = (k,) if n <= k else (k, n)
    per_user: dict[str, np.ndarray] = {}
    metrics: dict = {"n_users": int(len(users))}
    if len(users):
        if page.shape[0] == 1:
            rows, positions, n_rel = _shared_hits(studio, page[0], np.asarray(users, dtype=np.int64), targets, mask_history)
        else:
            lists = page.copy()
            if mask_history:
                lists[_history_hits(studio, users, lists)] = -1
            hits, n_rel = M.hit_matrix(lists, targets, max(n, 1))
            rows, positions = np.nonzero(hits)
        per_user = _accuracy(rows, positions, n_rel, grid_discount(row_sizes), cutoffs, n)
        for key, values in per_user.items():
            metrics[key] = float(values.mean())
        lo, hi = bootstrap_ci_counts(per_user[f"ndcg@{k}"]) if len(users) > 1 else (metrics[f"ndcg@{k}"],) * 2
        metrics[f"ndcg@{k}_ci95"] = [float(lo), float(hi)]
    else:
        for c in cutoffs:
            for name in USER_METRICS:
                metrics[f"{name}@{c}"] = None
        metrics[f"ndcg@{k}_ci95"] = None
    metrics.update(_beyond(studio, page, cutoffs))
    sample = page
    if page.shape[0] > ILD_USERS:
        sample = page[np.sort(np.random.default_rng(0).choice(page.shape[0], ILD_USERS, replace=False))]
    for c in cutoffs:
        metrics[f"ild@{c}"] = _ild(studio, sample, c)
    return PageEval(metrics, per_user, np.asarray(users, dtype=np.int64))


def evaluate_layout(studio: Studio, layout: Layout, segment: Segment, *, mask_history: bool = True, k: int = DEFAULT_K) -> PageEval:
    """A segment's page judged on the held-out interactions of its members (the same page for all).

    Args:
        studio: the shared context.
        layout: the page.
        segment: the segment whose members see it (refused under the minimum size).
        mask_history: a card a member already interacted with is no hit for them.
        k: the headline cutoff.

    Returns:
        The :class:`PageEval` (see :func:`evaluate_lists`).
    """
    check_size(segment)
    users, targets = studio.held_out(segment.members)
    return evaluate_lists(studio, layout.item_indices(studio), users, targets, layout.row_sizes(), mask_history=mask_history, k=k)


# ----------------------------------------------------------------------------------------------
# Comparing two layouts


def judged_layout(studio: Studio, segment: Segment, settings: Settings | None = None, *, mask_history: bool = True) -> Layout:
    """The segment's homepage (:func:`~engine.page.rerank.rank_segment`) with ``metrics`` filled by :func:`evaluate_layout`.

    Args:
        studio: the shared context.
        segment: the segment (refused under the minimum size).
        settings: knobs, rows and rules (defaults when None).
        mask_history: a card a member already interacted with is no hit for them.

    Returns:
        The :class:`Layout`; ``timing_ms`` holds the re-ranking stages and ``evaluate``.
    """
    layout = rank_segment(studio, segment, settings)
    start = time.perf_counter()
    layout.metrics = evaluate_layout(studio, layout, segment, mask_history=mask_history).metrics
    layout.timing_ms["evaluate"] = round((time.perf_counter() - start) * 1e3, 3)
    return layout


def compare(
    studio: Studio,
    segment: Segment,
    layout_a: Layout,
    layout_b: Layout,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    mask_history: bool = True,
) -> dict:
    """Layout B against layout A on the segment's held-out users.

    Per metric: both values, the difference b - a and, for per-user metrics (NDCG, Recall, HR), a
    95% paired percentile bootstrap interval of the mean difference over users
    (``metrics.paired_bootstrap_ci``); page metrics (coverage, tail share, novelty, ILD, price)
    are the same for every member, so they get no interval. Per item: its 1-based reading
    position in each layout and the change (position in A - position in B: positive = moved up).

    Args:
        studio: the shared context.
        segment: the segment (refused under the minimum size).
        layout_a: the baseline.
        layout_b: the contender.
        n_boot: bootstrap resamples.
        seed: seed of the resampling.
        mask_history: as in :func:`evaluate_layout`.

    Returns:
        ``{"segment", "n_users", "metrics": {key: {"a", "b", "diff", "ci95", "level"}}, "items": [...]}``.
    """
    ev_a = evaluate_layout(studio, layout_a, segment, mask_history=mask_history)
    ev_b = evaluate_layout(studio, layout_b, segment, mask_history=mask_history)
    out_metrics = {}
    for key, a in ev_a.metrics.items():
        if key == "n_users" or key.endswith("_ci95") or key not in ev_b.metrics:
            continue
        b = ev_b.metrics[key]
        entry = {"a": a, "b": b, "diff": (b - a) if a is not None and b is not None else None, "ci95": None,
                 "level": "user" if key.split("@")[0] in USER_METRICS else "page"}
        if entry["level"] == "user" and key in ev_a.per_user and key in ev_b.per_user and len(ev_a.users) > 1:
            diff, lo, hi = M.paired_bootstrap_ci(ev_a.per_user[key], ev_b.per_user[key], n_boot=n_boot, seed=seed)
            entry["ci95"] = [lo, hi]
        out_metrics[key] = entry
    return {"segment": segment.to_dict(), "n_users": int(len(ev_a.users)), "metrics": out_metrics, "items": rank_changes(layout_a, layout_b)}


def rank_changes(layout_a: Layout, layout_b: Layout) -> list[dict]:
    """Per item in either layout: title, 1-based reading position in A and in B, and the change.

    change = rank_a - rank_b (positive: moved up in B); None when the item is on one page only.
    Items are listed in B's order, then those only in A.
    """
    def positions(layout: Layout) -> dict[str, tuple[int, str]]:
        out = {}
        pos = 0
        for row in layout.rows:
            for card in row.items:
                pos += 1
                if card.item_id is not None and card.item_id not in out:
                    out[card.item_id] = (pos, card.title)
        return out

    pa, pb = positions(layout_a), positions(layout_b)
    order = list(pb) + [i for i in pa if i not in pb]
    rows = []
    for item in order:
        ra = pa.get(item, (None, None))[0]
        rb = pb.get(item, (None, None))[0]
        title = (pb.get(item) or pa.get(item))[1]
        rows.append({"item_id": item, "title": title, "rank_a": ra, "rank_b": rb, "change": (ra - rb) if ra is not None and rb is not None else None})
    return rows


# ----------------------------------------------------------------------------------------------
# The accuracy-diversity frontier and the value of segmentation


def frontier(
    studio: Studio,
    segment: Segment,
    settings: Settings | None = None,
    diversities: tuple[float, ...] = GRID,
    long_tails: tuple[float, ...] = GRID,
    *,
    mask_history: bool = True,
) -> pd.DataFrame:
    """Sweep the diversity and long-tail knobs and judge each page on held-out data.

    Every other setting (method, visual weight, rows, rules) is kept from ``settings``. The current
    setting is one more row (``current`` True) unless it lies on the grid, where that grid point
    is marked instead.

    Args:
        studio: the shared context.
        segment: the segment (refused under the minimum size).
        settings: the current settings (defaults when None).
        diversities: diversity values swept.
        long_tails: long-tail values swept.
        mask_history: as in :func:`evaluate_layout`.

    Returns:
        A tidy frame: one row per point with ``diversity``, ``long_tail``, ``current``,
        ``seconds`` and every metric of :func:`evaluate_lists` (``ndcg@10_ci95`` a [lo, hi] list).
    """
    check_size(segment)
    settings = settings or Settings()
    users, targets = studio.held_out(segment.members)
    points = [(float(d), float(t)) for d in diversities for t in long_tails]
    current = (settings.diversity, settings.long_tail)
    if current not in points:
        points.append(current)
    rows = []
    base = settings.to_dict()
    for d, t in points:
        start = time.perf_counter()
        s = Settings.from_dict({**base, "diversity": d, "long_tail": t})
        page = rank_segment(studio, segment, s, explain=False)
        items = page.flat_items()
        ev = evaluate_lists(studio, items, users, targets, page.row_sizes(), mask_history=mask_history)
        row = {"diversity": d, "long_tail": t, "current": (d, t) == current}
        row.update(ev.metrics)  # ``ndcg@10_ci95`` included: [lo, hi], the bootstrap interval over the members
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    return pd.DataFrame(rows)


def segment_value(studio: Studio, segment: Segment, layout: Layout | None = None, *, mask_history: bool = True) -> pd.DataFrame:
    """The segment page against a per-user personalised page and one global popular page.

    All three are judged on the same held-out members with the same number of slots n: the
    segment page (one page for the segment), the personalised top-n of each member (the model's
    own scores, history masked when ``mask_history``), and the n items most users interacted
    with in training (one page for everyone). The layout's exclusions apply to all three.

    Args:
        studio: the shared context.
        segment: the segment (refused under the minimum size).
        layout: the segment's page (default: built with default settings).
        mask_history: as in :func:`evaluate_layout`.

    Returns:
        A frame with one row per page kind (``page`` column) and the metrics as columns.
    """
    check_size(segment)
    layout = layout or rank_segment(studio, segment)
    users, targets = studio.held_out(segment.members)
    items = layout.item_indices(studio)
    n = len(items)
    excluded = excluded_mask(studio, Settings.from_dict(layout.settings).rules_obj())
    out = []
    ev = evaluate_lists(studio, items, users, targets, layout.row_sizes(), mask_history=mask_history)
    out.append({"page": "segment page", **ev.metrics})
    if len(users):
        scores = studio.scores(users).astype(np.float32)
        scores[:, excluded] = -np.inf
        if mask_history:
            mask_rows(scores, users, studio.history)
        recs, _ = top_k(scores, n)
        ev = evaluate_lists(studio, recs, users, targets, layout.row_sizes(), mask_history=mask_history)
        out.append({"page": "personalised top-k", **ev.metrics})
    popular = studio.item_user_counts.astype(np.float64)
    popular[excluded] = -np.inf
    pop_page, _ = top_k(popular[None, :], n)
    ev = evaluate_lists(studio, pop_page[0], users, targets, layout.row_sizes(), mask_history=mask_history)
    out.append({"page": "global popular page", **ev.metrics})
    frame = pd.DataFrame(out)
    return frame.drop(columns=[c for c in frame.columns if c.endswith("_ci95")])


def layout_items_table(studio: Studio, layout: Layout) -> pd.DataFrame:
    """One row per card in reading order: row, slot, item id, title, category, price, score, badges."""
    rows = []
    items = studio.data.items
    for r, row in enumerate(layout.rows, start=1):
        for s, card in enumerate(row.items, start=1):
            rec = {"row": r, "slot": s, "row_title": row.title, ITEM_COL: card.item_id, TITLE_COL: card.title,
                   "score": card.score, "badges": ", ".join(card.badges), "why": "; ".join(card.why)}
            idx = studio.data.item_index.get(card.item_id) if card.item_id else None
            for col in ("category", "brand", "price"):
                if col in items.columns:
                    rec[col] = items[col].iat[idx] if idx is not None else None
            rows.append(rec)
    return pd.DataFrame(rows)
