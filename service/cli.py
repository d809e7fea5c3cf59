"""``kefuqa score``: score an archive from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kefuqa.io.readers import InputError
from kefuqa.models.engine import EngineError, create_engine
from kefuqa.models.rules.schema import RulesFileError
from kefuqa.settings import load_settings
from kefuqa.service.batch import score_file


def _score(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.batch_size:
        settings.batch_size = args.batch_size
    try:
        engine = create_engine(args.engine or settings.engine, rules_file=args.rules or settings.rules_file)
        summary = score_file(args.input, engine, settings, output=args.output, rejects=args.rejects)
    except (InputError, EngineError, RulesFileError) as exc:
        print(f"kefuqa score: {exc}", file=sys.stderr)
        return 2
    print(f"{summary.line()} [engine {engine.info.name} {engine.info.version}]", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score an archive of conversations (JSONL, JSONL.gz, JSON array)")
    p.add_argument("input", type=Path, help="conversations per transcript.md")
    p.add_argument("-o", "--output", type=Path, help="score records, JSON Lines (default: stdout)")
    p.add_argument("--rejects", type=Path, help="invalid inputs with line and reason (default: OUT.rejects.jsonl)")
    p.add_argument("--engine", choices=["auto", "rules", "neural"], help="default: KEFUQA_ENGINE or auto")
    p.add_argument("--rules", type=Path, help="user rules file merged over the defaults")
    p.add_argument("--batch-size", type=int, help="conversations per engine call")
    p.set_defaults(func=_score)
