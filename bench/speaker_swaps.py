"""The speaker-role check on calls with planted speaker swaps (docs/phone-calls.md).

The calls are the voice conversations the role check never trained on: the outside
writers (x1–x3) and the fixed test split of the hand-written corpus. In each, one or two
agent or customer turns, drawn at random, are given to the other speaker, as a diariser
that mixes up the two sides does. Every engine scores each call four times:

- original, by the bare engine (what it would give without the swaps);
- swapped, by the bare engine (flags ignored: the swapped turns count against their new speaker);
- swapped, with the phone-call steps (flags honoured: flagged turns scored as said by the likely speaker);
- original, with the phone-call steps (what false flags on clean calls change).

It prints the flag's precision and recall (all swaps, and by the length of the swapped
turn), false flags on clean calls, and how many labels change when flags are honoured.

    KEFUQA_HOME=.kefuqa python bench/speaker_swaps.py [--engine rules neural] [--seed 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kefuqa.contract import LABELS, Conversation
from kefuqa.models.baseline import RulesEngine
from kefuqa.models.call_engine import with_calls
from kefuqa.models.speaker_roles import speaker_turns
from kefuqa.pipeline import mask_conversation
from kefuqa.text.pii import PiiMasker
from kefuqa.training.dataset import hand_files, load_corpus, load_split_ids, outside_files

LENGTHS = ((0, 4, "≤ 4 chars"), (5, 10, "5–10 chars"), (11, 10_000, "> 10 chars"))


def calls() -> list[Conversation]:
    test_ids = set(load_split_ids())
    outside = [c for c in load_corpus(outside_files()) if c.channel == "voice"]
    test = [c for c in load_corpus(hand_files()) if c.channel == "voice" and c.id in test_ids]
    return [mask_conversation(c, PiiMasker()) for c in outside + test]


def plant(conv: Conversation, rng: random.Random) -> tuple[Conversation, set[int]]:
    """``conv`` with one or two speaker turns given to the other speaker, and which."""
    idx = speaker_turns(conv)
    chosen = set(rng.sample(idx, min(len(idx), rng.choice((1, 2)))))
    turns = [t.model_copy(update={"speaker": "customer" if t.speaker == "agent" else "agent"}) if i in chosen else t
             for i, t in enumerate(conv.turns)]
    return conv.model_copy(update={"turns": turns}), chosen


def score(engine: Any, convs: list[Conversation], batch: int = 32) -> list[dict[str, Any]]:
    return [r for i in range(0, len(convs), batch) for r in engine.score_batch(convs[i : i + batch])]


def flag_quality(swapped: list[Conversation], planted: list[set[int]], records: list[dict[str, Any]]) -> dict[str, Any]:
    tp = fp = 0
    by_length: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for conv, truth, rec in zip(swapped, planted, records):
        flagged = {f["turn"] for f in rec["role_flags"]}
        tp += len(flagged & truth)
        fp += len(flagged - truth)
        for i in truth:
            n = len("".join(conv.turns[i].text.split()))
            name = next(label for lo, hi, label in LENGTHS if lo <= n <= hi)
            by_length[name] += 1
            found[name] += i in flagged
    swaps = sum(len(t) for t in planted)
    return {"swaps": swaps, "flags": tp + fp, "true_flags": tp,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None, "recall": round(tp / swaps, 4),
            "recall_by_length": {k: {"swaps": by_length[k], "recall": round(found[k] / by_length[k], 4)}
                                 for _, _, k in LENGTHS if by_length[k]}}


def label_changes(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, int]:
    out = {n: sum(x["labels"][n] != y["labels"][n] for x, y in zip(a, b)) for n in LABELS}
    return {**out, "total": sum(out.values())}


def honoured_effect(orig: list[dict[str, Any]], ignored: list[dict[str, Any]],
                    honoured: list[dict[str, Any]]) -> dict[str, int]:
    """Labels that change when flags are honoured: back to the unswapped call's label, or away."""
    back = away = other = 0
    for o, i, h in zip(orig, ignored, honoured):
        for n in LABELS:
            if i["labels"][n] == h["labels"][n]:
                continue
            if h["labels"][n] == o["labels"][n]:
                back += 1
            elif i["labels"][n] == o["labels"][n]:
                away += 1
            else:
                other += 1
    return {"changed": back + away + other, "back_to_unswapped": back, "away_from_unswapped": away,
            "to_a_third_value": other}


def gold_agreement(convs: list[Conversation], records: list[dict[str, Any]]) -> float:
    hits = sum(r["labels"][n] == getattr(c.labels, n) for c, r in zip(convs, records) for n in LABELS)
    return round(hits / (len(convs) * len(LABELS)), 4)


def memoised(embed: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """``embed`` remembering each call's answer. A swap changes speakers, not texts, and the
    role check embeds a call's texts as the engine does: each call is embedded once over the
    four passes, with the vectors every pass would have computed."""
    table: dict[tuple[str, ...], Any] = {}

    def call(texts: list[str]) -> Any:
        key = tuple(texts)
        if key not in table:
            table[key] = embed(texts)
        return table[key]
    return call


def engine_named(name: str, home: Path) -> Any:
    if name == "rules":
        return RulesEngine()
    from kefuqa.models.neural import load_default_engine

    engine = load_default_engine(home=home)
    engine.embed = memoised(engine.embed)
    return engine


def run(name: str, home: Path, originals: list[Conversation], swapped: list[Conversation],
        planted: list[set[int]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    bare = engine_named(name, home)
    wrapped = with_calls(bare, home=home)
    orig, ignored = score(bare, originals), score(bare, swapped)
    honoured, clean = score(wrapped, swapped), score(wrapped, originals)
    clean_flags = sum(len(r["role_flags"]) for r in clean)
    return {
        "engine": name, "model": bare.info.model_dump(), "calls": len(originals),
        "speaker_turns": sum(len(speaker_turns(c)) for c in originals),
        "flags_on_swapped_calls": flag_quality(swapped, planted, honoured),
        "clean_calls": {"flags": clean_flags, "calls_flagged": sum(bool(r["role_flags"]) for r in clean),
                        "labels_changed": label_changes(orig, clean)},
        "labels": {"changed_by_swaps": label_changes(orig, ignored),
                   "changed_when_flags_honoured": honoured_effect(orig, ignored, honoured),
                   "still_differ_from_unswapped": label_changes(orig, honoured)},
        "gold_agreement": {"original": gold_agreement(originals, orig),
                           "swapped_ignored": gold_agreement(swapped, ignored),
                           "swapped_honoured": gold_agreement(swapped, honoured)},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", nargs="+", choices=("rules", "neural"), default=["rules", "neural"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    home = Path(os.environ.get("KEFUQA_HOME", Path.home() / ".kefuqa"))
    originals = calls()
    rng = random.Random(args.seed)
    pairs = [plant(c, rng) for c in originals]
    swapped, planted = [p[0] for p in pairs], [p[1] for p in pairs]
    print(f"{len(originals)} calls, {sum(len(p) for p in planted)} planted swaps (seed {args.seed})", flush=True)
    results = [run(name, home, originals, swapped, planted) for name in args.engine]
    for r in results:
        print(json.dumps(r, ensure_ascii=False, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
