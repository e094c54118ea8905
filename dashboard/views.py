"""Reshaping engine results for display: report dicts to tidy frames, layouts to card views. No metric is computed here."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from dashboard.cards import PLACEHOLDER_SRC, CardView, RowView

METRIC_LABELS = {
    "ndcg@10": "NDCG@10", "recall@10": "Recall@10", "hr@10": "HR@10", "map@12": "MAP@12", "recall@12": "Recall@12",
    "mrr@10": "MRR@10", "coverage@10": "Coverage@10", "tail_share@10": "Long-tail share@10", "novelty@10": "Novelty@10",
    "ild@10": "Diversity (ILD@10)", "gini@10": "Gini@10", "avg_price": "Average price", "avg_price@10": "Avg price@10", "avg_popularity@10": "Avg popularity@10",
    "ndcg@40": "NDCG@40 (page)", "recall@40": "Recall@40 (page)", "hr@40": "HR@40 (page)", "tail_share@40": "Long-tail share (page)",
    "coverage@40": "Coverage (page)", "ild@40": "Diversity (page)", "novelty@40": "Novelty (page)", "avg_price@40": "Avg price (page)",
}
ACCURACY = ("ndcg@10", "recall@10", "hr@10", "map@12")
BEYOND = ("coverage@10", "tail_share@10", "ild@10", "novelty@10")
MODEL_LABELS = {"finetuned": "fine-tuned transformer", "two_stage": "two stages (fine-tuned + LambdaRank)", "zero_shot": "zero-shot encoder",
                "popularity": "popularity", "recent_popularity": "recent popularity", "item_knn": "item kNN", "ease": "EASE",
                "transition": "transition", "rebuy": "re-buy"}


def label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def models_frame(models: Mapping[str, Mapping], metrics: tuple[str, ...]) -> pd.DataFrame:
    """Tidy rows (model, metric, value, low, high) from ``{"model": {"ndcg@10": .., "ndcg@10_ci95": [lo, hi]}}``."""
    rows = []
    for name, values in models.items():
        for metric in metrics:
            value = _number(values.get(metric))
            if value is None:
                continue
            ci = values.get(f"{metric}_ci95")
            lo, hi = (ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None))
            rows.append({"model": MODEL_LABELS.get(name, name), "metric": label(metric), "value": value, "low": _number(lo), "high": _number(hi)})
    return pd.DataFrame(rows, columns=["model", "metric", "value", "low", "high"])


def history_frame(history: list[Mapping]) -> pd.DataFrame:
    """Per-epoch training history (epoch, loss, valid_ndcg@10)."""
    frame = pd.DataFrame(list(history))
    for column in ("epoch", "loss", "valid_ndcg@10"):
        if column not in frame:
            frame[column] = pd.Series(dtype=float)
    return frame


CARD_FIELDS = ("item_id", "title", "brand", "category", "price")


def card_fields(items: pd.DataFrame) -> dict[str, list]:
    """The catalogue columns a card shows, as plain lists (row lookups in lists cost far less than ``iloc``).

    Prices also come as ``price_text`` and ``price_note``: currency amounts as they are, scaled
    prices (H&M) as a level within the catalogue (``engine.page.prices``).
    """
    from engine.page.prices import price_labels

    out: dict[str, list] = {}
    for column in CARD_FIELDS:
        if column not in items.columns:
            out[column] = [None] * len(items)
        elif column == "price":
            out[column] = [_number(v) for v in items[column].tolist()]
        else:
            out[column] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in items[column].tolist()]
    if "price" in items.columns:
        out["price_text"], out["price_note"] = price_labels(items["price"])
    else:
        out["price_text"] = out["price_note"] = [""] * len(items)
    return out


def item_card(fields: dict[str, list], index: int, image_src: str | None, badges=(), why=(), change: str | None = None) -> CardView:
    """A card for catalogue row ``index`` (``fields`` from :func:`card_fields`)."""
    i = int(index)
    return CardView(
        item_id=fields["item_id"][i] or "", title=fields["title"][i] or "", image_src=image_src or PLACEHOLDER_SRC,
        brand=fields["brand"][i] or "", category=fields["category"][i] or "", price=fields["price"][i],
        price_text=fields["price_text"][i], price_note=fields["price_note"][i],
        badges=list(badges), why=[str(w) for w in why], change=change,
    )


def rows_view(rows: list[tuple[str, str, list[CardView]]]) -> list[RowView]:
    return [RowView(title=t, subtitle=s, cards=c) for t, s, c in rows]
