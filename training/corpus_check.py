"""Check hand-written conversations: schema, labels, rationales, ids, balance.

Usage: python -m training.corpus_check FILE.jsonl [FILE ...] [--prefix w6-]
                                       [--min-share 0.25] [--min-voice 0.0]
Exit status 1 when any line is invalid, or when a file (one writer) falls below
the label-balance or voice share asked for, so writers can loop until clean.

A conversation's ``rationale`` names the turns (0-based indexes into ``turns``)
that decide each label whose value is not the default (see ``RATIONALE_DEFAULTS``):
``{"politeness": [4], "resolution": [6], "sentiment": [9]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from pydantic import ValidationError

from kefuqa.contract import LABELS, Conversation

# The value that needs no deciding turn; every other value must name one.
RATIONALE_DEFAULTS: dict[str, str] = {
    "politeness": "good",
    "emotional_control": "good",
    "resolution": "unresolved",
    "sentiment": "neutral",
}
# Whose turns can decide a label: the agent's conduct, the customer's mood.
# A resolution can be carried out by a system turn (a transfer, a refund notice).
RATIONALE_SPEAKERS: dict[str, frozenset[str]] = {
    "politeness": frozenset({"agent"}),
    "emotional_control": frozenset({"agent"}),
    "resolution": frozenset({"agent", "system"}),
    "sentiment": frozenset({"customer"}),
}


def rationale_problems(conv: Conversation) -> list[str]:
    """What is wrong with a labelled conversation's ``rationale`` (empty: fine)."""
    raw = (conv.model_extra or {}).get("rationale")
    assert conv.labels is not None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return ["rationale must be an object {label: [turn indexes]}"]
    problems = [f"rationale: unknown label {k!r}" for k in raw if k not in LABELS]
    for name, default in RATIONALE_DEFAULTS.items():
        value = getattr(conv.labels, name)
        turns = raw.get(name)
        if turns is None or turns == []:
            if value != default:
                problems.append(f"rationale.{name}: {name}={value} needs the deciding turn index(es)")
            continue
        if not isinstance(turns, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in turns):
            problems.append(f"rationale.{name}: must be a list of turn indexes")
            continue
        for i in turns:
            if not 0 <= i < len(conv.turns):
                problems.append(f"rationale.{name}: turn {i} does not exist (0..{len(conv.turns) - 1})")
            elif conv.turns[i].speaker not in RATIONALE_SPEAKERS[name]:
                allowed = "/".join(sorted(RATIONALE_SPEAKERS[name]))
                problems.append(f"rationale.{name}: turn {i} is a {conv.turns[i].speaker} turn, expected {allowed}")
    return problems


def check_files(
    paths: list[Path], prefix: str | None, require_rationale: bool = True
) -> tuple[list[str], dict[Path, list[Conversation]]]:
    errors: list[str] = []
    by_file: dict[Path, list[Conversation]] = {}
    seen: set[str] = set()
    texts: set[str] = set()
    for path in paths:
        convs = by_file.setdefault(path, [])
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
            if require_rationale:
                errors.extend(f"{where}: {p}" for p in rationale_problems(conv))
            convs.append(conv)
    return errors, by_file


def balance(convs: list[Conversation]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, values in LABELS.items():
        counts = Counter(getattr(c.labels, name) for c in convs if c.labels)
        out[name] = {v: counts[v] / max(len(convs), 1) for v in values}
    return out


def report(name: str, convs: list[Conversation], min_share: float, min_voice: float) -> list[str]:
    """Print one writer's (or the whole corpus's) shares; return balance problems."""
    problems: list[str] = []
    print(f"{name}: {len(convs)} conversations")
    for label, shares in balance(convs).items():
        low = [v for v, s in shares.items() if s < min_share]
        flag = f"   <-- below {min_share:.0%}: {', '.join(low)}" if low else ""
        print(f"  {label:18s} " + "  ".join(f"{v}={s:.0%}" for v, s in shares.items()) + flag)
        problems += [f"{name}: {label}={v} below {min_share:.0%}" for v in low]
    channels = Counter(c.channel for c in convs)
    voice = channels["voice"] / max(len(convs), 1)
    print(f"  channels: {dict(channels)}  voice={voice:.0%}  with ts: {sum(1 for c in convs if c.turns[0].ts)}")
    if voice < min_voice:
        problems.append(f"{name}: voice share {voice:.0%} below {min_voice:.0%}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--prefix", help="every id must start with this")
    ap.add_argument("--min-share", type=float, default=0.0,
                    help="each value of each label must reach this share in every file (e.g. 0.25)")
    ap.add_argument("--min-voice", type=float, default=0.0, help="voice share every file must reach")
    ap.add_argument("--no-rationale", action="store_true", help="do not require rationales")
    args = ap.parse_args(argv)
    errors, by_file = check_files(args.files, args.prefix, require_rationale=not args.no_rationale)
    for e in errors:
        print(e)
    problems: list[str] = []
    for path, convs in by_file.items():
        problems += report(str(path), convs, args.min_share, args.min_voice)
    if len(by_file) > 1:
        report("all files", [c for cs in by_file.values() for c in cs], 0.0, 0.0)
    for p in problems:
        print("balance:", p)
    total = sum(len(cs) for cs in by_file.values())
    print(f"{total} valid conversations, {len(errors)} problems, {len(problems)} balance problems")
    return 1 if errors or problems else 0


if __name__ == "__main__":
    sys.exit(main())
