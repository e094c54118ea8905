"""What every ``homepage`` command shares: argument types, the split options, loading a data directory."""

from __future__ import annotations

import argparse
import sys
import warnings

from engine.core.constants import DEFAULT_TEST_DAYS


def int_at_least(low: int, name: str = ""):
    """argparse type: an integer of at least ``low`` (a usage error, exit code 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{name + ' ' if name else ''}must be at least {low}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)


def baseline_names(text: str) -> list[str]:
    """argparse type: a comma-separated list of known baseline names."""
    from engine.models.baselines import BASELINES

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BASELINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown model(s) {', '.join(unknown) or repr(text)}; choose from {','.join(BASELINES)}")
    return names


def add_split_args(p: argparse.ArgumentParser, protocol_default: str | None = "loo") -> None:
    p.add_argument("--protocol", choices=["loo", "temporal"], default=protocol_default, help="held-out protocol")
    p.add_argument("--test-days", type=positive_int, default=DEFAULT_TEST_DAYS, help="temporal protocol: days of test (and of validation before it)")
    p.add_argument("--keep-history", action="store_true", help="do not mask items already in a user's history (repeat purchases)")
    p.add_argument("--drop-unknown", action="store_true", help="drop interactions naming items missing from the catalogue")


def load_data(args):
    from engine.data.tables import load_dataset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(args.dir, drop_unknown=getattr(args, "drop_unknown", False), encoding=getattr(args, "encoding", "utf-8"))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return data


def ild_text_vectors(data, enabled: bool = True):
    """Pretrained text vectors for intra-list diversity; None where items have no real text."""
    if not enabled or not data.has_text():
        return None
    from engine.models.text_encoder import cached_item_vectors

    return cached_item_vectors(data.root, data.items)


def sample_note(report: dict) -> str:
    """What to add after "N evaluated users" when a report judged a sample of the held-out users."""
    n = report.get("sampled_from_users")
    return f" (a seeded random sample of {n:,})" if n else ""


def unit_interval(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value
