"""The ``homepage`` command line: demo data, importers, baselines, training and evaluation."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from engine.core.constants import SEED
from engine.cli.app import cmd_app, cmd_hash_password, split_app_args
from engine.cli.common import add_split_args, baseline_names, ild_text_vectors, load_data, sample_note
from engine.core.errors import DataError, ModelError
from engine.core.files import check_output_file


def cmd_demo(args) -> None:
    from engine.data.demo_store import generate_demo

    start = time.perf_counter()
    out = generate_demo(args.out, seed=args.seed, n_items=args.items, n_users=args.users,
                        log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"demo store written to {out} in {time.perf_counter() - start:.1f}s")


def cmd_import(args) -> None:
    from engine.data.importers import IMPORTERS

    start = time.perf_counter()
    kind = args.kind
    if kind == "hm":
        out = IMPORTERS["hm"](args.src, args.out, transactions=args.transactions, images=not args.no_images, fmt=args.format or "parquet")
    elif kind == "beauty":
        out = IMPORTERS["beauty"](args.src, args.out, fmt=args.format or "csv")
    elif kind == "movielens":
        out = IMPORTERS["movielens"](args.src, args.out, min_rating=args.min_rating, fmt=args.format or "csv")
    else:
        if not args.interactions:
            raise DataError("homepage import csv needs SRC (the items file) and --interactions FILE")
        out = IMPORTERS["csv"](
            args.src, args.interactions, args.out,
            item_col=args.item_col, title_col=args.title_col, user_col=args.user_col, time_col=args.time_col,
            category_col=args.category_col, price_col=args.price_col, image_col=args.image_col, brand_col=args.brand_col,
            users_path=args.users, encoding=args.encoding, fmt=args.format or "csv",
        )
    data = load_data(argparse.Namespace(dir=out))
    print(f"imported {kind}: {data.n_items:,} items, {data.n_users:,} users, {len(data.interactions):,} interactions -> {out} ({time.perf_counter() - start:.1f}s)")


def cmd_baselines(args) -> None:
    from tqdm import tqdm

    from engine.models.baselines import BASELINES
    from engine.evaluation.heldout import markdown_table, report, evaluate_on_split
    from engine.core.jsonio import write_json
    from engine.data.splits import make_split

    data = load_data(args)
    try:
        split = make_split(data, args.protocol, args.test_days)
    except DataError:
        raise
    except ValueError as exc:  # --test-days longer than the data: a problem of this data set, not a crash
        raise DataError(str(exc)) from exc
    names = args.models or list(BASELINES)
    vectors = ild_text_vectors(data, not args.no_ild)
    with tqdm(total=len(names), desc="baselines", unit="model", file=sys.stderr) as bar:

        def progress(name: str) -> None:
            bar.set_postfix_str(f"{name} done")
            bar.update(1)

        models, _, ctx = evaluate_on_split(split, names, mask_history=not args.keep_history, item_vectors=vectors, progress=progress)
    out = report(data.name, split, ctx, models, mask_history=not args.keep_history)
    print(f"{data.name}: {args.protocol}, {out['n_users']:,} evaluated users{sample_note(out)}, {data.n_items:,} items, history {'kept' if args.keep_history else 'masked'}")
    print(markdown_table(models))
    if args.json:
        write_json(out, args.json)
        print(f"wrote {args.json}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="homepage", description="Homepage Studio: design an e-commerce homepage from a fine-tuned recommender.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="generate the embedded demo store")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--items", type=int, default=3000, help="products (a shop-sized store: up to 100,000)")
    p.add_argument("--users", type=int, default=5000, help="users (a shop-sized store: up to 1,000,000; Parquet above 20,000)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("import", help="import a real data set into the project format")
    p.add_argument("kind", choices=["hm", "beauty", "movielens", "csv"])
    p.add_argument("src", type=Path, help="source folder (hm, beauty, movielens) or the items file (csv)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--format", choices=["csv", "parquet"], default=None)
    p.add_argument("--transactions", choices=["histories", "last_week", "both"], default="histories", help="hm: which transactions file")
    p.add_argument("--no-images", action="store_true", help="hm: do not copy product photos")
    p.add_argument("--min-rating", type=float, default=0, help="movielens: keep ratings at or above this")
    p.add_argument("--interactions", type=Path, help="csv: the interactions file")
    p.add_argument("--users", type=Path, help="csv: an optional users file")
    p.add_argument("--item-col", default="item_id")
    p.add_argument("--title-col", default="title")
    p.add_argument("--user-col", default="user_id")
    p.add_argument("--time-col", default="timestamp")
    p.add_argument("--category-col")
    p.add_argument("--price-col")
    p.add_argument("--image-col")
    p.add_argument("--brand-col")
    p.add_argument("--encoding", default="utf-8")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("baselines", help="tune, fit and evaluate the classical baselines")
    p.add_argument("dir", type=Path)
    add_split_args(p)
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--models", type=baseline_names, help="comma-separated subset of popularity,recent_popularity,item_knn,ease,transition,rebuy")
    p.add_argument("--no-ild", action="store_true", help="skip encoding item text for intra-list diversity")
    p.add_argument("--encoding", default="utf-8")
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser(
        "app", help="run the dashboard on a data directory (default: the demo store)",
        description="homepage app [DIR] [streamlit options...]: options after DIR go to `streamlit run`, e.g. --server.port 8601",
    )
    p.add_argument("dir", nargs="?", help="data directory (default: data/demo, generated when missing)")
    p.add_argument("streamlit_args", nargs=argparse.REMAINDER, help="passed to streamlit run")
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("hash-password", help="print the hash of a password for HOMEPAGE_PASSWORD_HASH (the app's login)")
    p.set_defaults(func=cmd_hash_password)

    _add_model_commands(sub)
    return parser


def _add_model_commands(sub) -> None:
    """train, evaluate, recommend (engine.cli.model); update (engine.cli.update); segments, layout, compare (engine.cli.layout); simulate (engine.cli.loop)."""
    from engine.cli import layout, loop, model, scale, update

    model.register(sub, add_split_args)
    update.register(sub)
    layout.register(sub, add_split_args)
    scale.register(sub)
    loop.register(sub)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["app"] and not set(argv[1:2]) & {"-h", "--help"}:
        # Streamlit's options (--server.port 8601) are not ours: split them off by hand, since
        # argparse would take "8601" for DIR when DIR is left out.
        data_dir, rest = split_app_args(argv[1:])
        args = argparse.Namespace(command="app", dir=data_dir, streamlit_args=rest, func=cmd_app)
    else:
        args = build_parser().parse_args(argv)
    try:
        check_outputs(args)
        code = args.func(args)
    except (DataError, ModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: a short line, the traceback only on request
        if os.environ.get("HOMEPAGE_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set HOMEPAGE_DEBUG=1 to see where)", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0


def check_outputs(args) -> None:
    """Refuse, before any work, an output path that cannot be written (a directory, a path under a
    file, a read-only folder)."""
    for name in ("json", "csv"):
        if getattr(args, name, None):
            check_output_file(getattr(args, name))
    if getattr(args, "command", None) == "train" and getattr(args, "out", None):
        if Path(args.out).is_file():
            raise NotADirectoryError(f"{args.out}: is a file; --out names a model directory")
        check_output_file(Path(args.out) / "manifest.json")


if __name__ == "__main__":
    sys.exit(main())
