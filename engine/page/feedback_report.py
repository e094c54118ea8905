"""What logged feedback says about a page: click rates by position, row theme, badge and segment, and
an off-policy estimate of another page's click rate from the same log.

Every table has one row per group with ``impressions`` (cards shown), ``users`` (distinct users who
saw them), ``clicks``, ``click_rate`` = clicks / impressions and a 95% interval ``low``, ``high``:

* ``"wilson"`` (the default): the Wilson score interval of a binomial proportion (Wilson 1927;
  Brown, Cai & DasGupta, "Interval estimation for a binomial proportion", Statistical Science
  2001). It counts impressions as independent; a user who sees a page many times makes them less
  so, and the interval then comes out narrower than the truth.
* ``"bootstrap"``: a percentile bootstrap over users (users resampled with replacement, all their
  impressions with them; Efron & Tibshirani 1993, ch. 13), which keeps a user's impressions
  together, as :func:`engine.evaluation.offpolicy.snips` does.

Rows and slots are 0-based, as in the feedback file; a row whose theme is unknown is labelled
``row N`` with N counting from 1 (``row 1`` is the top row).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from engine.core.constants import ITEM_COL, USER_COL
from engine.data.feedback import (
    CLICK_COL,
    LAYOUT_COL,
    PROPENSITY_COL,
    PURCHASE_COL,
    ROW_COL,
    SLOT_COL,
)
from engine.evaluation.metrics import resample_indices
from engine.evaluation.offpolicy import N_BOOT, position_based, snips
from engine.page.layout import Layout
from engine.page.rerank import BADGES, Settings, card_badges, rank_segment
from engine.studio.context import Studio
from engine.studio.segments import (
    METHODS,
    Segment,
    Segmentation,
    learned_segments,
    segment_catalogue,
)

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
INTERVALS = ("wilson", "bootstrap")
NO_BADGE = "no badge"
NO_SEGMENT = "no learned segment"  # users without training history, or outside the studio's sample
RATE_COLUMNS = ("impressions", "users", "clicks", "click_rate", "low", "high")
LOW_SUPPORT = 0.5  # below this share of the current page's cards seen in their slot, the comparison carries a note
_BOOT_CELLS = 4_000_000  # resample counts held at once (bootstrap resamples x users)


# ----------------------------------------------------------------------------------------------
# Intervals


def wilson_interval(clicks, impressions, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of clicks / impressions, element by element.

        centre = (p + z²/2n) / (1 + z²/n),  half = z sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)

    Args:
        clicks: clicks per group.
        impressions: impressions per group (n); groups with n = 0 get NaN.
        z: the normal quantile (1.96 for a 95% interval).

    Returns:
        (low, high) arrays, within [0, 1].
    """
    k = np.asarray(clicks, dtype=np.float64)
    n = np.asarray(impressions, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    low, high = np.where(k <= 0, 0.0, low), np.where(k >= n, 1.0, high)  # exact at the ends (rounding aside)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def _user_bootstrap(user: np.ndarray, group: np.ndarray, n_groups: int, num: np.ndarray, den: np.ndarray,
                    n_boot: int, seed: int, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of sum(num) / sum(den) per group over user resamples.

    A resample draws every user's count c_u ~ Multinomial(U, 1/U); the group's ratio is
    sum_u c_u num_ug / sum_u c_u den_ug (NaN where a resample holds none of the group's rows).
    """
    import scipy.sparse as sp

    n_users = int(user.max()) + 1 if user.size else 0
    if n_users == 0:
        return np.full(n_groups, np.nan), np.full(n_groups, np.nan)
    shape = (n_users, n_groups)
    num_ug = sp.csr_matrix((num, (user, group)), shape=shape)
    den_ug = sp.csr_matrix((den, (user, group)), shape=shape)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, _BOOT_CELLS // n_users))
    ratios = np.empty((n_boot, n_groups))
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        counts = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=stop - start).astype(np.float64)
        top, bottom = (num_ug.T @ counts.T).T, (den_ug.T @ counts.T).T
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios[start:stop] = np.where(bottom > 0, top / bottom, np.nan)
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanquantile(ratios, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0) if n_boot else (np.nan, np.nan)
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Click rates of groups


def click_rates(feedback: pd.DataFrame, by: str | Sequence[str] | pd.Series | pd.DataFrame, *, interval: str = "wilson",
                n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Impressions, users, clicks, click rate and its 95% interval per group of feedback rows.

    Args:
        feedback: rows as :func:`engine.data.feedback.read_feedback` returns them.
        by: column name(s) of ``feedback``, or a Series / DataFrame of group labels aligned with its
            rows (one column per key).
        interval: ``"wilson"`` or ``"bootstrap"`` (see the module docstring).
        n_boot: bootstrap resamples (``"bootstrap"`` only).
        seed: seed of the resampling.

    Returns:
        One row per group, in sorted order of the keys: the key column(s), then
        :data:`RATE_COLUMNS` (and ``purchases`` when the log has them).

    Raises:
        ValueError: an unknown interval method.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    if isinstance(by, str):
        keys = feedback[[by]]
    elif isinstance(by, pd.Series):
        keys = by.to_frame()
    elif isinstance(by, pd.DataFrame):
        keys = by
    else:
        keys = feedback[list(by)]
    keys = keys.reset_index(drop=True)
    names = list(keys.columns)
    clicked = feedback[CLICK_COL].to_numpy().astype(np.float64)
    users = pd.factorize(feedback[USER_COL])[0]
    work = keys.assign(_click=clicked, _user=users)
    if PURCHASE_COL in feedback.columns:
        work["_buy"] = feedback[PURCHASE_COL].to_numpy().astype(np.float64)
    grouped = work.groupby(names, sort=True, dropna=False)
    out = grouped.agg(impressions=("_click", "size"), users=("_user", "nunique"), clicks=("_click", "sum")).reset_index()
    out["clicks"] = out["clicks"].astype(np.int64)
    out["click_rate"] = out["clicks"] / out["impressions"]
    if interval == "wilson":
        out["low"], out["high"] = wilson_interval(out["clicks"], out["impressions"])
    else:
        group = grouped.ngroup().to_numpy()  # numbered in the order of ``out``'s rows (sorted keys)
        out["low"], out["high"] = _user_bootstrap(users, group, len(out), clicked, np.ones(len(clicked)), n_boot, seed)
    if "_buy" in work.columns:
        out["purchases"] = grouped["_buy"].sum().to_numpy().astype(np.int64)
    return out


def rates_by_position(feedback: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Click rate per (row, slot): the position-bias curve of every row (``click_rates`` keywords)."""
    return click_rates(feedback, [ROW_COL, SLOT_COL], **kwargs)


def rates_by_slot(feedback: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Click rate per slot (0-based, left to right), all rows together."""
    return click_rates(feedback, SLOT_COL, **kwargs)


def rates_by_row(feedback: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Click rate per row (0-based, top to bottom), all slots together."""
    return click_rates(feedback, ROW_COL, **kwargs)


# ----------------------------------------------------------------------------------------------
# Row themes and badges, from the layouts the feedback refers to


def _by_id(layouts: Iterable[Layout] | Mapping[str, Layout] | None) -> dict[str, Layout]:
    if not layouts:
        return {}
    values = layouts.values() if isinstance(layouts, Mapping) else layouts
    return {layout.layout_id: layout for layout in values}


def _lookup(feedback: pd.DataFrame, table: dict[tuple, object], columns: tuple[str, ...]) -> pd.Series:
    """The value of ``table`` at each row's key (the row's ``columns``, ids as text, positions as int); NaN where absent."""
    keys = pd.DataFrame({c: feedback[c].astype(str) if c in (LAYOUT_COL, ITEM_COL) else feedback[c].astype(np.int64) for c in columns})
    if not table:
        return pd.Series([np.nan] * len(feedback), dtype=object)
    index = pd.MultiIndex.from_tuples(list(table), names=list(columns))
    values = pd.Series(list(table.values()), index=index, dtype=object)
    return pd.Series(values.reindex(pd.MultiIndex.from_frame(keys)).to_numpy(), dtype=object)


def row_themes(feedback: pd.DataFrame, layouts: Iterable[Layout] | None = None) -> pd.Series:
    """The theme of the row each impression was in (``top_picks``, ``because``, ``new``, ``hidden_gems``).

    (layout_id, row) is looked up in the given layouts (by their :attr:`Layout.layout_id`); a row of
    a layout not given, or past its last row, is ``row N`` (N = row + 1).
    """
    themes = {(lid, r): str(row.theme) for lid, layout in _by_id(layouts).items() for r, row in enumerate(layout.rows)}
    found = _lookup(feedback, themes, (LAYOUT_COL, ROW_COL))
    fallback = "row " + (feedback[ROW_COL].astype(np.int64) + 1).astype(str).reset_index(drop=True)
    return found.where(found.notna(), fallback).rename("theme")


def rates_by_theme(feedback: pd.DataFrame, layouts: Iterable[Layout] | None = None, **kwargs) -> pd.DataFrame:
    """Click rate per row theme (:func:`row_themes`)."""
    return click_rates(feedback, row_themes(feedback, layouts), **kwargs)


def impression_badges(studio: Studio, feedback: pd.DataFrame, layouts: Iterable[Layout] | None = None) -> pd.DataFrame:
    """(impressions, badges) bool: which badges the card of each impression carried.

    ``new`` and ``long-tail`` follow :func:`engine.page.rerank.card_badges` (the page's own
    definition) for the shown item; ``pinned`` is known only from a given layout: the card at that
    (layout_id, row, slot) was pinned and the log shows that very item there (an exploring page may
    have shown another). Items unknown to the studio's data carry no badge.
    """
    index = studio.data.item_index
    codes, uniques = pd.factorize(feedback[ITEM_COL].astype(str))
    flags = {name: np.zeros(len(uniques), dtype=bool) for name in BADGES}
    for u, item_id in enumerate(uniques):
        i = index.get(item_id)
        for name in card_badges(studio, i) if i is not None else ():
            flags[name][u] = True
    out = {name: flags[name][codes] if len(codes) else np.zeros(0, dtype=bool) for name in BADGES}
    pinned = {(lid, r, s): card.item_id for lid, layout in _by_id(layouts).items()
              for r, row in enumerate(layout.rows) for s, card in enumerate(row.items) if "pinned" in card.badges}
    if pinned:
        at = _lookup(feedback, pinned, (LAYOUT_COL, ROW_COL, SLOT_COL))
        out["pinned"] = (at.to_numpy() == feedback[ITEM_COL].astype(str).to_numpy())
    return pd.DataFrame(out)


def rates_by_badge(studio: Studio, feedback: pd.DataFrame, layouts: Iterable[Layout] | None = None, **kwargs) -> pd.DataFrame:
    """Click rate of cards with each badge (a card with two badges counts in both), and of cards without one.

    Returns:
        Rows ``new``, ``long-tail``, ``pinned`` (those that occur) and :data:`NO_BADGE`, in that
        order, with the columns of :func:`click_rates` and ``badge`` as the key.
    """
    flags = impression_badges(studio, feedback, layouts)
    parts = []
    for name in (*BADGES, NO_BADGE):
        mask = (~flags.any(axis=1) if name == NO_BADGE else flags[name]).to_numpy()
        if not mask.any():
            continue
        part = feedback.loc[mask].reset_index(drop=True)
        parts.append(click_rates(part, pd.Series([name] * len(part), name="badge"), **kwargs))
    columns = ["badge", *RATE_COLUMNS] + (["purchases"] if PURCHASE_COL in feedback.columns else [])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


# ----------------------------------------------------------------------------------------------
# Segments


def user_segments(studio: Studio, feedback: pd.DataFrame, segments: Segmentation | Sequence[Segment] | None = None) -> pd.DataFrame:
    """The learned segment of the user of each impression: columns ``segment`` (id) and ``name``.

    Args:
        studio: the shared context.
        feedback: the rows.
        segments: the learned segmentation (or its segments); default: :func:`learned_segments`
            of the studio with its defaults. A user in none of them (no training history, or
            outside the studio's sample) is :data:`NO_SEGMENT`; were the segments to overlap, a
            user counts in the first that holds them.
    """
    if segments is None:
        segments = learned_segments(studio)
    found = segments.segments if isinstance(segments, Segmentation) else list(segments)
    label = np.full(studio.data.n_users, -1, dtype=np.int64)
    for j in range(len(found) - 1, -1, -1):  # the first segment wins
        label[np.asarray(found[j].members, dtype=np.int64)] = j
    rows = feedback[USER_COL].astype(str).map(studio.data.user_index)  # NaN for users the data does not know
    known = rows.notna().to_numpy()
    which = np.full(len(feedback), -1, dtype=np.int64)
    which[known] = label[rows[known].to_numpy(dtype=np.int64)]
    ids = np.array([s.id for s in found] + [NO_SEGMENT], dtype=object)
    names = np.array([s.name for s in found] + [NO_SEGMENT], dtype=object)
    return pd.DataFrame({"segment": ids[which], "name": names[which]})  # -1 picks the last entry: NO_SEGMENT


def rates_by_segment(studio: Studio, feedback: pd.DataFrame, segments: Segmentation | Sequence[Segment] | None = None,
                     **kwargs) -> pd.DataFrame:
    """Click rate per learned segment of the users (:func:`user_segments`), largest first."""
    out = click_rates(feedback, user_segments(studio, feedback, segments), **kwargs)
    return out.sort_values(["impressions", "segment"], ascending=[False, True], kind="stable").reset_index(drop=True)


def feedback_report(studio: Studio, feedback: pd.DataFrame, layouts: Iterable[Layout] | None = None,
                    segments: Segmentation | Sequence[Segment] | None = None, **kwargs) -> dict:
    """Every table of this module for one log.

    Returns:
        ``{"summary": {impressions, users, clicks, click_rate, low, high, layouts, explored},
        "position", "slot", "row", "theme", "badge", "segment"}`` (frames of :func:`click_rates`);
        ``explored`` tells whether any row has a propensity under 1 (an exploring page).
    """
    layouts = list(_by_id(layouts).values())
    overall = click_rates(feedback, pd.Series(["all"] * len(feedback), name="all"), **kwargs)
    first = overall.iloc[0] if len(overall) else None
    summary = {
        "impressions": int(len(feedback)), "users": int(feedback[USER_COL].nunique()),
        "clicks": int(feedback[CLICK_COL].sum()),
        "click_rate": float(first["click_rate"]) if first is not None else None,
        "low": float(first["low"]) if first is not None else None, "high": float(first["high"]) if first is not None else None,
        "layouts": sorted(feedback[LAYOUT_COL].astype(str).unique().tolist()),
        "explored": bool(PROPENSITY_COL in feedback.columns and (feedback[PROPENSITY_COL] < 1).any()),
    }
    return {
        "summary": summary,
        "position": rates_by_position(feedback, **kwargs),
        "slot": rates_by_slot(feedback, **kwargs),
        "row": rates_by_row(feedback, **kwargs),
        "theme": rates_by_theme(feedback, layouts, **kwargs),
        "badge": rates_by_badge(studio, feedback, layouts, **kwargs),
        "segment": rates_by_segment(studio, feedback, segments, **kwargs),
    }


# ----------------------------------------------------------------------------------------------
# Off-policy: the current settings' page, estimated from the logged page's traffic


def layout_segment(studio: Studio, layout: Layout) -> Segment:
    """The segment a layout was made for, found again with the default clustering (``homepage layout``'s).

    Raises:
        ValueError: the layout names no segment id, or the id is not found.
    """
    seg_id = layout.segment.get("id") if isinstance(layout.segment, dict) else None
    if not seg_id:
        raise ValueError("the logged layout names no segment id")
    if str(seg_id).lower().startswith("rule:"):
        return segment_catalogue(studio, learned=False).get(seg_id)
    method = str(seg_id).split("-", 1)[0]
    return segment_catalogue(studio, method if method in METHODS else "kmeans").get(seg_id)


def _slot_items(layout: Layout) -> dict[tuple[int, int], str]:
    return {(r, s): card.item_id for r, row in enumerate(layout.rows) for s, card in enumerate(row.items) if card.item_id is not None}


def _on_page(log: pd.DataFrame, page: dict[tuple[int, int], str]) -> np.ndarray:
    """(n,) 1.0 where the logged item is the page's item in the logged (row, slot), else 0.0."""
    at = _lookup(log, page, (ROW_COL, SLOT_COL))
    return (at.to_numpy() == log[ITEM_COL].astype(str).to_numpy()).astype(np.float64)


def _position_estimate(log: pd.DataFrame, page: Layout, n_boot: int, seed: int) -> dict | None:
    """The position-based estimate (:func:`engine.evaluation.offpolicy.position_based`) of a fixed
    page's click rate from the log; None when the log cannot identify the position effect."""
    slots = _slot_items(page)
    width = 1 + max([s for _, s in slots] + [int(log[SLOT_COL].max())])
    n_rows = 1 + max([r for r, _ in slots] + [int(log[ROW_COL].max())])
    codes, _ = pd.factorize(pd.concat([log[ITEM_COL].astype(str), pd.Series(list(slots.values()), dtype=str)], ignore_index=True))
    target = np.full(n_rows * width, -1, dtype=np.int64)
    target[[r * width + s for r, s in slots]] = codes[len(log):]
    try:
        found = position_based(pd.factorize(log[USER_COL])[0], log[ROW_COL].to_numpy() * width + log[SLOT_COL].to_numpy(),
                               codes[: len(log)], log[CLICK_COL].to_numpy(), target, n_boot=n_boot, seed=seed)
    except ValueError:
        return None
    return {"click_rate": found.estimate, "ci95": [found.lo, found.hi], "support": found.support}


def _paired_difference(log: pd.DataFrame, target: np.ndarray, n_boot: int, seed: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """SNIPS(target) - observed click rate, with a percentile bootstrap over users (both on the same resamples)."""
    mu = log[PROPENSITY_COL].to_numpy(np.float64) if PROPENSITY_COL in log.columns else np.ones(len(log))
    weight, click = target / mu, log[CLICK_COL].to_numpy().astype(np.float64)
    user = pd.factorize(log[USER_COL])[0]
    n = int(user.max()) + 1
    sums = [np.bincount(user, weights=w, minlength=n) for w in (weight * click, weight, click, np.ones(len(log)))]
    value = sums[0].sum() / sums[1].sum() - sums[2].sum() / sums[3].sum()
    out = np.empty(n_boot)
    for start, stop, idx in resample_indices(n, n_boot, seed, max(1, min(n_boot, _BOOT_CELLS // n))):
        a, b, c, d = (s[idx].sum(axis=1) for s in sums)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = np.where(b > 0, a / b, np.nan) - c / d
    lo, hi = np.nanquantile(out, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(value), float(lo), float(hi)


def offpolicy_comparison(studio: Studio, feedback: pd.DataFrame, logged_layout: Layout, current_settings: Settings | dict,
                         *, segment: Segment | None = None, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """The current settings' page against the logged page, both judged on the logged page's traffic.

    Only feedback rows of the logged page (``layout_id`` = ``logged_layout.layout_id``) are used.

    * **logged**: the observed click rate of those rows (clicks / impressions), with a 95% percentile
      bootstrap interval over users (``snips`` with weights 1).
    * **logged_page**: the SNIPS estimate of the logged page shown as laid out; with exploration in
      the log it differs from the observed rate, without it the two are equal.
    * **current**: the SNIPS estimate (:func:`engine.evaluation.offpolicy.snips`) of the page the
      current settings build for the same segment (:func:`~engine.page.rerank.rank_segment`). The
      target policy is that fixed page: it puts probability 1 on the current page's item in each
      (row, slot) and 0 on every other item, so a logged row counts (with weight 1 / propensity) only
      when the log showed the current page's item in that very slot. The current page's items the log
      never showed in their slot get weight 0: the estimate speaks for the cards the log supports
      (``support``: the share of the current page's cards shown there at least once), and SNIPS's
      self-normalisation assumes the unsupported cards click like the supported ones. None when no
      logged row matches.
    * **current_position_model**: the same page's click rate under the position-based click model
      (:func:`engine.evaluation.offpolicy.position_based`): it also uses the current page's items
      the log showed in other slots, so a page that reorders or mixes the logged items is judged
      on all of its cards; it assumes clicks = P(slot looked at) x P(item attracts). ``support`` is
      the share of the current page's cards it can judge
      (:class:`~engine.evaluation.offpolicy.PositionEstimate`). None when the log never moved an
      item between slots (no exploration) or it can judge none of the cards.
    * **difference**: current - logged, with a paired bootstrap over users (one resample for both).

    Args:
        studio: the shared context.
        feedback: rows as :func:`engine.data.feedback.read_feedback` returns them.
        logged_layout: the page that was logged (a layout JSON read with ``Layout.from_json``).
        current_settings: the knobs and rules of the current page (a :class:`Settings` or its dict);
            its rows, candidates and similarity are always the logged layout's, so both pages have
            the same slots.
        segment: the logged page's segment (default: found again by :func:`layout_segment`).
        n_boot: bootstrap resamples; seed: their seed.

    Returns:
        ``{"layout_id", "current_layout_id", "segment", "impressions", "users", "explored",
        "logged": {click_rate, ci95, clicks}, "logged_page": {click_rate, ci95},
        "current": {click_rate, ci95, matched_impressions, support} or None,
        "current_position_model": {click_rate, ci95, support} or None,
        "difference": {value, ci95} or None, "notes": [...], "sentence"}``.

    Raises:
        ValueError: no feedback row of the logged page, or a segment that cannot be found.
    """
    logged_id = logged_layout.layout_id
    log = feedback[feedback[LAYOUT_COL].astype(str) == logged_id].reset_index(drop=True)
    if log.empty:
        seen = sorted(feedback[LAYOUT_COL].astype(str).unique().tolist())[:5]
        raise ValueError(f"the feedback has no row of the logged page {logged_id} (it holds pages {', '.join(seen) or 'none'})")
    segment = segment or layout_segment(studio, logged_layout)
    notes = []
    size = logged_layout.segment.get("size") if isinstance(logged_layout.segment, dict) else None
    if size is not None and size != segment.size:
        notes.append(f"segment {segment.id} has {segment.size} members here but had {size} when the logged page was made: "
                     "the current page is built for today's members")
    given = current_settings.to_dict() if isinstance(current_settings, Settings) else dict(current_settings)
    base = Settings.from_dict(logged_layout.settings, "logged layout settings").to_dict()
    explicit = {k: v for k, v in given.items() if k not in ("rows", "candidates", "similarity")}
    settings = Settings.from_dict({**base, **explicit}, "current settings")
    current = rank_segment(studio, segment, settings, explain=False)
    current_page, logged_page = _slot_items(current), _slot_items(logged_layout)
    mu = log[PROPENSITY_COL].to_numpy(np.float64) if PROPENSITY_COL in log.columns else np.ones(len(log))
    explored = bool((mu < 1).any())
    observed, obs_lo, obs_hi = snips(log, mu, n_boot=n_boot, seed=seed)
    page_target = _on_page(log, logged_page)
    page_est = snips(log, page_target, n_boot=n_boot, seed=seed) if page_target.any() else None
    target = _on_page(log, current_page)
    shown = set(log[[ROW_COL, SLOT_COL, ITEM_COL]].astype({ITEM_COL: str}).drop_duplicates().itertuples(index=False, name=None))
    support = sum((r, s, item) in shown for (r, s), item in current_page.items()) / max(1, len(current_page))
    result = {
        "layout_id": logged_id, "current_layout_id": current.layout_id, "segment": segment.to_dict(),
        "impressions": int(len(log)), "users": int(log[USER_COL].nunique()), "explored": explored,
        "settings": settings.to_dict(),
        "logged": {"click_rate": observed, "ci95": [obs_lo, obs_hi], "clicks": int(log[CLICK_COL].sum())},
        "logged_page": {"click_rate": page_est[0], "ci95": [page_est[1], page_est[2]]} if page_est else None,
        "current": None, "difference": None, "notes": notes,
        "current_position_model": _position_estimate(log, current, n_boot, seed) if explored else None,
    }
    if target.any():
        est, lo, hi = snips(log, target, n_boot=n_boot, seed=seed)
        diff, dlo, dhi = _paired_difference(log, target, n_boot, seed)
        result["current"] = {"click_rate": est, "ci95": [lo, hi], "matched_impressions": int((target > 0).sum()), "support": support}
        if support < LOW_SUPPORT:
            notes.append(f"the log showed only {support:.0%} of the current page's cards in their slots: the estimate speaks for "
                         "those cards alone and its interval is wide; log with more exploration to judge this page")
        result["difference"] = {"value": diff, "ci95": [dlo, dhi]}
        result["sentence"] = (
            f"Estimated from {len(log):,} logged impressions of page {logged_id} ({result['users']:,} users), the current settings' "
            f"page would get {est:.4f} [{lo:.4f}, {hi:.4f}] clicks per card against the {observed:.4f} [{obs_lo:.4f}, {obs_hi:.4f}] "
            f"observed ({diff:+.4f} [{dlo:+.4f}, {dhi:+.4f}]; 95% bootstrap over users): SNIPS reweights the "
            f"{result['current']['matched_impressions']:,} impressions where the log showed the current page's item in the same slot, "
            f"and the {1 - support:.0%} of its cards the log never showed there carry no weight."
        )
    else:
        result["sentence"] = (
            f"The log of page {logged_id} never showed any of the current page's items in the slot the current page puts them in, "
            f"so it cannot estimate the current page (SNIPS gives such items weight 0); the logged page got {observed:.4f} "
            f"[{obs_lo:.4f}, {obs_hi:.4f}] clicks per card."
            + ("" if explored else " Log with exploration (homepage simulate --explore) to compare other pages.")
        )
    pbm = result["current_position_model"]
    if pbm:
        result["sentence"] += (
            f" The position model, which also learns from the current page's items shown in other slots, gives "
            f"{pbm['click_rate']:.4f} [{pbm['ci95'][0]:.4f}, {pbm['ci95'][1]:.4f}] over {pbm['support']:.0%} of its cards.")
    return result
