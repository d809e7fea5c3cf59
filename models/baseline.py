"""The ``rules`` engine: score records from rule hits, metrics and a sentiment
lexicon. It is the floor every learned model must beat, and its evidence and
metrics are reused by the neural engine.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kefuqa.contract import Conversation, ModelInfo
from kefuqa.models.record import build_record
from kefuqa.models.rules.matcher import Hit, Matcher
from kefuqa.models.rules.schema import default_rules_text, load_rules
from kefuqa.models.sentiment import turn_sentiment
from kefuqa.text.normalize import normalize

_HOSTILE_KINDS = {"blame", "sarcasm", "threat", "rhetorical", "rude", "impatience"}
# Per-turn feature columns handed to the neural engine (order is part of a model).
TURN_FEATURES = (
    "greeting", "address", "please", "thanks", "apology", "closing", "taboo", "hostile", "empathy",
    "resolved", "escalated", "unresolved", "customer_pos", "customer_neg", "customer_neutral", "lexicon",
)
_COLUMN = {name: i for i, name in enumerate(TURN_FEATURES)}
_POLARITY = {"customer_pos": 1, "customer_neg": -1, "customer_neutral": 0}


@dataclass
class Features:
    """What the rules saw in one conversation; also model input for the neural engine."""

    agent_turns: int = 0
    customer_turns: int = 0
    polite_turns: int = 0
    polite_kinds: set[str] = field(default_factory=set)
    taboo: int = 0
    hostile: int = 0
    empathy: int = 0
    resolved: float = 0.0
    escalated: float = 0.0
    unresolved: float = 0.0
    customer_scores: list[tuple[int, float]] = field(default_factory=list)
    last_customer_resigned: bool = False
    evidence: list[dict[str, Any]] = field(default_factory=list)
    per_turn: list[list[float]] = field(default_factory=list)  # TURN_FEATURES per turn

    @property
    def polite_rate(self) -> float:
        return round(self.polite_turns / self.agent_turns, 4) if self.agent_turns else 0.0


def _softmax(logits: dict[str, float]) -> dict[str, float]:
    top = max(logits.values())
    exp = {k: math.exp(v - top) for k, v in logits.items()}
    total = sum(exp.values())
    return {k: round(v / total, 4) for k, v in exp.items()}


class RulesEngine:
    def __init__(self, rules_file: Path | None = None) -> None:
        self.rules = load_rules(rules_file)
        self.matcher = Matcher(self.rules)
        digest = hashlib.sha256(default_rules_text().encode())
        if rules_file is not None:
            digest.update(Path(rules_file).read_bytes())
        self.info = ModelInfo(name="kefu-rules", version=f"1.{digest.hexdigest()[:8]}")

    # ------------------------------------------------------------ features
    def features(self, conv: Conversation) -> Features:
        f = Features()
        n_turns = len(conv.turns)
        for i, turn in enumerate(conv.turns):
            text = normalize(turn.text)
            hits = self.matcher.match(turn.speaker, text)
            late = 1.0 + i / max(n_turns - 1, 1)  # later cues weigh more for resolution
            cues: list[tuple[Hit, int]] = []
            polite_here = False
            row = [0.0] * len(TURN_FEATURES)
            f.per_turn.append(row)
            for hit in hits:
                rule = self.rules[hit.rule]
                if rule.category == "polite" and rule.kind in _COLUMN:
                    row[_COLUMN[rule.kind]] += 1
                elif rule.category in _COLUMN:
                    row[_COLUMN[rule.category]] += 1
                if rule.category == "taboo" and rule.kind in _HOSTILE_KINDS:
                    row[_COLUMN["hostile"]] += 1
                f.evidence.append(
                    {"turn": i, "start": hit.start, "end": hit.end, "rule": rule.id,
                     "text": turn.text[hit.start : hit.end]}
                )
                cat = rule.category
                if cat == "polite":
                    polite_here = True
                    f.polite_kinds.add(rule.kind)
                elif cat == "taboo":
                    f.taboo += 1
                    f.hostile += rule.kind in _HOSTILE_KINDS
                    if rule.kind in ("refusal", "shirking"):
                        f.unresolved += 0.5 * late
                elif cat == "empathy":
                    f.empathy += 1
                elif cat in ("resolved", "escalated", "unresolved"):
                    setattr(f, cat, getattr(f, cat) + rule.weight * late)
                elif cat in _POLARITY:
                    cues.append((hit, _POLARITY[cat]))
            if turn.speaker == "agent":
                f.agent_turns += 1
                f.polite_turns += polite_here
            elif turn.speaker == "customer":
                f.customer_turns += 1
                f.customer_scores.append((i, turn_sentiment(text, cues)))
                row[_COLUMN["lexicon"]] = f.customer_scores[-1][1]
                f.last_customer_resigned = any(p == 0 for _, p in cues) and not any(p < 0 for _, p in cues)
        return f

    # ------------------------------------------------------------ labels
    @staticmethod
    def label_probs(f: Features) -> dict[str, dict[str, float]]:
        covered = len(f.polite_kinds & {"greeting", "closing", "address"}) + bool(
            f.polite_kinds & {"thanks", "apology", "please"}
        )
        if f.taboo:
            politeness = {"good": -2.0, "fair": -0.5, "poor": 1.5 + 0.5 * f.taboo}
        else:
            politeness = {"good": 2.0 * f.polite_rate + 0.6 * covered - 2.6, "fair": 0.0, "poor": -3.0}

        upset = any(s < -0.3 for _, s in f.customer_scores)
        good = 0.8 * min(f.empathy, 3) + 1.5 * f.polite_rate - 1.0 - (1.0 if upset and not f.empathy else 0.0)
        emotional = {"good": good, "fair": 0.0, "poor": 2.2 * f.hostile + 0.7 * (f.taboo - f.hostile) - 1.2}

        end = f.customer_scores[-1][1] if f.customer_scores else 0.0
        resolution = {
            "resolved": 1.1 * f.resolved - 0.4 + 0.8 * max(end, 0),
            "escalated": 1.1 * f.escalated - 0.6,
            "unresolved": 1.0 * f.unresolved - 0.2 + 0.8 * max(-end, 0),
        }

        scores = [s for _, s in f.customer_scores[-2:]]
        s = 0.75 * scores[-1] + 0.25 * scores[0] if len(scores) == 2 else (scores[0] if scores else 0.0)
        sentiment = {
            "positive": 5.0 * (s - 0.15),
            "neutral": 0.6 * f.last_customer_resigned,
            "negative": 5.0 * (-s - 0.15),
        }
        return {
            "politeness": _softmax(politeness),
            "emotional_control": _softmax(emotional),
            "resolution": _softmax(resolution),
            "sentiment": _softmax(sentiment),
        }

    # ------------------------------------------------------------ records
    def score(self, conv: Conversation) -> dict[str, Any]:
        f = self.features(conv)
        return build_record(conv, self.info, self.label_probs(f), f.customer_scores, f.evidence, f)

    def score_batch(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
        return [self.score(c) for c in conversations]


