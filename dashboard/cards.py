"""Storefront HTML for product cards and rows; every piece of product text is escaped here."""

from __future__ import annotations

import base64
import re
import html
import math
from dataclasses import dataclass, field

# A neutral picture for items without a (readable) image: a shopping bag outline on grey.
_PLACEHOLDER_SVG = (
    "<svg xmlns='http://www.w3.org/2000/svg' width='200' height='200' viewBox='0 0 200 200'>"
    "<rect width='200' height='200' fill='#eef0f3'/>"
    "<path d='M62 78h76l-6 74H68z' fill='none' stroke='#a6adb8' stroke-width='6' stroke-linejoin='round'/>"
    "<path d='M82 86V70a18 18 0 0 1 36 0v16' fill='none' stroke='#a6adb8' stroke-width='6' stroke-linecap='round'/>"
    "</svg>"
)
_OWN_THUMB = re.compile(r"^/app/static/thumbs/[0-9a-f]{32}\.(jpg|png)$")
PLACEHOLDER_SRC = "data:image/svg+xml;base64," + base64.b64encode(_PLACEHOLDER_SVG.encode()).decode()

BADGE_LABELS = {"new": "New", "long_tail": "Hidden gem", "long-tail": "Hidden gem", "tail": "Hidden gem", "pinned": "Pinned", "boosted": "Boosted"}

STYLE = """
<style>
.hp-page{font-family:"Source Sans Pro","Helvetica Neue",Arial,sans-serif;color:#1f2430}
.hp-row{margin:0 0 22px 0}
.hp-row h3{font-size:1.15rem;font-weight:700;margin:0 0 2px 0;padding:0;color:#1f2430}
.hp-row .hp-sub{font-size:.82rem;color:#6b7280;margin:0 0 8px 0}
.hp-strip{display:flex;gap:14px;overflow-x:auto;padding:4px 2px 10px 2px;scroll-snap-type:x proximity}
.hp-card{position:relative;flex:0 0 164px;width:164px;background:#fff;border:1px solid #e6e8ec;border-radius:10px;
  box-shadow:0 1px 2px rgba(16,24,40,.05);overflow:hidden;scroll-snap-align:start;transition:box-shadow .15s,transform .15s}
.hp-card:hover{box-shadow:0 6px 16px rgba(16,24,40,.14);transform:translateY(-2px)}
.hp-img{position:relative;width:164px;height:180px;background:#f4f5f7;display:flex;align-items:center;justify-content:center}
.hp-img img{max-width:100%;max-height:100%;object-fit:contain;display:block}
.hp-why-hover{position:absolute;inset:0;background:rgba(17,24,39,.86);color:#fff;font-size:.74rem;line-height:1.3;
  padding:10px;opacity:0;transition:opacity .15s;overflow:hidden}
.hp-card:hover .hp-why-hover{opacity:1}
.hp-why-hover b{display:block;margin-bottom:4px;font-size:.72rem;letter-spacing:.04em;text-transform:uppercase;color:#fcd34d}
.hp-badges{position:absolute;top:6px;left:6px;display:flex;flex-wrap:wrap;gap:4px;z-index:2}
.hp-badge{font-size:.66rem;font-weight:700;padding:2px 7px;border-radius:999px;letter-spacing:.02em;color:#fff;background:#374151}
.hp-badge.new{background:#2563eb}.hp-badge.long_tail,.hp-badge.long-tail,.hp-badge.tail{background:#7c3aed}
.hp-badge.pinned{background:#d97706}.hp-badge.boosted{background:#059669}
.hp-change{position:absolute;top:6px;right:6px;z-index:2;font-size:.68rem;font-weight:700;padding:2px 7px;border-radius:6px}
.hp-change.up{background:#dcfce7;color:#166534}.hp-change.down{background:#fee2e2;color:#991b1b}
.hp-change.new{background:#dbeafe;color:#1e40af}.hp-change.same{background:#f3f4f6;color:#4b5563}
.hp-body{padding:8px 10px 8px 10px}
.hp-brand{font-size:.7rem;color:#6b7280;text-transform:uppercase;letter-spacing:.05em;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.hp-title{font-size:.85rem;font-weight:600;line-height:1.2;height:2.4em;overflow:hidden;margin:2px 0 4px 0;color:#111827}
.hp-price{font-size:.95rem;font-weight:700;color:#111827}
.hp-price.level{font-size:.74rem;font-weight:600;color:#4b5563;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;cursor:help}
.hp-body details{margin-top:4px;font-size:.72rem;color:#4b5563}
.hp-body summary{cursor:pointer;color:#2563eb}
.hp-compact .hp-card{flex-basis:132px;width:132px}.hp-compact .hp-img{width:132px;height:146px}
.hp-compact .hp-title{font-size:.78rem}.hp-compact .hp-price{font-size:.85rem}.hp-compact .hp-price.level{font-size:.68rem}.hp-compact .hp-strip{gap:10px}
.hp-change.out{background:#f3f4f6;color:#6b7280}
.hp-empty{padding:18px;border:1px dashed #cbd5e1;border-radius:10px;color:#64748b;font-size:.9rem}
.hp-metrics{display:flex;gap:12px;flex-wrap:wrap;margin:2px 0 4px 0;font-family:"Source Sans Pro","Helvetica Neue",Arial,sans-serif}
.hp-metric{flex:1 1 0;min-width:112px}
.hp-mlabel{font-size:.82rem;color:#4b5563;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.hp-mvalue{font-size:1.75rem;line-height:1.25;color:#1f2430}
.hp-mdelta{display:inline-block;font-size:.8rem;padding:1px 8px;border-radius:999px}
.hp-mdelta.up{color:#15803d;background:#dcfce7}.hp-mdelta.down{color:#b91c1c;background:#fee2e2}.hp-mdelta.off{color:#4b5563;background:#f3f4f6}
.hp-mnote{font-size:.85rem;color:#6b7280;margin:2px 0 10px 0}
</style>
"""


@dataclass
class CardView:
    """What one card shows; plain strings and numbers, escaped when rendered."""

    item_id: str
    title: str
    image_src: str = PLACEHOLDER_SRC  # a data: URI or the app's own thumbnail URL (never a path or an outside URL)
    brand: str = ""
    category: str = ""
    price: float | None = None
    price_text: str = ""  # the catalogue's own rendering (``engine.page.prices``); else ``format_price(price)``
    price_note: str = ""  # tooltip of the price, e.g. what a relative price level means
    badges: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)
    change: str | None = None  # compare pages: "up 3", "down 5", "new", "same", "out"


@dataclass
class RowView:
    """One row of the homepage."""

    title: str
    cards: list[CardView]
    subtitle: str = ""


def esc(value: object) -> str:
    """HTML-escape any value (quotes too, since text also lands in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def format_price(price: float | None) -> str:
    """``54.99``; scaled prices below 1 (H&M) keep four significant digits."""
    if price is None or (isinstance(price, float) and math.isnan(price)):
        return ""
    if abs(price) >= 1:
        return f"{price:,.2f}"
    return f"{price:.4g}"


def _safe_src(src: str) -> str:
    """Only data:image URIs and the app's own thumbnails (``/app/static/thumbs/<hash>.jpg`` or ``.png``) reach
    an <img>: the page never links other files of the server or outside hosts."""
    if not isinstance(src, str):
        return PLACEHOLDER_SRC
    if src.startswith("data:image/") or _OWN_THUMB.match(src):
        return src
    return PLACEHOLDER_SRC


def _change_html(change: str | None) -> str:
    if not change:
        return ""
    kind = change.split()[0]
    arrow = {"up": "▲ ", "down": "▼ "}.get(kind, "")
    number = change.split()[1] if len(change.split()) > 1 else ""
    label = f"{arrow}{number}" if arrow else ("New" if kind == "new" else "=")
    if kind == "out":
        label = "Not in B"
    cls = kind if kind in ("up", "down", "new", "out") else "same"
    return f'<span class="hp-change {cls}" title="rank change against A">{esc(label)}</span>'


def _price_html(card: CardView) -> str:
    text = card.price_text or format_price(card.price)
    if not card.price_note:
        return f'<div class="hp-price">{esc(text)}</div>'
    return f'<div class="hp-price level" title="{esc(card.price_note)}">{esc(text)}</div>'


def card_html(card: CardView) -> str:
    """One product card: photo (or placeholder), badges, brand, title, price and why it is there."""
    badges = "".join(f'<span class="hp-badge {esc(b)}">{esc(BADGE_LABELS.get(b, b))}</span>' for b in card.badges)
    why_items = "".join(f"<li>{esc(w)}</li>" for w in card.why)
    why_text = "; ".join(card.why)
    hover = f'<div class="hp-why-hover"><b>Why here</b>{esc(why_text)}</div>' if card.why else ""
    details = f"<details><summary>Why?</summary><ul>{why_items}</ul></details>" if card.why else ""
    brand = " · ".join(x for x in (card.brand, card.category) if x)
    return (
        f'<div class="hp-card" data-item="{esc(card.item_id)}" title="{esc(card.title)}">'
        f'<div class="hp-img"><div class="hp-badges">{badges}</div>{_change_html(card.change)}'
        f'<img src="{_safe_src(card.image_src)}" alt="{esc(card.title)}">{hover}</div>'
        f'<div class="hp-body"><div class="hp-brand">{esc(brand)}</div>'
        f'<div class="hp-title">{esc(card.title)}</div>'
        f'{_price_html(card)}{details}</div></div>'
    )


def row_html(row: RowView) -> str:
    """A titled horizontal strip of cards."""
    sub = f'<div class="hp-sub">{esc(row.subtitle)}</div>' if row.subtitle else ""
    cards = "".join(card_html(c) for c in row.cards) or '<div class="hp-empty">No items in this row.</div>'
    return f'<section class="hp-row"><h3>{esc(row.title)}</h3>{sub}<div class="hp-strip">{cards}</div></section>'


def page_html(rows: list[RowView], empty_message: str = "Nothing to show.", stamp: str = "", compact: bool = False,
              style: bool = True) -> str:
    """A whole homepage as one HTML block, with its style sheet unless ``style`` is False (a page
    that redraws its storefront often draws the sheet once beside it, see ``storefront.style``).

    ``stamp`` (the settings drawn, e.g. ``diversity=0.30 long_tail=0.00``) lands in ``data-settings``
    so that browser tests and benchmarks can tell when a redraw arrived.
    """
    body = "".join(row_html(r) for r in rows) if rows else f'<div class="hp-empty">{esc(empty_message)}</div>'
    cls = "hp-page hp-compact" if compact else "hp-page"
    return f'{STYLE if style else ""}<div class="{cls}" data-settings="{esc(stamp)}">{body}</div>'


@dataclass
class MetricView:
    """One headline number of a page: its label, value and change (text), and how to colour the
    change: ``"normal"`` (up green, down red) or ``"off"`` (grey)."""

    label: str
    value: str
    delta: str | None = None
    colour: str = "normal"


def metrics_html(metrics: list[MetricView], note: str = "") -> str:
    """A row of headline numbers with their changes, and a note under it, as one HTML block (one
    element for the browser to redraw instead of a widget per number). All text is escaped."""
    tiles = []
    for m in metrics:
        delta = ""
        if m.delta:
            kind = "off" if m.colour == "off" else ("down" if m.delta.lstrip().startswith("-") else "up")
            arrow = "↓ " if m.delta.lstrip().startswith("-") else "↑ "
            delta = f'<div class="hp-mdelta {kind}">{arrow}{esc(m.delta.lstrip("+-"))}</div>'
        tiles.append(f'<div class="hp-metric" data-label="{esc(m.label)}" data-value="{esc(m.value)}">'
                     f'<div class="hp-mlabel">{esc(m.label)}</div><div class="hp-mvalue">{esc(m.value)}</div>{delta}</div>')
    note_html = f'<div class="hp-mnote">{esc(note)}</div>' if note else ""
    return f'<div class="hp-metrics">{"".join(tiles)}</div>{note_html}'


def image_data_uri(data: bytes, mime: str) -> str:
    """Bytes of a picture as a data: URI."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
