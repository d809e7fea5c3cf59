"""One pass per turn: an Aho–Corasick automaton (pyahocorasick) over all phrases
and exceptions of the rules that apply to a speaker, plus one combined regex for
the few pattern rules. Offsets are into the normalised text, which has the
same length as the text the reviewer sees.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import ahocorasick

from kefuqa.models.rules.schema import Rule
from kefuqa.text.normalize import normalize

_QUOTES = re.compile(r"“[^”]*”|「[^」]*」|『[^』]*』|\"[^\"]*\"|‘[^’]*’|'[^']*'")


@dataclass(frozen=True)
class Hit:
    rule: int  # index into Matcher.rules
    start: int
    end: int


class _SpeakerMatcher:
    def __init__(self, rules: list[Rule], indices: list[int]) -> None:
        entries: dict[str, list[tuple[int, bool]]] = defaultdict(list)
        for idx in indices:
            rule = rules[idx]
            for phrase in rule.phrases:
                entries[normalize(phrase)].append((idx, False))
            for phrase in rule.exceptions:
                entries[normalize(phrase)].append((idx, True))
        self.automaton: ahocorasick.Automaton | None = None
        if entries:
            self.automaton = ahocorasick.Automaton()
            for key, payload in entries.items():
                self.automaton.add_word(key, (len(key), tuple(payload)))
            self.automaton.make_automaton()
        groups = []
        self.group_rule: dict[str, int] = {}
        for idx in indices:
            for j, pattern in enumerate(rules[idx].patterns):
                name = f"r{idx}_{j}"
                groups.append(f"(?P<{name}>{pattern})")
                self.group_rule[name] = idx
        self.regex = re.compile("|".join(groups)) if groups else None
        self.ignore_quoted = {idx for idx in indices if rules[idx].ignore_quoted}

    def match(self, text: str) -> list[Hit]:
        raw: list[Hit] = []
        exceptions: dict[int, list[tuple[int, int]]] = defaultdict(list)
        if self.automaton is not None:
            for end, (length, payload) in self.automaton.iter(text):
                start = end - length + 1
                for idx, is_exception in payload:
                    if is_exception:
                        exceptions[idx].append((start, end + 1))
                    else:
                        raw.append(Hit(idx, start, end + 1))
        if self.regex is not None:
            for m in self.regex.finditer(text):
                if m.lastgroup:
                    raw.append(Hit(self.group_rule[m.lastgroup], m.start(), m.end()))
        if not raw:
            return []
        quoted = [m.span() for m in _QUOTES.finditer(text)] if self.ignore_quoted else []
        kept: list[Hit] = []
        # Longest first so that "我不知道" wins over the "不知道" inside it.
        for hit in sorted(raw, key=lambda h: (h.start, -(h.end - h.start))):
            if any(s < hit.end and hit.start < e for s, e in exceptions.get(hit.rule, ())):
                continue
            if hit.rule in self.ignore_quoted and any(s <= hit.start and hit.end <= e for s, e in quoted):
                continue
            if any(k.rule == hit.rule and k.start < hit.end and hit.start < k.end for k in kept):
                continue
            kept.append(hit)
        return kept


class Matcher:
    """All rules compiled once; ``match(speaker, normalised_text)`` per turn."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self._by_speaker = {
            speaker: _SpeakerMatcher(rules, [i for i, r in enumerate(rules) if speaker in r.speakers])
            for speaker in ("agent", "customer", "system")
        }

    def match(self, speaker: str, text: str) -> list[Hit]:
        return self._by_speaker[speaker].match(text)
