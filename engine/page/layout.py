"""The one page data model: themed rows of cards (each with item index and id), saved to and loaded from JSON and CSV."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.core.files import atomic_write_text
from engine.studio.context import Studio

CSV_HEADER_PREFIX = "# layout "
CSV_COLUMNS = ("row", "slot", "theme", "row_title", "item_id", "title", "score", "badges", "why")


@dataclass
class Card:
    """One slot of a row: an item (``item_id`` None for an empty slot) with its score, badges and why.

    Attributes:
        item_id: the item's id (None for an empty slot).
        title: the item's title.
        score: relevance on the page's scale (best candidate 1, the ``candidates``-th 0) after
            boost and bury; None for a pinned item outside the candidates.
        badges: ``new``, ``long-tail``, ``pinned``.
        why: short reasons (segment keywords the item matches, the members' history items it is
            most like, rules that moved it).
        item: the item's index in the data the page was built on; -1 for an empty slot and for a
            card read from a file (ids are what files keep: :meth:`Layout.item_indices` maps them).
            Not part of equality, so a page equals itself read back.
    """

    item_id: str | None
    title: str
    score: float | None
    badges: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)
    item: int = field(default=-1, compare=False)

    def to_dict(self) -> dict:
        return {"item_id": self.item_id, "title": self.title, "score": self.score, "badges": list(self.badges), "why": list(self.why)}


@dataclass
class Row:
    """A row of the page: theme (``top_picks``, ``because``, ``new``, ``hidden_gems``), title, planned slots, cards."""

    theme: str
    title: str
    slots: int
    items: list[Card]

    def to_dict(self) -> dict:
        return {"theme": self.theme, "title": self.title, "slots": self.slots, "items": [c.to_dict() for c in self.items]}


@dataclass
class Layout:
    """A segment's homepage and its held-out verdict.

    Attributes:
        segment: the segment as shown (``Segment.to_dict``: no member).
        settings: the knobs, rows and rules it was built with (``Settings.to_dict``).
        rows: the rows, top to bottom.
        metrics: held-out metrics (``evaluate.evaluate_layout``), keyed like the foundation
            issue's JSON (``ndcg@10``, ``ild@10``, ``tail_share@10``) plus page-wide ``@<slots>``.
        timing_ms: milliseconds per stage.
        notes: rule effects worth telling.
    """

    segment: dict
    settings: dict
    rows: list[Row]
    metrics: dict = field(default_factory=dict)
    timing_ms: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # -- reading -------------------------------------------------------------------------------
    def items(self) -> np.ndarray:
        """Item indices in reading order (row by row, left to right), empty slots left out."""
        return np.array([c.item for r in self.rows for c in r.items if c.item >= 0], dtype=np.int64)

    def flat_items(self) -> np.ndarray:
        """Item indices of every slot in reading order, -1 for empty slots (aligned with ``row_sizes``)."""
        return np.array([c.item for r in self.rows for c in r.items], dtype=np.int64)

    def item_ids(self) -> list[str | None]:
        """Item ids in reading order (row by row, left to right); None for empty slots."""
        return [c.item_id for r in self.rows for c in r.items]

    def row_sizes(self) -> list[int]:
        """Cards per row (after trimming empty slots at row ends)."""
        return [len(r.items) for r in self.rows]

    def item_indices(self, studio: Studio) -> np.ndarray:
        """Item indices in reading order, -1 for empty slots and ids unknown to the data."""
        index = studio.data.item_index
        return np.array([index.get(i, -1) if i is not None else -1 for i in self.item_ids()], dtype=np.int64)

    def card_at(self, row: int, slot: int) -> Card:
        """The card at a 0-based row and slot."""
        return self.rows[row].items[slot]

    @property
    def layout_id(self) -> str:
        """A short stable id of the page's content, which feedback rows refer to.

        ``layout_id = sha1(json([segment id, settings, item ids in reading order]))[:12]`` (hex),
        JSON with sorted keys and no spaces, empty slots as null. Titles, scores, reasons,
        metrics and timings are left out: the same page built again has the same id, a page
        with another item, order, segment or knob another one.
        """
        content = [self.segment.get("id"), self.settings, self.item_ids()]
        text = json.dumps(_clean(content), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The layout JSON: layout_id, segment, settings, rows (title, items with item_id, title, score, badges, why),
        metrics, timing_ms, notes. ``layout_id`` is derived (:attr:`layout_id`), so reading ignores it."""
        return {
            "layout_id": self.layout_id,
            "segment": self.segment,
            "settings": self.settings,
            "rows": [r.to_dict() for r in self.rows],
            "metrics": _clean(self.metrics),
            "timing_ms": self.timing_ms,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, obj: dict, source: str = "layout") -> "Layout":
        """Rebuild a layout from :meth:`to_dict` output.

        Raises:
            ValueError: naming ``source`` and the missing key.
        """
        try:
            rows = [
                Row(r["theme"], r["title"], int(r.get("slots", len(r["items"]))),
                    [Card(c["item_id"], c["title"], c["score"], list(c.get("badges", [])), list(c.get("why", []))) for c in r["items"]])
                for r in obj["rows"]
            ]
            return cls(obj["segment"], obj["settings"], rows, obj.get("metrics", {}), obj.get("timing_ms", {}), list(obj.get("notes", [])))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source}: not a layout (missing or malformed {exc})") from None

    def to_json(self, path: str | Path) -> Path:
        """Write the layout JSON (to a temporary name, then renamed into place)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=False))

    @classmethod
    def from_json(cls, path: str | Path) -> "Layout":
        path = Path(path)
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(obj, str(path))

    # -- CSV -----------------------------------------------------------------------------------
    def to_csv_text(self) -> str:
        """One line per card (row, slot 1-based), after a first line ``# layout {json}`` holding
        the segment, settings, row titles, metrics and timings, so that the file loads back whole.

        ``badges`` and ``why`` cells are JSON lists; ``score`` is written with full precision.
        """
        meta = self.to_dict()
        meta["rows"] = [{"theme": r.theme, "title": r.title, "slots": r.slots, "n_items": len(r.items)} for r in self.rows]
        buf = io.StringIO()
        buf.write(CSV_HEADER_PREFIX + json.dumps(meta, allow_nan=False, separators=(",", ":")) + "\n")
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r, row in enumerate(self.rows, start=1):
            for s, card in enumerate(row.items, start=1):
                writer.writerow([r, s, row.theme, row.title, card.item_id if card.item_id is not None else "", card.title,
                                 repr(card.score) if card.score is not None else "", json.dumps(card.badges), json.dumps(card.why)])
        return buf.getvalue()

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`to_csv_text` to a file (atomically)."""
        return atomic_write_text(path, self.to_csv_text())

    @classmethod
    def from_csv_text(cls, text: str, source: str = "layout.csv") -> "Layout":
        """Rebuild a layout from :meth:`to_csv_text` output.

        Raises:
            ValueError: naming ``source`` and the offending line.
        """
        first, _, rest = text.partition("\n")
        if not first.startswith(CSV_HEADER_PREFIX):
            raise ValueError(f"{source}: line 1 must start with {CSV_HEADER_PREFIX.strip()!r} (a layout CSV written by Homepage Studio)")
        try:
            meta = json.loads(first[len(CSV_HEADER_PREFIX):])
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: line 1 is not valid JSON ({exc})") from None
        reader = csv.DictReader(io.StringIO(rest))
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise ValueError(f"{source}: line 2 must be the columns {','.join(CSV_COLUMNS)}")
        cards: dict[int, list[tuple[int, Card]]] = {}
        for line, rec in enumerate(reader, start=3):
            try:
                card = Card(rec["item_id"] or None, rec["title"], float(rec["score"]) if rec["score"] else None,
                            json.loads(rec["badges"]), json.loads(rec["why"]))
                cards.setdefault(int(rec["row"]) - 1, []).append((int(rec["slot"]) - 1, card))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{source}: line {line}: {exc}") from None
        rows = []
        for r, info in enumerate(meta["rows"]):
            items = [c for _, c in sorted(cards.get(r, []), key=lambda sc: sc[0])]
            if len(items) != info.get("n_items", len(items)):
                raise ValueError(f"{source}: row {r + 1} has {len(items)} card lines, the header says {info['n_items']}")
            rows.append(Row(info["theme"], info["title"], int(info["slots"]), items))
        return cls(meta["segment"], meta["settings"], rows, meta.get("metrics", {}), meta.get("timing_ms", {}), list(meta.get("notes", [])))

    @classmethod
    def from_csv(cls, path: str | Path) -> "Layout":
        path = Path(path)
        return cls.from_csv_text(path.read_text(encoding="utf-8"), str(path))


def _clean(value):
    """NaN and infinities to None, numpy scalars to Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
