"""Check hand-written training conversations: schema, labels, ids, balance.

Usage: python -m training.corpus_check FILE.jsonl [FILE ...] [--prefix h1-]
Exit status 1 when any line is invalid, so writers can loop until clean.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from pydantic import ValidationError

from kefuqa.contract import LABELS, Conversation


def check_files(paths: list[Path], prefix: str | None) -> tuple[list[str], list[Conversation]]:
    errors: list[str] = []
    convs: list[Conversation] = []
    seen: set[str] = set()
    texts: set[str] = set()
    for path in paths:
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path}:{line_no}"
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{where}: bad JSON: {exc}")
                continue
            try:
                conv = Conversation.model_validate(obj)
            except ValidationError as exc:
                errors.append(f"{where}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
                continue
            if conv.labels is None:
                errors.append(f"{where}: missing labels")
                continue
            if prefix and not conv.id.startswith(prefix):
                errors.append(f"{where}: id {conv.id!r} does not start with {prefix!r}")
            if conv.id in seen:
                errors.append(f"{where}: duplicate id {conv.id!r}")
            seen.add(conv.id)
            speakers = {t.speaker for t in conv.turns}
            if not {"agent", "customer"} <= speakers:
                errors.append(f"{where}: needs at least one agent and one customer turn")
            body = "\n".join(t.text for t in conv.turns)
            if body in texts:
                errors.append(f"{where}: same turns as an earlier conversation")
            texts.add(body)
            convs.append(conv)
    return errors, convs


def balance(convs: list[Conversation]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, values in LABELS.items():
        counts = Counter(getattr(c.labels, name) for c in convs if c.labels)
        out[name] = {v: counts[v] / max(len(convs), 1) for v in values}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--prefix", help="every id must start with this")
    args = ap.parse_args(argv)
    errors, convs = check_files(args.files, args.prefix)
    for e in errors:
        print(e)
    print(f"{len(convs)} valid conversations, {len(errors)} problems")
    for name, shares in balance(convs).items():
        low = [v for v, s in shares.items() if s < 0.2]
        flag = f"   <-- below 20%: {', '.join(low)}" if low else ""
        print(f"  {name:18s} " + "  ".join(f"{v}={s:.0%}" for v, s in shares.items()) + flag)
    pairs = Counter((c.labels.politeness, c.labels.resolution) for c in convs if c.labels)
    print("  politeness x resolution:", dict(sorted(pairs.items())))
    channels = Counter(c.channel for c in convs)
    print("  channels:", dict(channels), " with ts:", sum(1 for c in convs if c.turns[0].ts))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
