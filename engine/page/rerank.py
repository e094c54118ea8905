"""A segment's page: relevance, merchandising rules, MMR/DPP diversity, xQuAD long-tail boost, pins."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.core.constants import ITEM_COL, TITLE_COL
from engine.models.topk import top_k
from engine.page.layout import Card, Layout, Row
from engine.studio.segments import Segment, check_size
from engine.studio.context import Studio, digest, single_thread

N_CANDIDATES = 500  # items re-ranked per page (the segment's top by relevance)
THEME_POOL = 4  # a themed row also draws on its theme's best THEME_POOL x slots items
DIVERSITY_METHODS = ("mmr", "dpp")
SIMILARITY_SPACES = ("model", "text")
THEMES = ("top_picks", "because", "new", "hidden_gems")
DEFAULT_ROWS = (("top_picks", 10), ("because", 10), ("new", 10), ("hidden_gems", 10))
RULE_FIELDS = ("item", "category", "brand")
MAX_RULE_WEIGHT = 100.0  # boost/bury weights, in units of the page's relevance range
MAX_PAGE_ROWS, MAX_ROW_SLOTS = 50, 100  # bounds of a page (and of where a pin may point)
MAX_RULES = 1000  # entries of each rule list
WHY_HISTORY_MIN_USERS = 3  # a history item explains a card only if this many members interacted with it
WHY_HISTORY_POOL = 200  # the members' most shared history items searched for the "like" reason
_DPP_EPS = 1e-10  # smallest residual variance in the DPP's log det gain


# ----------------------------------------------------------------------------------------------
# Merchandising rules


@dataclass
class Adjust:
    """Boost (weight > 0) or bury (weight < 0) items by item id, category or brand."""

    field: str
    value: str
    weight: float


@dataclass
class Pin:
    """Put an item at a row and slot (both 0-based here; 1-based in the rules file)."""

    item: str
    row: int
    slot: int


@dataclass
class Rules:
    """Merchandising rules, applied in this order: exclude, boost/bury, re-rank, pin.

    The rules file (JSON)::

        {"exclude": {"items": ["P1"], "categories": ["Phones"], "brands": ["Kiro"]},
         "boost": [{"category": "Books", "weight": 0.3}, {"item": "P7", "weight": 1.0}],
         "bury":  [{"brand": "Basico", "weight": 0.5}],
         "pin":   [{"item": "P9", "row": 1, "slot": 1}]}

    Weights are in units of the page's relevance range (the best candidate scores 1, the
    ``N_CANDIDATES``-th 0): boost adds its weight, bury subtracts it. Rows and slots of pins count
    from 1. Exclusion wins over everything, pins included.
    """

    exclude_items: list[str] = field(default_factory=list)
    exclude_categories: list[str] = field(default_factory=list)
    exclude_brands: list[str] = field(default_factory=list)
    adjust: list[Adjust] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The rules file form (1-based pins)."""
        out: dict = {}
        exclude = {k: v for k, v in (("items", self.exclude_items), ("categories", self.exclude_categories), ("brands", self.exclude_brands)) if v}
        if exclude:
            out["exclude"] = exclude
        boost = [{a.field: a.value, "weight": a.weight} for a in self.adjust if a.weight >= 0]
        bury = [{a.field: a.value, "weight": -a.weight} for a in self.adjust if a.weight < 0]
        if boost:
            out["boost"] = boost
        if bury:
            out["bury"] = bury
        if self.pins:
            out["pin"] = [{"item": p.item, "row": p.row + 1, "slot": p.slot + 1} for p in self.pins]
        return out

    def is_empty(self) -> bool:
        return not (self.exclude_items or self.exclude_categories or self.exclude_brands or self.adjust or self.pins)


def rules_from_dict(obj: dict, source: str = "rules") -> Rules:
    """Validate a rules object (see :class:`Rules`).

    Raises:
        ValueError: naming ``source`` and the offending key or entry.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: the rules must be a JSON object, got {type(obj).__name__}")
    unknown = set(obj) - {"exclude", "boost", "bury", "pin"}
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}; expected exclude, boost, bury, pin")
    rules = Rules()
    exclude = obj.get("exclude", {}) or {}
    if not isinstance(exclude, dict) or set(exclude) - {"items", "categories", "brands"}:
        raise ValueError(f"{source}: exclude must be an object with items, categories and/or brands lists")
    for key, target in (("items", rules.exclude_items), ("categories", rules.exclude_categories), ("brands", rules.exclude_brands)):
        values = exclude.get(key, []) or []
        if not isinstance(values, list):
            raise ValueError(f"{source}: exclude.{key} must be a list")
        if len(values) > MAX_RULES or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{source}: exclude.{key} must be a list of at most {MAX_RULES} ids or names")
        target.extend(str(v) for v in values)
    for key, sign in (("boost", 1.0), ("bury", -1.0)):
        entries = obj.get(key, []) or []
        if not isinstance(entries, list) or len(entries) > MAX_RULES:
            raise ValueError(f"{source}: {key} must be a list of at most {MAX_RULES} entries")
        for n, entry in enumerate(entries):
            fields = [f for f in RULE_FIELDS if isinstance(entry, dict) and f in entry]
            if len(fields) != 1:
                raise ValueError(f"{source}: {key}[{n}] must name exactly one of item, category, brand: {entry!r}")
            try:
                weight = float(entry.get("weight", 1.0))
            except (TypeError, ValueError):
                raise ValueError(f"{source}: {key}[{n}].weight is not a number: {entry.get('weight')!r}") from None
            if not np.isfinite(weight) or not 0 <= weight <= MAX_RULE_WEIGHT:
                raise ValueError(f"{source}: {key}[{n}].weight must be a number from 0 to {MAX_RULE_WEIGHT:g}, got {weight}")
            value = entry[fields[0]]
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise ValueError(f"{source}: {key}[{n}].{fields[0]} must be an id or a name, got {value!r}")
            rules.adjust.append(Adjust(fields[0], str(value), sign * weight))
    pins = obj.get("pin", []) or []
    if not isinstance(pins, list) or len(pins) > MAX_RULES:
        raise ValueError(f"{source}: pin must be a list of at most {MAX_RULES} entries")
    for n, entry in enumerate(pins):
        try:
            if not all(isinstance(entry[k], int) and not isinstance(entry[k], bool) for k in ("row", "slot")):
                raise TypeError("row and slot must be whole numbers")
            if not isinstance(entry["item"], (str, int)) or isinstance(entry["item"], bool):
                raise TypeError("item must be an id")
            item, row, slot = str(entry["item"]), int(entry["row"]), int(entry["slot"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{source}: pin[{n}] needs item, row and slot (whole numbers counting from 1): {entry!r}"[:300]) from None
        if not (1 <= row <= MAX_PAGE_ROWS and 1 <= slot <= MAX_ROW_SLOTS):
            raise ValueError(f"{source}: pin[{n}]: rows and slots count from 1 (row up to {MAX_PAGE_ROWS}, slot up to {MAX_ROW_SLOTS}), got row {row}, slot {slot}")
        rules.pins.append(Pin(item, row - 1, slot - 1))
    seen_items, seen_slots = set(), set()
    for p in rules.pins:
        if p.item in seen_items:
            raise ValueError(f"{source}: item {p.item!r} is pinned twice")
        if (p.row, p.slot) in seen_slots:
            raise ValueError(f"{source}: two pins on row {p.row + 1}, slot {p.slot + 1}")
        seen_items.add(p.item)
        seen_slots.add((p.row, p.slot))
    return rules


def _read_json(path: Path, what: str):
    """Parse a JSON file; a missing file or bad JSON is a ValueError naming the file."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such {what} file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def load_rules(path: str | Path) -> Rules:
    """Read and validate a rules JSON file (see :class:`Rules`).

    Raises:
        ValueError: naming the file and the offending key or entry.
    """
    path = Path(path)
    return rules_from_dict(_read_json(path, "rules"), str(path))


def _column_values(studio: Studio, field_name: str) -> np.ndarray:
    column = {"item": ITEM_COL, "category": "category", "brand": "brand"}[field_name]
    if column not in studio.data.items.columns:
        raise ValueError(f"{studio.data.root}: the catalogue has no {column} column, so rules cannot name a {field_name}")
    return studio.data.items[column].astype(str).to_numpy()


def _match(studio: Studio, field_name: str, values: list[str], what: str) -> np.ndarray:
    """(I,) bool of items whose field is one of ``values``; unknown values are an error (typos)."""
    column = _column_values(studio, field_name)
    known = set(column)
    missing = [v for v in values if v not in known]
    if missing:
        raise ValueError(f"rules: {what} names unknown {field_name}(s) {missing[:5]} (not in {studio.data.root} items)")
    return np.isin(column, values)


def excluded_mask(studio: Studio, rules: Rules) -> np.ndarray:
    """(I,) True for items the rules exclude (by item id, category or brand)."""
    out = np.zeros(studio.n_items, dtype=bool)
    for name, values in (("item", rules.exclude_items), ("category", rules.exclude_categories), ("brand", rules.exclude_brands)):
        if values:
            out |= _match(studio, name, values, "exclude")
    return out


def adjustment(studio: Studio, rules: Rules) -> np.ndarray:
    """(I,) score change of boost (+weight) and bury (-weight) rules, summed where several apply."""
    out = np.zeros(studio.n_items, dtype=np.float64)
    for a in rules.adjust:
        out[_match(studio, a.field, [a.value], "boost" if a.weight >= 0 else "bury")] += a.weight
    return out


# ----------------------------------------------------------------------------------------------
# Settings

MAX_CANDIDATES = 5000  # items a page re-ranks


def _number(value, what: str) -> float:
    """A finite real number (a bool or a string is not one), else a ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {value!r}"[:300])
    return float(value)


def _whole(value, what: str) -> int:
    """A whole number (an integral float such as 10.0 counts), else a ValueError naming ``what``."""
    number = _number(value, what)
    if not np.isfinite(number) or number != int(number):
        raise ValueError(f"{what} must be a whole number, got {value!r}"[:300])
    return int(number)


@dataclass(frozen=True)
class Settings:
    """The knobs of a page; saved in the layout JSON and read from SETTINGS.json files.

    Frozen: other knobs make other settings (``dataclasses.replace``, validated again).

    Attributes:
        diversity: 0 = pure relevance .. 1 = pure novelty against what is already on the page.
        long_tail: xQuAD weight of head/tail coverage, 0 = off .. 1 = coverage only.
        method: ``"mmr"`` (maximal marginal relevance) or ``"dpp"`` (DPP greedy MAP).
        visual: weight of the colour penalty between neighbouring cards (left and above), 0 = off.
        candidates: items re-ranked (the segment's top by relevance).
        similarity: item vectors MMR/DPP compare: ``"text"`` (default: the pretrained text vectors
            that intra-list diversity is measured with, so the knob moves the ILD the page shows;
            the model's where the data has no text) or ``"model"`` (the fine-tuned item vectors,
            which also know what is bought together).
        rows: (theme, slots) per row, top to bottom; themes are ``THEMES``.
        rules: merchandising rules (file form, see :class:`Rules`), or None.
    """

    diversity: float = 0.0
    long_tail: float = 0.0
    method: str = "mmr"
    visual: float = 0.0
    candidates: int = N_CANDIDATES
    similarity: str = "text"
    rows: list[tuple[str, int]] = field(default_factory=lambda: [tuple(r) for r in DEFAULT_ROWS])
    rules: dict | None = None

    def __post_init__(self):
        for name in ("diversity", "long_tail", "visual"):
            value = _number(getattr(self, name), f"settings: {name}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"settings: {name} must be in [0, 1], got {value}")
            object.__setattr__(self, name, value)  # normalised once, here
        if self.similarity not in SIMILARITY_SPACES:
            raise ValueError(f"settings: similarity must be one of {SIMILARITY_SPACES}, got {self.similarity!r}"[:300])
        if self.method not in DIVERSITY_METHODS:
            raise ValueError(f"settings: method must be one of {DIVERSITY_METHODS}, got {self.method!r}"[:300])
        candidates = _whole(self.candidates, "settings: candidates")
        if not 1 <= candidates <= MAX_CANDIDATES:
            raise ValueError(f"settings: candidates must be 1 to {MAX_CANDIDATES}, got {candidates}")
        object.__setattr__(self, "candidates", candidates)
        if not isinstance(self.rows, (list, tuple)) or not 1 <= len(self.rows) <= MAX_PAGE_ROWS:
            raise ValueError(f"settings: rows must be a list of 1 to {MAX_PAGE_ROWS} rows")
        rows = []
        for row in self.rows:
            try:
                theme, slots = (row["theme"], row["slots"]) if isinstance(row, dict) else row
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"settings: a row is a theme and a number of slots, got {row!r}"[:300]) from None
            if not isinstance(theme, str) or theme not in THEMES:
                raise ValueError(f"settings: row theme must be one of {THEMES}, got {theme!r}"[:300])
            slots = _whole(slots, "settings: row slots")
            if not 1 <= slots <= MAX_ROW_SLOTS:
                raise ValueError(f"settings: a row has 1 to {MAX_ROW_SLOTS} slots, got {slots}")
            rows.append((theme, slots))
        object.__setattr__(self, "rows", rows)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rows"] = [{"theme": t, "slots": s} for t, s in self.rows]
        return out

    @classmethod
    def from_dict(cls, obj: dict, source: str = "settings", base: Path | None = None) -> "Settings":
        """Settings from a JSON object; ``rules`` may be an object or a path (relative to ``base``)."""
        if not isinstance(obj, dict):
            raise ValueError(f"{source}: settings must be a JSON object")
        known = {"diversity", "long_tail", "method", "visual", "candidates", "similarity", "rows", "rules"}
        unknown = set(obj) - known
        if unknown:
            raise ValueError(f"{source}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
        values = dict(obj)
        rules = values.get("rules")
        if isinstance(rules, str):
            path = Path(rules)
            if base is not None and not path.is_absolute():
                path = base / path
            values["rules"] = load_rules(path).to_dict()
        elif rules is not None:
            values["rules"] = rules_from_dict(rules, f"{source}: rules").to_dict()
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def rules_obj(self) -> Rules:
        return rules_from_dict(self.rules, "settings.rules") if self.rules else Rules()


def load_settings(path: str | Path) -> Settings:
    """Read a SETTINGS.json file (keys of :class:`Settings`; ``rules`` inline or a path)."""
    path = Path(path)
    return Settings.from_dict(_read_json(path, "settings"), str(path), path.parent)


# ----------------------------------------------------------------------------------------------
# The greedy re-ranker


def greedy_rerank(
    relevance: np.ndarray,
    vectors: np.ndarray,
    slot_masks: np.ndarray,
    *,
    diversity: float = 0.0,
    long_tail: float = 0.0,
    is_tail: np.ndarray | None = None,
    tail_weight: float = 0.5,
    method: str = "mmr",
    visual: float = 0.0,
    colours: np.ndarray | None = None,
    neighbours: list[list[int]] | None = None,
    fixed_colours: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill slots one at a time with the candidate of the best marginal objective.

    At each slot, over the candidates allowed there and not yet placed (S = those placed)::

        obj_i  = (1 - d) rel_i - d max_{j in S} cos(v_i, v_j)            (MMR, Carbonell & Goldstein 1998)
        obj_i  = (1 - d) rel_i + d log r_i^2                             (DPP greedy MAP, Chen et al. 2018)
        tail_i = sum_{g in {head, tail}} P(g) [i in g] (1 - |S ∩ g| / |S|) (smooth xQuAD,
                                                                         Abdollahpouri et al. 2019)
        gain_i = (1 - t) obj_i + t tail_i - w max_{n in neighbours} BC(colour_i, colour_n)

    with d = ``diversity``, t = ``long_tail``, w = ``visual``; r_i^2 is the DPP's residual
    variance of item i given S (incremental Cholesky of the cosine kernel, so the whole page costs
    O(N k^2)); the coverage term is 1 for both groups while S is empty; BC is the Bhattacharyya
    coefficient of colour histograms and the neighbours are the cards left of and above the slot.
    With d = t = w = 0 the order is by relevance. Ties go to the higher relevance.

    Args:
        relevance: (N,) candidate relevance (normalised: the best candidate 1).
        vectors: (N, D) candidate vectors (normalised inside).
        slot_masks: (n_slots, N) bool, which candidates may fill each slot.
        diversity: d in [0, 1].
        long_tail: t in [0, 1].
        is_tail: (N,) bool tail membership (needed when t > 0).
        tail_weight: P(tail) of the xQuAD term, P(head) = 1 - P(tail).
        method: ``"mmr"`` or ``"dpp"``.
        visual: w in [0, 1].
        colours: (N, B) sqrt colour histograms of the candidates (needed when w > 0).
        neighbours: per slot, the slot positions whose card is its neighbour (left, above).
        fixed_colours: slot position -> sqrt colour histogram of a card placed there beforehand
            (a pin), so that neighbours of pins also differ.

    Returns:
        (chosen candidate per slot, -1 where no candidate was allowed; the gain it was chosen at).
    """
    rel = np.asarray(relevance, dtype=np.float64)
    n = rel.size
    n_slots = slot_masks.shape[0]
    chosen = np.full(n_slots, -1, dtype=np.int64)
    gains = np.full(n_slots, np.nan)
    if n == 0:
        return chosen, gains
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    available = np.ones(n, dtype=bool)
    tie = 1e-9 * rel  # ties go to relevance
    max_sim = np.zeros(n)
    if method == "dpp":
        cho = np.zeros((n, n_slots))
        resid = np.ones(n) + _DPP_EPS
    use_tail = long_tail > 0 and is_tail is not None
    if use_tail:
        tail = np.asarray(is_tail, dtype=bool)
        n_in = np.zeros(2)  # placed head, placed tail
        group_w = np.where(tail, tail_weight, 1.0 - tail_weight)
    use_visual = visual > 0 and colours is not None and neighbours is not None
    placed_colour: dict[int, np.ndarray] = dict(fixed_colours or {})
    for step in range(n_slots):
        ok = available & slot_masks[step]
        if not ok.any():
            continue
        if method == "dpp":
            obj = (1.0 - diversity) * rel + diversity * np.log(np.maximum(resid, _DPP_EPS))
        else:
            obj = (1.0 - diversity) * rel - diversity * max_sim
        gain = obj
        if use_tail:
            placed = n_in.sum()
            cover = 1.0 - (n_in / placed if placed else np.zeros(2))
            gain = (1.0 - long_tail) * obj + long_tail * group_w * np.where(tail, cover[1], cover[0])
        if use_visual:
            near = [placed_colour[p] for p in neighbours[step] if p in placed_colour]
            if near:
                gain = gain - visual * np.max(colours @ np.stack(near).T, axis=1)
        gain = np.where(ok, gain + tie, -np.inf)
        j = int(np.argmax(gain))
        chosen[step], gains[step] = j, gain[j] - tie[j]
        available[j] = False
        if use_tail:
            n_in[int(tail[j])] += 1
        if use_visual:
            placed_colour[step] = colours[j]
        sim = v @ v[j]
        if method == "dpp":
            k = int((chosen[:step] >= 0).sum())
            e = (sim - cho[:, :k] @ cho[j, :k]) / np.sqrt(max(resid[j], _DPP_EPS))
            cho[:, k] = e
            resid = resid - e * e
        else:
            np.maximum(max_sim, sim, out=max_sim)
    return chosen, gains


# ----------------------------------------------------------------------------------------------
# A segment's page


def segment_relevance(studio: Studio, segment: Segment) -> np.ndarray:
    """The segment's relevance of every item: the mean of its members' scores.

    With the fine-tuned model alone, rel_i = (1/|G|) sum_{u in G} u . v_i = c . v_i with c the
    centroid (mean member vector), since the score is linear in the user vector. With two stages,
    the mean of the members' final scores over their candidates (``Studio.member_relevance``,
    computed once per segment).

    Returns:
        (I,) float64.
    """
    found = studio.member_relevance(segment.members)
    if found is not None:
        return found
    centroid = segment.centroid
    if centroid is None:
        rows = studio.rows_of(segment.members)
        centroid = studio.user_vectors[rows[rows >= 0]].mean(axis=0)
    return studio.item_vectors.astype(np.float64) @ np.asarray(centroid, dtype=np.float64)


def prepare_pages(studio: Studio, segments: list[Segment]) -> None:
    """Compute now what each segment's first page would: the catalogue's TF-IDF and, with two
    stages, the segment's relevance, both kept in the studio's cache folder (at a million users
    a segment's relevance is 9 s and the TF-IDF 3 s of a first page)."""
    studio.tfidf()
    for segment in segments:
        studio.member_relevance(segment.members)


def _tail_share(studio: Studio, segment: Segment) -> float:
    """:func:`segment_tail_share`, once per studio and member set."""
    members = np.asarray(segment.members, dtype=np.int64)
    return studio.made(("tail_share", digest(members)), lambda: segment_tail_share(studio, segment))


def fill_serving_cache(data, model_dir) -> None:
    """Compute now, and keep in the data directory's ``.cache``, what the dashboard's first page
    with this model would: the studio (user vectors, EASE's table, picture colours), the first
    segment catalogue (k-means, k chosen) and the learned segments' pages (the picker lists them
    first; a rule segment's first page computes its own relevance, about 9 s at a million users).

    Args:
        data: a loaded ``Dataset`` or its directory.
        model_dir: the trained model's directory.
    """
    from engine.studio.context import load_studio
    from engine.studio.segments import segment_catalogue

    studio = load_studio(data, model_dir)
    prepare_pages(studio, [s for s in segment_catalogue(studio).visible if s.kind == "learned"])


def segment_tail_share(studio: Studio, segment: Segment) -> float:
    """P(tail | segment): share of tail items among the members' distinct training items (pooled)."""
    per_item = np.asarray(studio.history[np.asarray(segment.members, dtype=np.int64)].sum(axis=0)).ravel()
    total = per_item.sum()
    return float(per_item @ studio.is_tail / total) if total else 0.0


def _normalise_relevance(rel: np.ndarray, excluded: np.ndarray, n_candidates: int) -> np.ndarray:
    """Map relevance so that the best allowed item scores 1 and the n-th best 0 (linear)."""
    allowed = rel[~excluded]
    if allowed.size == 0:
        return np.zeros_like(rel)
    top = allowed.max()
    nth = np.partition(allowed, max(allowed.size - n_candidates, 0))[max(allowed.size - n_candidates, 0)]
    unit = top - nth if top > nth else max(abs(top), 1.0)
    return (rel - nth) / unit


def _top_indices(values: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """The n best items among ``mask`` by ``values``, best first; ties go to the lower item index
    (``ranking.top_k``, the rule every recommender follows)."""
    idx = np.flatnonzero(mask)
    best, _ = top_k(values[idx][None, :], n)
    return idx[best[0]]


def _term_columns(studio: Studio):
    """The TF-IDF matrix by columns (one term's items are a slice) and each term's column, made once per studio."""
    def build():
        matrix, terms = studio.tfidf()
        return matrix.tocsc(), {t: n for n, t in enumerate(terms)}

    return studio.made("term_columns", build)


def _titles(studio: Studio) -> np.ndarray:
    """Every item's title as text, made once per studio."""
    return studio.made("titles", lambda: studio.data.items[TITLE_COL].astype(str).to_numpy())


def _because_keyword(studio: Studio, segment: Segment, allowed: np.ndarray, slots: int) -> tuple[str | None, np.ndarray]:
    """The first segment keyword at least ``slots`` allowed items contain, and those items (I,) bool."""
    columns, index = _term_columns(studio)
    if not index:
        return None, np.zeros(studio.n_items, dtype=bool)
    for word in segment.keywords:
        col = index.get(word)
        if col is None:
            continue
        has = np.zeros(studio.n_items, dtype=bool)
        has[columns.indices[columns.indptr[col]:columns.indptr[col + 1]]] = True
        if (has & allowed).sum() >= slots:
            return word, has
    return None, np.zeros(studio.n_items, dtype=bool)


def _row_title(theme: str, segment: Segment, keyword: str | None) -> str:
    if theme == "top_picks":
        return f"Top picks for {segment.name}"
    if theme == "because":
        return f"Because they buy {keyword}" if keyword else f"More for {segment.name}"
    if theme == "new":
        return "New arrivals"
    return "Hidden gems"


def _similarity_vectors(studio: Studio, space: str) -> np.ndarray:
    """Item vectors diversity is measured in: the model's, or the pretrained text vectors (when the data has text)."""
    if space == "text" and studio.text_vectors is not None:
        return studio.text_vectors
    return studio.item_vectors


def _neighbours(row_sizes: list[int]) -> list[list[int]]:
    """Per slot position (reading order), the positions of the cards left of it and above it."""
    starts = np.concatenate([[0], np.cumsum(row_sizes)[:-1]]).astype(int)
    out = []
    for r, size in enumerate(row_sizes):
        for c in range(size):
            near = []
            if c > 0:
                near.append(int(starts[r] + c - 1))
            if r > 0 and c < row_sizes[r - 1]:
                near.append(int(starts[r - 1] + c))
            out.append(near)
    return out


class WhyExplainer:
    """Reasons for a segment's cards: its keywords an item matches, its members' items it is like."""

    def __init__(self, studio: Studio, segment: Segment):
        self.studio = studio
        self.keywords = list(segment.keywords)
        shared = np.asarray(studio.history[np.asarray(segment.members, dtype=np.int64)].sum(axis=0)).ravel()
        pool = np.flatnonzero(shared >= WHY_HISTORY_MIN_USERS)
        self.pool = pool[np.argsort(-shared[pool], kind="stable")][:WHY_HISTORY_POOL]

        def unit() -> np.ndarray:
            v = studio.item_vectors
            return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

        self.unit = studio.made("unit_item_vectors", unit)
        self.matrix, _ = studio.tfidf()
        index = _term_columns(studio)[1]
        self.kw_cols = [(w, index[w]) for w in self.keywords if w in index]

    @classmethod
    def of(cls, studio: Studio, segment: Segment) -> "WhyExplainer":
        """The segment's explainer, made once per studio and member set (its pool sums the members' histories)."""
        members = np.asarray(segment.members, dtype=np.int64)
        key = ("why", tuple(segment.keywords), digest(members))
        return studio.made(key, lambda: cls(studio, segment))

    def __call__(self, items: np.ndarray) -> list[list[str]]:
        items = np.asarray(items, dtype=np.int64)
        out: list[list[str]] = [[] for _ in items]
        if self.kw_cols and len(items):
            cols = np.array([c for _, c in self.kw_cols])
            present = self.matrix[items][:, cols].toarray() > 0  # (n, K)
            for row, mask in enumerate(present):
                words = [self.kw_cols[k][0] for k in np.flatnonzero(mask)[:3]]
                if words:
                    out[row].append("matches " + ", ".join(words))
        if self.pool.size and len(items):
            sim = self.unit[items] @ self.unit[self.pool].T  # (n, P)
            sim[self.pool[None, :] == items[:, None]] = -np.inf  # not "like itself"
            best = np.argmax(sim, axis=1)
            titles = _titles(self.studio)
            for row, b in enumerate(best):
                if np.isfinite(sim[row, b]):
                    out[row].append(f"like {titles[self.pool[b]]}")
        return out


BADGES = ("new", "long-tail", "pinned")  # the badges a card may carry, in the order it shows them


def card_badges(studio: Studio, item: int, pinned: bool = False) -> list[str]:
    """The badges of an item's card, the one definition pages and feedback reports share.

    ``new``: ``studio.is_new`` (created within ``NEW_DAYS`` of the latest training event, or never
    interacted with); ``long-tail``: ``studio.is_tail`` (outside the head of ``metrics.head_tail_split``);
    ``pinned``: a pin rule put the item in its slot.
    """
    badges = []
    if studio.is_new[item]:
        badges.append("new")
    if studio.is_tail[item]:
        badges.append("long-tail")
    if pinned:
        badges.append("pinned")
    return badges


def rank_segment(studio: Studio, segment: Segment, settings: Settings | None = None, *, explain: bool = True) -> Layout:
    """The segment's page: relevance, exclusions, boost/bury, themed rows re-ranked, pins.

    Steps, in the order commercial tools document:
      1. relevance = mean of the members' scores (:func:`segment_relevance`);
      2. exclusions remove items (by id, category, brand), before anything else;
      3. relevance is put on the page scale (best allowed item 1, the ``candidates``-th 0) and
         boost/bury weights are added;
      4. candidates = the top ``candidates`` by that score, plus each themed row's best
         ``THEME_POOL`` x slots items of its theme;
      5. slots are filled row by row (left to right) by :func:`greedy_rerank`, skipping pinned
         slots; diversity and long-tail coverage count the whole page;
      6. pins put their items in their slots, whatever their score (unless excluded).

    Args:
        studio: the shared context.
        segment: the segment (refused under the minimum size).
        settings: the knobs, rules and rows (defaults when None).
        explain: compute the cards' ``why`` (off for sweeps that only need the items).

    Returns:
        The page as a :class:`~engine.page.layout.Layout` (no held-out metrics:
        ``engine.page.judge.judged_layout`` adds them); ``timing_ms`` holds the stages.

    Raises:
        ValueError: a segment under the minimum size, or rules that name unknown items, categories
            or brands, or pin outside the page.
    """
    check_size(segment)
    studio.member_relevance(segment.members)  # with two stages, once per segment and with every thread: large products
    with single_thread():
        return _rank_segment(studio, segment, settings or Settings(), explain)


@dataclass(frozen=True)
class _Candidates:
    """What a page's knobs (diversity, long tail, visual variety, method) do not change: the page
    scale's score, the candidate pool and which pool items may fill each slot. Read-only arrays."""

    score: np.ndarray  # (I,) relevance on the page scale, with the rules' boosts and burials
    pool: np.ndarray  # candidate items, best score first
    slot_masks: np.ndarray  # (n_slots, len(pool)) bool; pinned slots allow nothing
    pinned_at: dict[int, int]  # page position -> pinned item
    starts: np.ndarray  # the first position of each row
    keyword: str | None  # the "because" row's keyword
    notes: tuple[str, ...]


def _candidates(studio: Studio, segment: Segment, settings: Settings, rules: Rules) -> _Candidates:
    """The segment's :class:`_Candidates` for the settings' rules, candidates and rows, made once
    per studio: a slider move repeats none of this catalogue-wide work."""
    shape = json.dumps([settings.rules or {}, settings.candidates, settings.rows], sort_keys=True, default=str)
    members = np.asarray(segment.members, dtype=np.int64)
    key = ("candidates", digest(members), segment.id, tuple(segment.keywords), shape)
    return studio.made(key, lambda: _make_candidates(studio, segment, settings, rules))


def _make_candidates(studio: Studio, segment: Segment, settings: Settings, rules: Rules) -> _Candidates:
    rel = segment_relevance(studio, segment)
    excluded = excluded_mask(studio, rules)
    score = _normalise_relevance(rel, excluded, settings.candidates) + adjustment(studio, rules)
    allowed = ~excluded
    notes: list[str] = []

    # Pins: validated against the page shape; excluded pinned items are dropped (exclusion wins).
    row_sizes = [s for _, s in settings.rows]
    starts = np.concatenate([[0], np.cumsum(row_sizes)[:-1]]).astype(int)
    pinned_at: dict[int, int] = {}
    for pin in rules.pins:
        if pin.item not in studio.data.item_index:
            raise ValueError(f"rules: pin names unknown item {pin.item!r}")
        if pin.row >= len(row_sizes) or pin.slot >= row_sizes[pin.row]:
            raise ValueError(f"rules: pin of {pin.item!r} at row {pin.row + 1}, slot {pin.slot + 1} is outside the page ({len(row_sizes)} rows of {row_sizes} slots)")
        item = studio.data.item_index[pin.item]
        if excluded[item]:
            notes.append(f"pin of {pin.item} dropped: the item is excluded")
            continue
        pinned_at[int(starts[pin.row] + pin.slot)] = item
    pinned_items = np.array(sorted(pinned_at.values()), dtype=np.int64)
    pickable = allowed.copy()
    pickable[pinned_items] = False

    # Themes and the candidate pool.
    keyword = None
    theme_masks: dict[str, np.ndarray] = {"top_picks": np.ones(studio.n_items, dtype=bool), "new": studio.is_new, "hidden_gems": studio.is_tail}
    if any(t == "because" for t, _ in settings.rows):
        slots = max(s for t, s in settings.rows if t == "because")
        keyword, theme_masks["because"] = _because_keyword(studio, segment, pickable, slots)
        if keyword is None:  # keep the grid (and the pins' rows): the row continues the top picks
            theme_masks["because"] = theme_masks["top_picks"]
            notes.append("no segment keyword matches enough items: the 'because' row shows more top picks")
    pool_parts = [_top_indices(score, pickable, settings.candidates)]
    for theme, slots in settings.rows:
        if theme != "top_picks":
            pool_parts.append(_top_indices(score, pickable & theme_masks[theme], THEME_POOL * slots))
    pool = np.unique(np.concatenate(pool_parts))
    pool = pool[np.argsort(-score[pool], kind="stable")]

    # Slot masks over the pool, in reading order; pinned slots allow nothing.
    masks = []
    for theme, slots in settings.rows:
        row_mask = theme_masks[theme][pool]
        masks.extend([row_mask] * slots)
    slot_masks = np.array(masks, dtype=bool).reshape(len(masks), len(pool))
    for pos in pinned_at:
        slot_masks[pos] = False
    return _Candidates(score, pool, slot_masks, pinned_at, starts, keyword, tuple(notes))


def _rank_segment(studio: Studio, segment: Segment, settings: Settings, explain: bool) -> Layout:
    rules = settings.rules_obj()
    t0 = time.perf_counter()
    found = _candidates(studio, segment, settings, rules)
    t1 = time.perf_counter()
    score, pool, slot_masks, pinned_at, starts, keyword = found.score, found.pool, found.slot_masks, found.pinned_at, found.starts, found.keyword
    notes = list(found.notes)
    row_sizes = [s for _, s in settings.rows]
    colours = None
    fixed = None
    if studio.colours is not None and settings.visual > 0:
        root = studio.made("colour_roots", lambda: np.sqrt(studio.colours.hist))
        colours = root[pool]
        fixed = {pos: root[item] for pos, item in pinned_at.items()}
    t2 = time.perf_counter()
    chosen, _ = greedy_rerank(
        score[pool], _similarity_vectors(studio, settings.similarity)[pool], slot_masks,
        diversity=settings.diversity, long_tail=settings.long_tail, is_tail=studio.is_tail[pool],
        tail_weight=_tail_share(studio, segment), method=settings.method, visual=settings.visual,
        colours=colours, neighbours=_neighbours(row_sizes), fixed_colours=fixed,
    )
    t3 = time.perf_counter()
    flat = np.where(chosen >= 0, pool[np.maximum(chosen, 0)], -1)
    for pos, item in pinned_at.items():
        flat[pos] = item

    # Cards: scores, badges and reasons.
    shown = flat[flat >= 0]
    reasons = dict(zip(shown.tolist(), WhyExplainer.of(studio, segment)(shown))) if explain else {}
    adjust_reasons = _adjust_reasons(studio, rules) if explain else {}
    ids, titles = studio.made("item_ids", lambda: studio.data.item_ids), _titles(studio)
    rows: list[Row] = []
    for r, (theme, slots) in enumerate(settings.rows):
        cards = []
        for pos in range(starts[r], starts[r] + slots):
            item = int(flat[pos])
            if item < 0:
                cards.append(Card(None, "", None))
                continue
            badges = card_badges(studio, item, pos in pinned_at)
            why = list(reasons.get(item, []))
            if pos in pinned_at:
                why.insert(0, f"pinned to row {r + 1}, slot {pos - starts[r] + 1}")
            why.extend(adjust_reasons.get(item, []))
            value = round(float(score[item]), 6)
            cards.append(Card(str(ids[item]), str(titles[item]), value if math.isfinite(value) else None, badges, why, item))
        while cards and cards[-1].item < 0:
            cards.pop()
        if len(cards) < slots:
            notes.append(f"row {r + 1} ({theme}): only {sum(c.item >= 0 for c in cards)} of {slots} slots could be filled")
        rows.append(Row(theme, _row_title(theme, segment, keyword), slots, cards))  # kept when empty: pins keep their rows
    t4 = time.perf_counter()
    # relevance: the segment's relevance, the rules and the candidate pool (made once per segment,
    # rules and page shape: near 0 when a knob moved); colours: the candidates' picture colours.
    timing = {"relevance": (t1 - t0) * 1e3, "colours": (t2 - t1) * 1e3, "rerank": (t3 - t2) * 1e3, "why": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3}
    return Layout(segment.to_dict(), settings.to_dict(), rows, {}, {k: round(v, 3) for k, v in timing.items()}, notes)


def _adjust_reasons(studio: Studio, rules: Rules) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for a in rules.adjust:
        verb = "boosted" if a.weight >= 0 else "buried"
        for item in np.flatnonzero(_match(studio, a.field, [a.value], verb)):
            out.setdefault(int(item), []).append(f"{verb} ({a.field} {a.value}, {abs(a.weight):g})")
    return out
