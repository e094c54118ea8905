"""Price display: currency amounts as they are, scaled prices (H&M) as a level within the catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.page.prices import price_labels, price_scale


def test_currency_prices_show_as_amounts() -> None:
    prices = pd.Series([54.99, 19.99, 7.5, 1299.0, 249.99, np.nan])
    scale = price_scale(prices)
    assert scale.kind == "currency"
    assert scale.label(54.99) == "54.99" and scale.label(1299.0) == "1,299.00"
    assert scale.label(None) == "" and scale.label(float("nan")) == ""
    assert scale.note(54.99) == ""


def test_cheap_currency_catalogue_is_still_currency() -> None:
    # Mostly under 1 but in cents, with some above 1: amounts, not a scale.
    assert price_scale([0.49, 0.99, 0.25, 1.99, 0.75]).kind == "currency"


def test_scaled_prices_show_as_a_level_of_five() -> None:
    rng = np.random.default_rng(0)
    prices = pd.Series(rng.uniform(0.005, 0.3, 1000))  # like H&M's scaled transaction prices
    prices.iloc[0] = 0.04994067796610169
    scale = price_scale(prices)
    assert scale.kind == "relative" and len(scale.edges) == 4
    label = scale.label(prices.iloc[0])
    assert "0.0499" not in label and label.endswith(f"price level {scale.level(prices.iloc[0])}/5")
    assert label.startswith("●") and label.count("●") + label.count("○") == 5
    assert scale.level(prices.min()) == 1 and scale.level(prices.max()) == 5
    levels = [scale.level(p) for p in prices]
    assert sorted(set(levels)) == [1, 2, 3, 4, 5]
    assert abs(levels.count(3) - 200) <= 2  # quintiles: a fifth of the catalogue in each level
    note = scale.note(prices.iloc[0])
    assert "scaled, not a currency" in note and "0.04994" in note


def test_price_labels_of_a_column_with_gaps_and_text() -> None:
    labels, notes = price_labels([10.0, None, "n/a", 12.5])
    assert labels == ["10.00", "", "", "12.50"] and notes == ["", "", "", ""]
    labels, notes = price_labels([0.01234, 0.0456, None, 0.0789, 0.0991, 0.1302])
    assert labels[2] == "" and notes[2] == ""
    assert labels[0].endswith("price level 1/5") and labels[-1].endswith("price level 5/5")


def test_no_prices_show_nothing() -> None:
    assert price_scale([]).kind == "none"
    assert price_scale([None, float("nan")]).label(12.0) == ""
    with pytest.raises(ValueError, match="levels"):
        price_scale([1.0], levels=1)


def test_negative_prices_are_not_currency() -> None:
    assert price_scale([-0.5, 0.1, 1.7, 2.3]).kind == "relative"
