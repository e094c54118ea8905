"""A layout (``engine.page.layout.Layout``) drawn as storefront rows of product cards."""

from __future__ import annotations

import streamlit as st

from dashboard import resources as R
from dashboard.cards import STYLE, RowView, page_html
from dashboard.views import item_card


def change_label(change: dict | None, side: str = "b") -> str | None:
    """``compare``'s rank change of an item as a badge: ``up 3``, ``down 5``, ``new``, ``same``; on A's cards only ``out``."""
    if change is None:
        return None
    if side == "a":
        return "out" if change.get("rank_b") is None else None
    if change.get("rank_a") is None:
        return "new"
    delta = change.get("change")
    if delta is None:
        return None
    return "same" if delta == 0 else (f"up {delta}" if delta > 0 else f"down {-delta}")


def layout_rows(data_dir: str, layout, changes: dict[str, dict] | None = None, side: str = "b") -> list[RowView]:
    """Card views of a layout's rows, with pictures from the data directory and optional rank changes."""
    data = R.dataset(data_dir)
    fields = R.card_fields(data_dir)
    shown = [[card for card in row.items if card.item_id is not None and card.item_id in data.item_index] for row in layout.rows]
    pictures = iter(R.thumbnails(data_dir, [data.item_index[card.item_id] for cards in shown for card in cards]))
    rows = []
    for row, cards in zip(layout.rows, shown):
        views = []
        for card in cards:
            change = change_label(changes.get(card.item_id), side) if changes is not None else None
            views.append(item_card(fields, data.item_index[card.item_id], next(pictures), card.badges, card.why, change))
        rows.append(RowView(title=row.title, cards=views))
    return rows


def style() -> None:
    """The storefront's style sheet, for pages that draw it once and their storefront with ``styled=False``."""
    st.html(STYLE)


def draw(data_dir: str, layout, stamp: str, changes: dict[str, dict] | None = None, side: str = "b", compact: bool = False,
         styled: bool = True) -> None:
    """Draw the layout as one HTML block (all product text escaped in ``dashboard.cards``), with
    the style sheet unless ``styled`` is False (then :func:`style` draws it once, outside a fragment)."""
    rows = layout_rows(data_dir, layout, changes, side)
    st.html(page_html(rows, "This page has no items: the rules exclude everything.", stamp, compact, style=styled))
