"""The shared contract: transcript input, label values and the score record.

Every room (models, service, training, labeling, grading) imports these types;
nobody re-declares a label list. Mirrors ../shared/spec/*.md exactly.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LABELS: dict[str, tuple[str, ...]] = {
    "politeness": ("good", "fair", "poor"),
    "emotional_control": ("good", "fair", "poor"),
    "resolution": ("resolved", "escalated", "unresolved"),
    "sentiment": ("positive", "neutral", "negative"),
}
LABEL_NAMES: tuple[str, ...] = tuple(LABELS)

Speaker = Literal["agent", "customer", "system"]
Channel = Literal["chat", "voice"]


# What text normalisation, tokenisers and UTF-8 writers cannot carry: lone UTF-16
# surrogates (legal as JSON \\u escapes) and C0 control characters other than tab and
# line breaks. Rejected at validation, so one such item fails alone, with a reason.
_UNSAFE = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_safe_text(v: str) -> str:
    bad = _UNSAFE.search(v)
    if bad:
        what = "lone surrogate" if "\ud800" <= bad.group() <= "\udfff" else "control character"
        raise ValueError(f"{what} U+{ord(bad.group()):04X} at character {bad.start()}")
    return v


class Turn(BaseModel):
    model_config = ConfigDict(extra="allow")

    speaker: Speaker
    text: str
    ts: datetime | None = None

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("empty text")
        return check_safe_text(v)


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    politeness: Literal["good", "fair", "poor"]
    emotional_control: Literal["good", "fair", "poor"]
    resolution: Literal["resolved", "escalated", "unresolved"]
    sentiment: Literal["positive", "neutral", "negative"]


class Conversation(BaseModel):
    """One transcript (transcript.md). Extra keys are kept and ignored."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    channel: Channel = "chat"
    started_at: datetime | None = None
    turns: list[Turn] = Field(min_length=1)
    labels: Labels | None = None

    @field_validator("id", "agent_id")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be a non-empty string")
        return check_safe_text(v)


class ModelInfo(BaseModel):
    name: str
    version: str


class TurnSentiment(BaseModel):
    index: int
    speaker: Literal["customer"] = "customer"
    sentiment: float = Field(ge=-1.0, le=1.0)


class Evidence(BaseModel):
    turn: int
    start: int
    end: int
    rule: str
    text: str


class Metrics(BaseModel):
    model_config = ConfigDict(extra="allow")

    agent_turns: int
    first_response_s: float | None
    avg_response_s: float | None
    polite_phrase_rate: float
    taboo_hits: int
    # Written by kefu-qa's scorers; optional so records from other tools still load.
    customer_turns: int | None = None
    longest_wait_s: float | None = None
    duration_s: float | None = None


class ScoreRecord(BaseModel):
    """One scored conversation (scores.md). More fields may be added."""

    model_config = ConfigDict(extra="allow")

    id: str
    agent_id: str
    # Added beyond scores.md's minimum so grading can place a record in a period.
    started_at: datetime | None = None
    channel: Channel = "chat"
    model: ModelInfo
    labels: Labels
    probs: dict[str, dict[str, float]]
    turns: list[TurnSentiment]
    evidence: list[Evidence]
    metrics: Metrics
    # Labels a QA reviewer confirmed or corrected; they override ``labels``
    # wherever scores are consumed (grading, exports).
    reviewed_labels: dict[str, str] | None = None

    def effective_labels(self) -> dict[str, str]:
        out = self.labels.model_dump()
        for name, value in (self.reviewed_labels or {}).items():
            if name in LABELS and value in LABELS[name]:
                out[name] = value
        return out

    @field_validator("probs")
    @classmethod
    def _probs_cover_labels(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        if set(v) != set(LABELS):
            raise ValueError(f"probs must cover exactly {sorted(LABELS)}")
        for name, values in LABELS.items():
            if set(v[name]) != set(values):
                raise ValueError(f"probs.{name} must have exactly {list(values)}")
        return v
