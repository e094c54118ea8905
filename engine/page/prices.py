"""How a catalogue's prices read on a card: currency amounts as they are, scaled prices as a level within the catalogue."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVELS = 5
CURRENCY_DECIMALS_SHARE = 0.9  # share of prices with at most two decimals for amounts under 1 to count as currency


@dataclass(frozen=True)
class PriceScale:
    """How the prices of one catalogue are shown.

    Attributes:
        kind: ``"currency"`` (amounts such as 54.99, shown with two decimals), ``"relative"`` (scaled
            numbers such as H&M's 0.0499, shown as a level within the catalogue) or ``"none"`` (no prices).
        edges: ``levels - 1`` ascending cut points of the levels (quantiles of the catalogue's prices).
        levels: how many levels a relative price is put in.
    """

    kind: str
    edges: tuple[float, ...] = ()
    levels: int = LEVELS

    def level(self, price: float | None) -> int | None:
        """The price's level, 1 (cheapest fifth of the catalogue) to ``levels``; None without a price."""
        if not _finite(price):
            return None
        return int(np.searchsorted(np.asarray(self.edges, dtype=float), float(price), side="right")) + 1

    def label(self, price: float | None) -> str:
        """What a card shows: ``54.99``, ``●●●○○ price level 3/5``, or ``""`` without a price."""
        if not _finite(price) or self.kind == "none":
            return ""
        if self.kind == "currency":
            return f"{float(price):,.2f}"
        level = self.level(price)
        return f"{'●' * level}{'○' * (self.levels - level)} price level {level}/{self.levels}"

    def note(self, price: float | None) -> str:
        """A tooltip that says what the label means (empty for currency amounts and missing prices)."""
        if not _finite(price) or self.kind != "relative":
            return ""
        return (f"Price level {self.level(price)} of {self.levels}: its fifth of this catalogue's prices, cheapest first. "
                f"The catalogue's prices are scaled, not a currency (this one: {float(price):.4g}).")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) and math.isfinite(float(value))


def _numbers(prices: Iterable[float | None] | pd.Series) -> np.ndarray:
    """Prices as floats, NaN where missing or not a number."""
    series = prices if isinstance(prices, pd.Series) else pd.Series(list(prices), dtype=object)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def price_scale(prices: Iterable[float | None] | pd.Series, levels: int = LEVELS) -> PriceScale:
    """Decide from a catalogue's price column whether its prices look like currency amounts.

    Currency: no negative price, and either the median is at least 1 or (some price above 1 and) at
    least 90% of the prices have at most two decimals. Otherwise (H&M's prices are scaled to about
    0.001-0.5 with many decimals) prices are relative: a card shows the price's level among the
    catalogue's ``levels`` quantiles.

    Args:
        prices: the catalogue's ``price`` column (numbers; missing values are skipped).
        levels: how many levels relative prices are put in.

    Returns:
        The :class:`PriceScale`; kind ``"none"`` when no price is given.

    Raises:
        ValueError: ``levels`` under 2.
    """
    if levels < 2:
        raise ValueError(f"levels must be at least 2, not {levels}")
    values = _numbers(prices)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return PriceScale("none", levels=levels)
    cents = values * 100
    two_decimals = float(np.mean(np.abs(cents - np.round(cents)) <= 1e-6 * np.maximum(1.0, np.abs(cents))))
    median, top = float(np.median(values)), float(values.max())
    if values.min() >= 0 and (median >= 1 or (top > 1 and two_decimals >= CURRENCY_DECIMALS_SHARE)):
        return PriceScale("currency", levels=levels)
    edges = tuple(float(q) for q in np.quantile(values, np.arange(1, levels) / levels))
    return PriceScale("relative", edges, levels)


def price_labels(prices: Iterable[float | None] | pd.Series, levels: int = LEVELS) -> tuple[list[str], list[str]]:
    """Card labels and tooltips of a whole price column (one :func:`price_scale` for all).

    Returns:
        (labels, notes), one of each per price, ``""`` where a price is missing.
    """
    values = _numbers(prices)
    scale = price_scale(values, levels)
    as_float = [float(v) if math.isfinite(v) else None for v in values]
    return [scale.label(v) for v in as_float], [scale.note(v) for v in as_float]
