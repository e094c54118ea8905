"""``homepage segments``, ``layout`` and ``compare``: segments, a segment's homepage and two pages judged."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from engine.cli.common import int_at_least, unit_interval
from engine.core.errors import DataError

_k = int_at_least(2, "k")


def _segment_args(p: argparse.ArgumentParser) -> None:
    from engine.studio.segments import METHODS, SPACES

    p.add_argument("dir", type=Path)
    p.add_argument("--model", type=Path, help="model directory (default: newest under DIR/models)")
    p.add_argument("--k", type=_k, help="number of learned segments (default: chosen by silhouette / BIC in 4..12)")
    p.add_argument("--clustering", choices=METHODS, default="kmeans", help="k-means (k by silhouette) or Gaussian mixture (k by BIC)")
    p.add_argument("--space", choices=SPACES, default="profile", help="user representation that is clustered")
    p.add_argument("--seed", type=int, default=42, help="seed of the clustering")


def _page_args(p: argparse.ArgumentParser) -> None:
    from engine.page.rerank import DIVERSITY_METHODS

    p.add_argument("--segment", required=True, help="segment id (kmeans-1, rule:age-18-25) or name")
    p.add_argument("--diversity", type=unit_interval, default=None, help="0 = pure relevance .. 1 = pure novelty (default 0)")
    p.add_argument("--long-tail", type=unit_interval, default=None, help="xQuAD long-tail weight, 0 = off (default 0)")
    p.add_argument("--diversity-method", choices=DIVERSITY_METHODS, default=None, help="MMR (default) or DPP greedy MAP")
    p.add_argument("--visual", type=unit_interval, default=None, help="colour difference between neighbouring cards, 0 = off (default 0)")
    p.add_argument("--rules", type=Path, help="merchandising rules JSON (exclude, boost, bury, pin)")
    p.add_argument("--settings", type=Path, help="a SETTINGS.json to start from; flags override it")


def register(sub, add_split_args) -> None:
    p = sub.add_parser("segments", help="learned and rule segments of the users, with names and keywords")
    _segment_args(p)
    add_split_args(p, protocol_default=None)
    p.add_argument("--json", type=Path, help="write {\"segments\": [...]} here")
    p.add_argument("--no-rules", action="store_true", help="learned segments only")
    p.set_defaults(func=cmd_segments)

    p = sub.add_parser("layout", help="a segment's homepage, re-ranked and judged on held-out data")
    _segment_args(p)
    _page_args(p)
    add_split_args(p, protocol_default=None)
    p.add_argument("--json", type=Path, required=True, help="write the layout JSON here")
    p.add_argument("--csv", type=Path, help="also write the layout as CSV")
    p.set_defaults(func=cmd_layout)

    p = sub.add_parser("compare", help="two settings of a segment's page, with paired bootstrap intervals")
    _segment_args(p)
    add_split_args(p, protocol_default=None)
    p.add_argument("--segment", required=True, help="segment id or name")
    p.add_argument("--a", type=Path, required=True, help="SETTINGS.json of page A (the baseline)")
    p.add_argument("--b", type=Path, required=True, help="SETTINGS.json of page B")
    p.add_argument("--json", type=Path, help="write the comparison here")
    p.set_defaults(func=cmd_compare)


def user_errors(func):
    """Decorate a command so that bad settings, rules or segment names are reported as the user's input (exit code 2).

    Returns:
        The command, with a ValueError it raises turned into a DataError of the same message
        (DataError and FileNotFoundError pass through unchanged).
    """

    @functools.wraps(func)
    def wrapper(args):
        try:
            return func(args)
        except (DataError, FileNotFoundError):
            raise
        except ValueError as exc:
            raise DataError(str(exc)) from None

    return wrapper


def _studio(args):
    from engine.cli.common import load_data
    from engine.studio.context import load_studio

    data = load_data(args)
    return load_studio(data, args.model, protocol=args.protocol, test_days=args.test_days if args.protocol else None)


def _catalogue(studio, args, rules: bool = True):
    """Every segment of the clustering the command line asks for (see ``segment_catalogue``)."""
    from engine.studio.segments import segment_catalogue

    return segment_catalogue(studio, args.clustering, args.k, space=args.space, rules=rules, random_state=args.seed)


def find_segment(studio, args, key: str):
    """The one segment named by ``key`` (id or name); a ``rule:`` id is found without clustering.

    Args:
        studio: the command's :class:`~engine.studio.context.Studio`.
        args: the parsed command line (clustering, k, space and seed of the learned segments).
        key: a segment id or name.

    Returns:
        The segment.

    Raises:
        ValueError: no segment has that id or name, or it is under the minimum size.
    """
    from engine.studio.segments import segment_catalogue

    if key.strip().lower().startswith("rule:"):
        return segment_catalogue(studio, learned=False).get(key)
    return _catalogue(studio, args).get(key)


@user_errors
def cmd_segments(args) -> None:
    from engine.core.jsonio import write_json

    studio = _studio(args)
    catalogue = _catalogue(studio, args, rules=not args.no_rules)
    seg, segments = catalogue.learned, catalogue.visible
    crit = f"{seg.criterion} {seg.scores[seg.k]:.3f}" if seg.scores else "k given"
    print(f"{studio.data.name}: {len(studio.users):,} users with history; {seg.method} on {seg.space} vectors, k = {seg.k} ({crit})")
    print(f"{'id':<28} {'kind':<8} {'size':>6}  name / keywords / top categories")
    for s in segments:
        print(f"{s.id:<28} {s.kind:<8} {s.size:>6}  {s.name}")
        print(f"{'':<45}keywords: {', '.join(s.keywords) or '-'}; categories: {', '.join(s.top_categories) or '-'}")
    if args.json:
        out = {
            "segments": [s.to_dict() for s in segments],
            "clustering": {"method": seg.method, "space": seg.space, "k": seg.k, "criterion": seg.criterion,
                           "scores": {str(k): v for k, v in seg.scores.items()}},
        }
        write_json(out, args.json)
        print(f"wrote {args.json}")


def _settings(args):
    from engine.page.rerank import Settings, load_rules, load_settings

    settings = load_settings(args.settings) if args.settings else Settings()
    values = settings.to_dict()
    for flag, key in (("diversity", "diversity"), ("long_tail", "long_tail"), ("diversity_method", "method"), ("visual", "visual")):
        if getattr(args, flag) is not None:
            values[key] = getattr(args, flag)
    if args.rules:
        values["rules"] = load_rules(args.rules).to_dict()
    return Settings.from_dict(values, str(args.settings or "settings"))


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


@user_errors
def cmd_layout(args) -> None:
    from engine.page.judge import judged_layout

    studio = _studio(args)
    segment = find_segment(studio, args, args.segment)
    settings = _settings(args)
    layout = judged_layout(studio, segment, settings, mask_history=not args.keep_history)
    print(f"{segment.name} ({segment.id}, {segment.size} users): diversity {settings.diversity:g} ({settings.method}), "
          f"long-tail {settings.long_tail:g}, visual {settings.visual:g}")
    for r, row in enumerate(layout.rows, start=1):
        print(f"row {r}: {row.title}")
        for s, card in enumerate(row.items, start=1):
            badges = f" [{', '.join(card.badges)}]" if card.badges else ""
            print(f"  {s:>2}. {card.title or '(empty)'}{badges}")
    m = layout.metrics
    keys = [k for k in ("ndcg@10", "recall@10", "hr@10", "coverage@10", "tail_share@10", "novelty@10", "ild@10", "avg_price@10") if k in m]
    print(f"held-out ({m.get('n_users', 0)} users): " + ", ".join(f"{k} {_fmt(m[k])}" for k in keys))
    print("timing (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in layout.timing_ms.items()))
    for note in layout.notes:
        print(f"note: {note}")
    layout.to_json(args.json)
    print(f"wrote {args.json}")
    if args.csv:
        layout.to_csv(args.csv)
        print(f"wrote {args.csv}")


@user_errors
def cmd_compare(args) -> None:
    from engine.core.jsonio import write_json
    from engine.page.judge import compare
    from engine.page.rerank import load_settings, rank_segment

    studio = _studio(args)
    segment = find_segment(studio, args, args.segment)
    mask = not args.keep_history
    a = rank_segment(studio, segment, load_settings(args.a))
    b = rank_segment(studio, segment, load_settings(args.b))
    result = compare(studio, segment, a, b, mask_history=mask)
    print(f"{segment.name} ({segment.id}): A = {args.a}, B = {args.b}; {result['n_users']} held-out users")
    print("| metric | A | B | B - A | 95% CI (paired bootstrap) |")
    print("|---|---|---|---|---|")
    for key, e in result["metrics"].items():
        ci = f"[{e['ci95'][0]:+.4f}, {e['ci95'][1]:+.4f}]" if e["ci95"] else "page metric"
        diff = f"{e['diff']:+.4f}" if e["diff"] is not None else "–"
        print(f"| {key} | {_fmt(e['a'])} | {_fmt(e['b'])} | {diff} | {ci} |")
    moved = [i for i in result["items"] if i["change"] != 0]
    print(f"{len(moved)} of {len(result['items'])} items moved, entered or left:")
    for i in moved[:15]:
        where = f"{i['rank_a']} -> {i['rank_b']}" if i["change"] is not None else ("new in B" if i["rank_a"] is None else "only in A")
        print(f"  {i['title']}: {where}")
    if args.json:
        result["settings"] = {"a": a.settings, "b": b.settings}
        write_json(result, args.json)
        print(f"wrote {args.json}")

