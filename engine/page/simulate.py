"""A traffic simulator on the demo store: a segment's members visit its page, and click and buy by
their true (latent) taste, which only the demo store knows.

The click model (a position-based model, as in Craswell et al., "An experimental comparison of
click position-bias models", WSDM 2008): the card in 0-based row r and slot s is seen with

    exam(r, s) = (1 + s) ** -slot_power * row_decay ** r

(slots further right and rows further down are seen less), and a user of taste t who sees item i
clicks it with the item's attraction

    attr(t, i) = sigmoid(bias + match(t, i) + ln(K * mix_t[cat_i]))
    match(t, i) = 0.9 [colour_i in colours_t] + 0.9 [brand_i in brands_t] - 2.4 |q_i - price_level_t|

which is the demo generator's own taste match (``engine.data.demo_store.taste_match``, without the
generator's hidden random brand affinity) plus the taste's category mix: K categories, mix_t the
taste's category weights (``engine.data.demo_store.taste_category_mix``), q_i the
item's price position in its category's range, ln(price / lo) / ln(hi / lo) clipped to [0, 1]. So

    P(click | seen page, slot) = exam(r, s) * attr(t, i)
    P(purchase | click)        = buy_base + buy_gain * attr(t, i)

Every member visits on each of the D days with probability ``visit_prob``, independently, at a
uniform time between 07:00 and 23:00; days start the day after the data's last interaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.core.constants import ITEM_COL, TIME_COL, USER_COL
from engine.core.errors import DataError
from engine.data.demo_store import (
    CATEGORIES,
    CATEGORY_NAMES,
    TASTE_NAMES,
    taste_category_mix,
    taste_match,
)
from engine.data.feedback import (
    CLICK_COL,
    LAYOUT_COL,
    PROPENSITY_COL,
    PURCHASE_COL,
    ROW_COL,
    SHOWN_COL,
    SLOT_COL,
)
from engine.data.tables import Dataset, table_path
from engine.page.explore import ExplorePolicy
from engine.page.layout import Layout
from engine.page.rerank import (
    Settings,
    _normalise_relevance,
    adjustment,
    excluded_mask,
    rank_segment,
    segment_relevance,
)
from engine.studio.context import Studio
from engine.studio.segments import Segment

TASTE_COL = "taste"
MAX_IMPRESSIONS = 20_000_000  # expected feedback rows a simulation may write (about 2 GB in memory)
_DAY_START, _DAY_END = 7 * 3600, 23 * 3600  # visits fall between 07:00 and 23:00


@dataclass(frozen=True)
class ClickModel:
    """The simulated users' behaviour (formulas in the module docstring).

    Attributes:
        visit_prob: probability that a member visits on a given day.
        slot_power: how fast attention falls along a row, exam ~ (1 + slot) ** -slot_power.
        row_decay: attention kept from one row to the next.
        bias: attraction logit of a neutral item of an average category.
        buy_base, buy_gain: P(purchase | click) = buy_base + buy_gain * attraction.
    """

    visit_prob: float = 0.3
    slot_power: float = 0.6
    row_decay: float = 0.7
    bias: float = -2.5
    buy_base: float = 0.2
    buy_gain: float = 0.3

    def examination(self, row: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """exam(r, s) = (1 + s) ** -slot_power * row_decay ** r for 0-based rows and slots."""
        row, slot = np.asarray(row, dtype=np.float64), np.asarray(slot, dtype=np.float64)
        return (1.0 + slot) ** -self.slot_power * self.row_decay ** row


# ----------------------------------------------------------------------------------------------
# Ground truth of the demo store


def taste_attraction(items: pd.DataFrame, model: ClickModel = ClickModel(), source: str = "items") -> np.ndarray:
    """attr(t, i) for every demo taste and item (module docstring).

    Args:
        items: the catalogue, with ``category``, ``brand``, ``color`` and ``price``.
        model: gives the attraction's ``bias``.
        source: what to name in errors.

    Returns:
        (T, I) click probabilities of a seen card, T = ``len(TASTES)``.

    Raises:
        DataError: a catalogue without those columns (not a demo store).
    """
    missing = [c for c in ("category", "brand", "color", "price") if c not in items.columns]
    if missing:
        raise DataError(f"{source}: no {', '.join(missing)} column(s): the simulator needs the demo store's catalogue (homepage demo)")
    category = items["category"].astype(str).to_numpy()
    cat = np.array([CATEGORY_NAMES.index(c) if c in CATEGORY_NAMES else -1 for c in category], dtype=np.int64)
    known = cat >= 0
    lo = np.array([c.price[0] for c in CATEGORIES], dtype=np.float64)[np.maximum(cat, 0)]
    hi = np.array([c.price[1] for c in CATEGORIES], dtype=np.float64)[np.maximum(cat, 0)]
    price = pd.to_numeric(items["price"], errors="coerce").to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.clip(np.log(price / lo) / np.log(hi / lo), 0.0, 1.0)
    q = np.where(known & np.isfinite(q), q, 0.5)
    mix = taste_category_mix()
    match = taste_match(items["color"].astype(str).to_numpy(), items["brand"].astype(str).to_numpy(), q)
    share = np.where(known[None, :], mix[:, np.maximum(cat, 0)], mix.min(axis=1, keepdims=True))  # another category: the floor
    return 1.0 / (1.0 + np.exp(-(model.bias + match + np.log(len(CATEGORIES) * share))))


def user_tastes(data: Dataset) -> np.ndarray:
    """Every user's latent taste from users.csv: (n_users,) index into ``TASTES`` per user index,
    -1 for users without a row there.

    Raises:
        DataError: no users table, no ``taste`` column (only the demo store has known tastes), or
            a taste that is not one of the demo store's (naming the first rows).
    """
    path = table_path(data.root, "users", required=False) or data.root / "users.csv"
    if data.users is None or TASTE_COL not in data.users.columns:
        raise DataError(f"{path}: no {TASTE_COL} column: clicks can only be simulated on the demo store "
                        f"(homepage demo), whose users carry their latent taste")
    names = data.users[TASTE_COL].astype(str).str.strip().to_numpy()
    lookup = {name: t for t, name in enumerate(TASTE_NAMES)}
    taste = np.array([lookup.get(n, -1) for n in names], dtype=np.int64)
    bad = taste < 0
    if bad.any():
        rows = ", ".join(str(p + 2) for p in np.flatnonzero(bad)[:5])
        raise DataError(f"{path}: column {TASTE_COL} is not a demo taste ({', '.join(TASTE_NAMES)}) in {int(bad.sum())} "
                        f"row(s), first at lines {rows}: {list(names[bad][:3])}")
    out = np.full(data.n_users, -1, dtype=np.int64)
    index = pd.Index(data.user_ids.astype(str)).get_indexer(data.users[USER_COL].astype(str))
    out[index[index >= 0]] = taste[index >= 0]
    return out


# ----------------------------------------------------------------------------------------------
# The page's geometry and its expected click rate


def page_positions(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(row, slot) of every slot in reading order, 0-based, aligned with ``layout.flat_items()``."""
    rows = np.repeat(np.arange(len(layout.rows)), layout.row_sizes())
    slots = np.concatenate([np.arange(n) for n in layout.row_sizes()] or [np.zeros(0, dtype=np.int64)])
    return rows.astype(np.int64), slots.astype(np.int64)


def true_click_rate(layout: Layout, tastes: np.ndarray, attraction: np.ndarray, model: ClickModel = ClickModel()) -> float:
    """The simulator's expected clicks per shown card of a fixed page: the ground truth of off-policy checks.

        CTR = (1/U) sum_u (1/N) sum_{filled slots s} exam(r_s, s) * attr(t_u, item_s)

    Every member visits as often in expectation, so views weigh members equally.

    Args:
        layout: the page (cards carry item indices); N its filled slots.
        tastes: (U,) taste index of each member.
        attraction: (T, I) from :func:`taste_attraction`.
        model: the click model.

    Returns:
        The expected click rate per impression (0.0 for an empty page or no members).
    """
    page = layout.flat_items()
    filled = page >= 0
    tastes = np.asarray(tastes, dtype=np.int64)
    if not filled.any() or tastes.size == 0:
        return 0.0
    rows, slots = page_positions(layout)
    exam = model.examination(rows[filled], slots[filled])
    per_taste = attraction[:, page[filled]] @ exam / filled.sum()  # (T,)
    return float(per_taste[tastes].mean())


# ----------------------------------------------------------------------------------------------
# Simulation


def simulate_traffic(layout: Layout, user_ids: np.ndarray, tastes: np.ndarray, attraction: np.ndarray,
                     item_ids: np.ndarray, *, days: int, start: pd.Timestamp, seed: int = 42,
                     policy: ExplorePolicy | None = None, model: ClickModel = ClickModel()) -> pd.DataFrame:
    """Simulate ``days`` days of visits to one page and return the feedback rows.

    Args:
        layout: the page (cards carry item indices).
        user_ids: (U,) the members' ids; tastes: (U,) their taste indices.
        attraction: (T, I) from :func:`taste_attraction`; item_ids: (I,) ids of the items.
        days: D, days simulated.
        start: midnight of the first day.
        seed: the one seed of every draw (visits, exploration, clicks, purchases).
        policy: the exploring page (:class:`~engine.page.explore.ExplorePolicy` of ``layout``), or
            None to show the page as it is (propensity 1.0).
        model: the click model.

    Returns:
        One row per card shown (``engine.data.feedback`` columns, purchased and propensity
        included), ordered by time, then user, row and slot.
    """
    rng = np.random.default_rng(seed)
    user_ids, tastes = np.asarray(user_ids), np.asarray(tastes, dtype=np.int64)
    visit = rng.random((days, len(user_ids))) < model.visit_prob
    day, member = np.nonzero(visit)
    second = day.astype(np.int64) * 86400 + rng.integers(_DAY_START, _DAY_END, size=len(day))
    order = np.lexsort((member, second))
    member, second = member[order], second[order]
    page = layout.flat_items()
    n_views = len(member)
    if policy is None:
        shown = np.broadcast_to(page, (n_views, len(page))).copy()
        prop = np.ones(shown.shape)
    else:
        shown = np.empty((n_views, len(page)), dtype=np.int64)
        prop = np.empty(shown.shape)
        for v in range(n_views):
            shown[v], prop[v] = policy.sample(rng)
    rows, slots = page_positions(layout)
    filled = shown >= 0
    attr = attraction[tastes[member][:, None], np.maximum(shown, 0)]
    clicked = filled & (rng.random(shown.shape) < model.examination(rows, slots)[None, :] * attr)
    bought = clicked & (rng.random(shown.shape) < model.buy_base + model.buy_gain * attr)
    v, s = np.nonzero(filled)
    return pd.DataFrame({
        USER_COL: user_ids[member[v]].astype(str),
        ITEM_COL: np.asarray(item_ids)[shown[v, s]].astype(str),
        LAYOUT_COL: layout.layout_id,
        ROW_COL: rows[s],
        SLOT_COL: slots[s],
        SHOWN_COL: pd.Timestamp(start) + pd.to_timedelta(second[v], unit="s"),
        CLICK_COL: clicked[v, s],
        PURCHASE_COL: bought[v, s],
        PROPENSITY_COL: prop[v, s],
    })


def with_item_indices(layout: Layout, data: Dataset, source: str = "layout") -> Layout:
    """A copy of a layout read from a file whose cards carry the data's item indices.

    Raises:
        DataError: the layout names items the data does not have.
    """
    ids = [i for i in layout.item_ids() if i is not None]
    unknown = [i for i in ids if i not in data.item_index]
    if unknown:
        raise DataError(f"{source}: {len(unknown)} item(s) on the page are not in {data.root} (e.g. {unknown[:3]})")
    rows = [dataclasses.replace(r, items=[dataclasses.replace(c, item=data.item_index[c.item_id] if c.item_id is not None else -1)
                                          for c in r.items]) for r in layout.rows]
    return dataclasses.replace(layout, rows=rows)


def exploration_scores(studio: Studio, segment: Segment, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """The candidates exploration draws from and their scores: every item the layout's rules do not
    exclude, scored as ``rank_segment`` scores them (relevance on the page scale plus boost/bury)."""
    settings = Settings.from_dict(layout.settings, "layout settings")
    rules = settings.rules_obj()
    excluded = excluded_mask(studio, rules)
    score = _normalise_relevance(segment_relevance(studio, segment), excluded, settings.candidates) + adjustment(studio, rules)
    candidates = np.flatnonzero(~excluded)
    return candidates, score[candidates]


EXPLORE_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # diversity and long-tail values whose pages exploration covers


def alternative_items(studio: Studio, segment: Segment, layout: Layout) -> np.ndarray:
    """The items of the pages the diversity and long-tail sliders would give on ``EXPLORE_GRID``
    (every pair of values; the layout's other settings and rules kept): exploration always includes
    them, so that a log of this page can judge the pages a merchandiser is likely to try next."""
    base = Settings.from_dict(layout.settings, "layout settings").to_dict()
    items = []
    for diversity in EXPLORE_GRID:
        for long_tail in EXPLORE_GRID:
            page = rank_segment(studio, segment, Settings.from_dict({**base, "diversity": diversity, "long_tail": long_tail}), explain=False)
            items.append(page.flat_items())
    out = np.unique(np.concatenate(items))
    return out[out >= 0]


def simulate_segment(studio: Studio, segment: Segment, layout: Layout, *, days: int, explore: float = 0.0,
                     seed: int = 42, model: ClickModel = ClickModel(), source: str = "layout") -> tuple[pd.DataFrame, dict]:
    """Show a segment's page to its members for ``days`` days (see :func:`simulate_traffic`).

    Args:
        studio: the shared context (its data must be a demo store: users carry ``taste``).
        segment: the page's segment; its members are the visitors.
        layout: the page; cards may come from a file (ids are mapped to the data's items).
        days: days simulated, from the day after the data's last interaction.
        explore: share of slots explored (:mod:`engine.page.explore`; the pool also holds the
            :func:`alternative_items`); 0 shows the page as it is.
        seed: the simulation's seed.
        model: the click model.
        source: what to name in errors (the layout file).

    Returns:
        (feedback rows, summary): the summary holds layout_id, members, views, impressions, clicks,
        purchases, click_rate (observed) and true_click_rate (the fixed page's expected rate).

    Raises:
        DataError: data without tastes, members without one, items unknown to the data, or a
            simulation too large for memory.
    """
    taste_of = user_tastes(studio.data)
    members = np.asarray(segment.members, dtype=np.int64)
    tastes = taste_of[members]
    if (tastes < 0).any():
        missing = list(studio.data.user_ids[members[tastes < 0]][:3])
        raise DataError(f"{studio.data.root}: {int((tastes < 0).sum())} member(s) of {segment.id} have no row in users (e.g. {missing})")
    page = with_item_indices(layout, studio.data, source)
    n_filled = int((page.flat_items() >= 0).sum())
    expected = len(members) * days * model.visit_prob * n_filled
    if expected > MAX_IMPRESSIONS:
        raise DataError(f"{source}: about {expected:,.0f} feedback rows ({len(members):,} members x {days} days x "
                        f"{n_filled} cards x {model.visit_prob:g} visits a day) is more than {MAX_IMPRESSIONS:,}; simulate fewer days")
    attraction = taste_attraction(studio.data.items, model, str(table_path(studio.data.root, "items", required=False)))
    policy = None
    if explore > 0:
        candidates, scores = exploration_scores(studio, segment, page)
        policy = ExplorePolicy.build(page, candidates, scores, explore, always=alternative_items(studio, segment, page))
    start = studio.data.interactions[TIME_COL].max().normalize() + pd.Timedelta(days=1)
    feedback = simulate_traffic(page, studio.data.user_ids[members], tastes, attraction, studio.data.item_ids,
                                days=days, start=start, seed=seed, policy=policy, model=model)
    n_views = int(feedback[[USER_COL, SHOWN_COL]].drop_duplicates().shape[0]) if len(feedback) else 0
    summary = {
        "layout_id": page.layout_id, "segment": segment.id, "members": int(len(members)), "days": int(days),
        "explore": float(explore), "views": n_views, "impressions": int(len(feedback)),
        "clicks": int(feedback[CLICK_COL].sum()), "purchases": int(feedback[PURCHASE_COL].sum()),
        "click_rate": float(feedback[CLICK_COL].mean()) if len(feedback) else 0.0,
        "true_click_rate": true_click_rate(page, tastes, attraction, model),
    }
    return feedback, summary
