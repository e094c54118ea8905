"""``homepage simulate``: a layout's page shown to its segment on the demo store, written as feedback."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import add_split_args, int_at_least, unit_interval
from engine.cli.layout import find_segment, user_errors
from engine.core.errors import DataError

MAX_DAYS = 3650


def register(sub) -> None:
    from engine.studio.segments import METHODS, SPACES

    p = sub.add_parser(
        "simulate", help="show a layout to its segment on the demo store for D days and write the clicks as feedback",
        description="Simulated visitors click by their latent taste (demo store only). The segment is found again "
                    "the way `homepage layout` found it: pass the --model, --k, --clustering, --space, --cluster-seed "
                    "and --protocol the layout was made with (the defaults are the layout command's).",
    )
    p.add_argument("dir", type=Path)
    p.add_argument("--layout", type=Path, required=True, help="a layout JSON written by `homepage layout --json`")
    p.add_argument("--days", type=int_at_least(1, "--days"), required=True, help="days of traffic")
    p.add_argument("--out", type=Path, required=True, help="feedback file to write (.csv or .parquet)")
    p.add_argument("--explore", type=unit_interval, default=0.0, help="share of slots shown to exploration candidates, with propensities (default 0)")
    p.add_argument("--seed", type=int, default=42, help="seed of the simulation")
    p.add_argument("--model", type=Path, help="model directory (default: newest under DIR/models)")
    p.add_argument("--k", type=int_at_least(2, "k"), help="number of learned segments the layout's segment came from")
    p.add_argument("--clustering", choices=METHODS, default="kmeans")
    p.add_argument("--space", choices=SPACES, default="profile")
    p.add_argument("--cluster-seed", type=int, default=42, help="seed of the clustering (the layout command's --seed)")
    add_split_args(p, protocol_default=None)
    p.set_defaults(func=cmd_simulate)


@user_errors
def cmd_simulate(args) -> None:
    from engine.cli.common import load_data
    from engine.core.files import check_output_file
    from engine.data.feedback import FEEDBACK_SUFFIXES, write_feedback
    from engine.page.layout import Layout
    from engine.page.simulate import simulate_segment, user_tastes
    from engine.studio.context import load_studio

    if args.days > MAX_DAYS:
        raise DataError(f"--days must be at most {MAX_DAYS}, got {args.days}")
    if args.out.suffix.lower() not in FEEDBACK_SUFFIXES:
        raise DataError(f"{args.out}: the feedback file must end in .csv or .parquet")
    check_output_file(args.out)
    layout = Layout.from_json(args.layout)
    data = load_data(args)
    user_tastes(data)  # before the model loads: only the demo store has tastes
    seg_id = layout.segment.get("id") if isinstance(layout.segment, dict) else None
    if not seg_id:
        raise DataError(f"{args.layout}: the layout names no segment id")
    studio = load_studio(data, args.model, protocol=args.protocol, test_days=args.test_days if args.protocol else None,
                         text=args.space == "blend", images=False)
    segment = find_segment(studio, argparse.Namespace(**{**vars(args), "seed": args.cluster_seed}), seg_id)
    size = layout.segment.get("size")
    if size is not None and size != segment.size:
        raise DataError(f"{args.layout}: segment {seg_id} has {segment.size} members now but had {size} when the layout was made; "
                        f"pass the --model, --k, --clustering, --space, --cluster-seed (layout's --seed) and --protocol it was made with")
    feedback, summary = simulate_segment(studio, segment, layout, days=args.days, explore=args.explore, seed=args.seed,
                                         source=str(args.layout))
    if feedback.empty:
        raise DataError(f"no member of {segment.id} visited in {args.days} day(s): nothing to write; simulate more days")
    write_feedback(feedback, args.out)
    print(f"{segment.name} ({segment.id}, {summary['members']} members), layout {summary['layout_id']}: {args.days} days, "
          f"explore {args.explore:g}, seed {args.seed}")
    print(f"{summary['views']:,} page views, {summary['impressions']:,} cards shown, {summary['clicks']:,} clicks "
          f"({summary['click_rate']:.4f} a card; expected for the page as laid out {summary['true_click_rate']:.4f}), "
          f"{summary['purchases']:,} purchases")
    print(f"wrote {args.out}")
