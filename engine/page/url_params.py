"""The dashboard's URL parameters, read with the engine's own validators: a value that does not
pass is ignored, and the reader says which and why, so a bad link keeps the page working."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from engine.page.rerank import DIVERSITY_METHODS, rules_from_dict

MAX_PARAM_CHARS = 20_000  # a longer value is ignored unread


def unit(text: str) -> float:
    """A knob value in [0, 1] (two decimals)."""
    value = float(text)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError("not a number from 0 to 1")
    return round(value, 2)


def one_of(options: Sequence[str]) -> Callable[[str], str]:
    """A parser accepting only the given options."""

    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"not one of {', '.join(options)}")
        return text

    return parse


def segment_count(text: str) -> int:
    """A number of learned segments: 0 (chosen by the model) or 2 to 20."""
    value = int(text)
    if value != 0 and not 2 <= value <= 20:
        raise ValueError("not 0 (automatic) or 2 to 20")
    return value


def rules(text: str) -> dict:
    """A rules object (the rules-file form), validated and normalised by the engine."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("not valid JSON") from None
    return rules_from_dict(obj, "rules").to_dict()


def flag(text: str) -> bool:
    """A yes/no switch written as 1 or 0."""
    if text not in ("0", "1"):
        raise ValueError("not 0 or 1")
    return text == "1"


KNOBS: dict[str, Callable[[str], object]] = {
    "diversity": unit, "long_tail": unit, "visual": unit, "method": one_of(DIVERSITY_METHODS),
}


@dataclass
class UrlReading:
    """Parsed parameters and what was ignored, in words for the page."""

    values: dict[str, object] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def read_params(params: Mapping[str, str], parsers: Mapping[str, Callable[[str], object]]) -> UrlReading:
    """Parse the parameters that have a parser; each failure becomes one line in ``ignored``.

    Args:
        params: the URL's query parameters (name -> text).
        parsers: name -> parser raising ValueError (or TypeError) on a bad value.

    Returns:
        The values that passed, and ``"name=value: reason"`` for each that did not.
    """
    out = UrlReading()
    for name, parse in parsers.items():
        if name not in params:
            continue
        text = params[name]
        if not isinstance(text, str) or len(text) > MAX_PARAM_CHARS:
            out.ignored.append(f"{name}: too long")
            continue
        shown = text if len(text) <= 40 else text[:37] + "..."
        try:
            out.values[name] = parse(text)
        except (ValueError, TypeError, OverflowError) as exc:
            reason = str(exc).removeprefix("rules: ")[:160] or "not valid"
            out.ignored.append(f"{name}={shown}: {reason}")
    return out
