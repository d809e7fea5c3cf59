"""``kefuqa review disputes|appeals`` and ``kefuqa rules stats``: read-only reports from the review store."""

from __future__ import annotations

import argparse
import json

from kefuqa.settings import Settings

from .cli_common import CliError, actor, handled, store_engine


def disputes(args: argparse.Namespace, settings: Settings) -> int:
    from .auth import Principal
    from .db import session
    from .disputes import list_disputes

    engine = store_engine(args, settings)
    admin = Principal(0, actor(), "admin", None, None)
    try:
        with session(engine) as s:
            for d in list_disputes(s, admin, args.status, args.overdue, tz=settings.review.timezone):
                print(json.dumps({k: d[k] for k in ("id", "conversation_id", "agent", "status", "level", "due_at",
                                                    "overdue")}, ensure_ascii=False))
    finally:
        engine.dispose()
    return 0


def _appeals(args: argparse.Namespace, settings: Settings) -> int:
    from .appeal_stats import FIELDS, period_stats
    from .auth import Principal
    from .db import session

    engine = store_engine(args, settings)
    admin = Principal(0, actor(), "admin", None, None)
    try:
        with session(engine) as s:
            rows = period_stats(s, admin, settings.review, args.period)
    finally:
        engine.dispose()
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    elif not rows:
        print("no appeals on a period grade" + (f" for {args.period}" if args.period else ""))
    else:
        print("\t".join(FIELDS))
        for row in rows:
            print("\t".join("-" if row[f] is None else str(row[f]) for f in FIELDS))
    return 0



def _rules_stats(args: argparse.Namespace, settings: Settings) -> int:
    from .db import session
    from .rule_precision import format_table, rule_precision

    if args.min_marks < 1:
        raise CliError(f"--min-marks must be 1 or more, not {args.min_marks}")
    engine = store_engine(args, settings)
    try:
        with session(engine) as s:
            report = rule_precision(s, min_marks=args.min_marks)
    finally:
        engine.dispose()
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=1) if args.json else format_table(report))
    return 0


def add_rules_stats(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    """``kefuqa rules stats``. ``kefuqa rules`` is the models room's (``rules check``), which cannot
    read the review store; the store's half joins it here."""
    rules = sub.choices.get("rules") or sub.add_parser("rules", help="work with QA rules files")
    found = [a for a in rules._actions if isinstance(a, argparse._SubParsersAction)]
    actions = found[0] if found else rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    p = actions.add_parser("stats", parents=[db], help="per-rule hits, marked-wrong rate and precision "
                           "(Wilson interval) from reviewers' evidence marks, and the rules to fix first")
    p.add_argument("--min-marks", type=int, default=5, help="marks a rule needs to be ranked (default 5)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=handled(_rules_stats, "kefuqa rules stats"))


def add_appeals(rsub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    """``review appeals``: statistics of the appeals on period grades."""
    p = rsub.add_parser("appeals", parents=[db], help="appeals on a period grade per period: filed, upheld, "
                        "overturned, overdue, median working days to a decision")
    p.add_argument("--period", help="one period: 2026-11, 2026-Q4 or 2026 (default: every period)")
    p.add_argument("--json", action="store_true", help="one JSON object per period")
    p.set_defaults(func=handled(_appeals))
