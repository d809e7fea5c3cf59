"""``kefuqa rules check FILE``: validate a user rules file."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from kefuqa.models.rules.schema import RulesFileError, check_rules_file


def _check(args: argparse.Namespace) -> int:
    try:
        rules = check_rules_file(args.file)
    except RulesFileError as exc:
        print(f"kefuqa rules check: {exc}", file=sys.stderr)
        return 2
    by_cat = Counter(r.category for r in rules)
    phrases = sum(len(r.phrases) + len(r.patterns) for r in rules if r.category == "taboo")
    print(f"{args.file}: OK — {len(rules)} rules after merging with the defaults "
          f"({', '.join(f'{k} {v}' for k, v in sorted(by_cat.items()))}; {phrases} taboo phrases)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    rules = sub.add_parser("rules", help="work with QA rules files")
    rsub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    check = rsub.add_parser("check", help="validate a rules file (merged over the defaults)")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_check)
