"""``kefuqa eval``: score labelled data and report quality per label."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kefuqa.io.readers import InputError, Reject, read_conversations
from kefuqa.models.engine import EngineError, create_engine
from kefuqa.models.rules.schema import RulesFileError
from kefuqa.pipeline import mask_conversation
from kefuqa.settings import load_settings
from kefuqa.text.pii import PiiMasker
from kefuqa.training.evaluation import evaluate_predictions, format_report


def _eval(args: argparse.Namespace) -> int:
    settings = load_settings()
    masker = PiiMasker(settings.pii.enabled, settings.pii.mask_order_numbers)
    convs, skipped = [], 0
    try:
        engine = create_engine(args.engine or settings.engine, rules_file=args.rules or settings.rules_file)
        for path in args.data:
            for _, item in read_conversations(path, settings.limits):
                if isinstance(item, Reject) or item.labels is None:
                    skipped += 1
                    continue
                convs.append(mask_conversation(item, masker))
    except (InputError, EngineError, RulesFileError) as exc:
        print(f"kefuqa eval: {exc}", file=sys.stderr)
        return 2
    if not convs:
        print("kefuqa eval: no labelled conversations in the input (each needs 'labels')", file=sys.stderr)
        return 2
    records = []
    for i in range(0, len(convs), settings.batch_size):
        records.extend(engine.score_batch(convs[i : i + settings.batch_size]))
    reports = evaluate_predictions([c.labels.model_dump() for c in convs], [r["labels"] for r in records])
    if args.json:
        print(json.dumps({"engine": engine.info.model_dump(), "n": len(convs), "skipped": skipped,
                          "labels": {k: v.as_dict() for k, v in reports.items()}}, ensure_ascii=False, indent=2))
    else:
        print(f"engine {engine.info.name} {engine.info.version}: {len(convs)} labelled conversations"
              + (f", {skipped} skipped (invalid or unlabelled)" if skipped else ""))
        print(format_report(reports))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score labelled conversations and report macro-F1 and confusion matrices")
    p.add_argument("data", type=Path, nargs="+", help="labelled conversations (transcript.md with labels)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--engine", choices=["auto", "rules", "neural"])
    p.add_argument("--rules", type=Path, help="user rules file merged over the defaults")
    p.set_defaults(func=_eval)
