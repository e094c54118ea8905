"""``homepage score``: every user's top-k items to one Parquet file, in one process or through Ray."""

from __future__ import annotations

from pathlib import Path

from engine.cli.common import int_at_least


def register(sub) -> None:
    """Add the ``score`` subcommand to the ``homepage`` subparsers."""
    p = sub.add_parser("score", help="write every user's top-k items to a Parquet file (optionally with Ray workers)")
    p.add_argument("dir", type=Path)
    p.add_argument("--model", type=Path, help="model directory (default: newest under DIR/models)")
    p.add_argument("--k", type=int_at_least(1, "--k"), default=100, help="items per user")
    p.add_argument("--out", type=Path, required=True, help="the Parquet file to write (one row per user and rank)")
    p.add_argument("--workers", type=int_at_least(0, "--workers"), default=0,
                   help="Ray Data workers (0: one process, no Ray); joins the cluster RAY_ADDRESS names, if any")
    p.add_argument("--keep-history", action="store_true", help="do not mask items already in a user's history")
    p.add_argument("--limit", type=int_at_least(1, "--limit"), default=None,
                   help="score only the first N users (a throughput measurement); default: every user")
    p.set_defaults(func=cmd_score)


def cmd_score(args) -> None:
    """Score every user and print a one-line summary."""
    from engine.core.files import check_output_file
    from engine.scale.score import score_users

    check_output_file(args.out)
    s = score_users(args.dir, args.model, args.k, args.out, workers=args.workers, mask_history=not args.keep_history,
                    limit=args.limit)
    print(f"scored {s['users']:,} users (k={s['k']}) in {s['seconds']:.1f}s, {s['users_per_second']:,.0f} users/s, "
          f"{_workers(s['workers'])} -> {s['out']}")


def _workers(n: int) -> str:
    return "one process, no Ray" if not n else f"{n} Ray worker{'s' if n > 1 else ''}"
