"""``homepage update``: a trained model fine-tuned cheaply on page feedback (LoRA adapters, replay)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import int_at_least, unit_interval
from engine.core.errors import DataError

MODES = ("lora", "top", "full", "frozen")  # engine.models.two_tower.ENCODER_MODES, without importing torch to parse
METRIC_LABELS = {"ndcg@10": "NDCG@10", "hr@10": "HR@10", "recall@12": "Recall@12", "map@12": "MAP@12"}


def _minutes(text: str) -> float:
    """argparse type: a finite number of minutes above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def register(sub) -> None:
    """Add ``homepage update`` to the command line's subparsers."""
    p = sub.add_parser(
        "update", help="fine-tune a trained model on page feedback (clicks, purchases): a cheap update",
        description="Warm-starts from --model, fine-tunes LoRA adapters of the encoder's top layer and the towers on the "
                    "feedback's clicks and purchases (after each user's history, with a replay sample of old "
                    "histories) and writes a new model directory; prints held-out test metrics before and after.",
    )
    p.add_argument("dir", type=Path)
    p.add_argument("--model", type=Path, required=True, help="the trained model to start from (trained on DIR)")
    p.add_argument("--feedback", type=Path, required=True, help="feedback table (.csv or .parquet; `homepage simulate` writes one)")
    p.add_argument("--since", help="only feedback shown at or after this ISO date/datetime")
    p.add_argument("--out", type=Path, required=True, help="the new model directory (its manifest names --model as parent)")
    p.add_argument("--mode", choices=MODES, default="lora", help="encoder fine-tuning of the update (default: LoRA adapters)")
    p.add_argument("--max-minutes", type=_minutes, default=5.0, help="budget of the update (default 5)")
    p.add_argument("--epochs", type=int_at_least(1, "--epochs"), default=2, help="epochs of fine-tuning (default 2)")
    p.add_argument("--replay", type=unit_interval, default=0.2, help="share of old users' histories mixed into each pass (default 0.2)")
    p.add_argument("--drop-unknown", action="store_true", help="drop interactions naming items missing from the catalogue (as DIR's model was trained)")
    p.set_defaults(func=cmd_update)


def _check_out(args) -> None:
    """Refuse, before any work, an --out that cannot be written or that is the parent model itself."""
    from engine.core.files import check_output_file

    if args.out.is_file():
        raise NotADirectoryError(f"{args.out}: is a file; --out names a model directory")
    if args.out.resolve() == args.model.resolve():
        raise DataError(f"--out {args.out} is the model being updated; write the update to a new directory")
    check_output_file(args.out / "manifest.json")


def metrics_table(rows: list[tuple[str, dict]], title: str) -> str:
    """A small aligned table: one line per model, the columns of ``METRIC_LABELS``.

    Args:
        rows: (label, metrics) per line.
        title: the header's first cell.

    Returns:
        The table's lines joined by newlines.
    """
    width = max(len(title), *(len(label) for label, _ in rows))
    lines = [f"{title:<{width}}  " + "  ".join(f"{name:>9}" for name in METRIC_LABELS.values())]
    for label, metrics in rows:
        cells = [metrics.get(key) for key in METRIC_LABELS]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{v:>9.4f}" if isinstance(v, (int, float)) else f"{'-':>9}" for v in cells))
    return "\n".join(lines)


def cmd_update(args) -> None:
    from engine.cli.common import load_data
    from engine.training.update import UpdateSettings, parse_since, update_model

    _check_out(args)
    parse_since(args.since)  # a bad date fails before anything is read
    data = load_data(args)
    settings = UpdateSettings(feedback=args.feedback, since=args.since, mode=args.mode, epochs=args.epochs,
                              max_minutes=args.max_minutes, replay=args.replay)
    result = update_model(data, args.model, args.out, settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    m = result.manifest
    update, training = m["update"], m["training"]
    if update["mode"] != args.mode:
        print(f"{data.name}: items have no real text: the update trains the towers only (mode {update['mode']})")
    since = f" since {args.since}" if args.since else ""
    print(f"update: {result.new_interactions:,} new interactions of {result.new_users:,} users from {args.feedback}{since}; "
          f"{training['epochs']} epochs, {training['steps']} steps in {update['seconds']:.0f}s (mode {update['mode']}, "
          f"replay {args.replay:g}: {training['replay_sequences_per_pass']:,} old histories a pass; stopped by {training['stopped_by']})")
    if result.parent_manifest.get("final_model") == "two_stage":
        two = result.parent_manifest.get("metrics", {}).get("ndcg@10")
        print(f"{args.model} used two stages (test NDCG@10 {two:.4f} in its manifest); below, the fine-tuned stage 1 of both models"
              if isinstance(two, (int, float)) else f"{args.model} used two stages; below, the fine-tuned stage 1 of both models")
    title = f"held-out test ({m['protocol']}, history {'masked' if m['masked_history'] else 'kept'})"
    print(metrics_table([(f"before  {args.model}", result.before), (f"after   {result.out}", result.after)], title))
    print(f"stage 2: {m['stage2']['reason']}: the page uses {m['final_model']}; model saved to {result.out} (parent {m['parent']})")
