"""The shared contract: transcript input, label values and the score record.

Every room (models, service, training, labeling, grading) imports these types;
nobody re-declares a label list. Mirrors ../shared/spec/*.md exactly.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

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


def drop_absent_customer(data: Any) -> Any:
    """A dump without ``customer_id`` when there is none, so transcripts and records
    without one serialise exactly as they did before the field existed."""
    return drop_absent(data, ("customer_id",))


def drop_absent(data: Any, keys: tuple[str, ...]) -> Any:
    """A dump without those of ``keys`` that are None: optional fields of the compatible
    extensions (docs/pipeline.md, docs/phone-calls.md) are left out where they do not apply."""
    if isinstance(data, dict):
        for key in keys:
            if key in data and data[key] is None:
                del data[key]
    return data


class Turn(BaseModel):
    model_config = ConfigDict(extra="allow")

    speaker: Speaker
    text: str
    ts: datetime | None = None
    # Beyond transcript.md (a compatible extension, docs/phone-calls.md): when a call turn
    # ends, as ASR gives it; ``ts`` is then when it starts.
    end_ts: datetime | None = None

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("empty text")
        return check_safe_text(v)

    @model_validator(mode="after")
    def _ends_after_start(self) -> Turn:
        if self.ts is not None and self.end_ts is not None:
            if (self.ts.tzinfo is None) != (self.end_ts.tzinfo is None):
                raise ValueError("end_ts and ts must both have a UTC offset or both have none")
            if self.end_ts < self.ts:
                raise ValueError(f"end_ts {self.end_ts.isoformat()} is before ts {self.ts.isoformat()}")
        return self

    # No return annotation: pydantic then publishes the model's own serialisation schema.
    @model_serializer(mode="wrap")
    def _without_absent_end(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), ("end_ts",))


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
    # Beyond transcript.md (a compatible extension, docs/pipeline.md): who the customer
    # is, so grading can find repeat contacts. Scoring replaces it with a keyed pseudonym.
    customer_id: str | None = None

    @field_validator("id", "agent_id")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be a non-empty string")
        return check_safe_text(v)

    @field_validator("customer_id", mode="before")
    @classmethod
    def _customer_id(cls, v: object) -> object:
        # CRMs often number their customers; a blank cell means "not known".
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if isinstance(v, str):
            return check_safe_text(v.strip()) or None
        return v

    # No return annotation: pydantic then publishes the model's own serialisation schema.
    @model_serializer(mode="wrap")
    def _without_absent_customer(self, handler: SerializerFunctionWrapHandler):
        return drop_absent_customer(handler(self))


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


# The call metrics of a voice record's ``metrics`` (docs/phone-calls.md).
CALL_METRICS: tuple[str, ...] = ("silence_share", "longest_silence_s", "overlaps", "interruptions", "talk_ratio",
                                 "hold_events", "holds_unannounced", "holds_unthanked", "hold_etiquette")


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
    # Call metrics (docs/phone-calls.md): voice records only, left out of other records.
    silence_share: float | None = None
    longest_silence_s: float | None = None
    overlaps: int | None = None
    interruptions: int | None = None
    talk_ratio: float | None = None
    hold_events: int | None = None
    holds_unannounced: int | None = None
    holds_unthanked: int | None = None
    hold_etiquette: float | None = None

    # No return annotation: pydantic then publishes the model's own serialisation schema.
    @model_serializer(mode="wrap")
    def _without_call_metrics(self, handler: SerializerFunctionWrapHandler):
        data = handler(self)
        # A voice record always counts its holds; without that count the record is no call.
        return data if data.get("hold_events") is not None else drop_absent(data, CALL_METRICS)


class RoleFlag(BaseModel):
    """A voice turn whose text reads like the other role (docs/phone-calls.md): the scorers
    treat it as said by ``likely_speaker``, with probability ``p``."""

    turn: int = Field(ge=0)
    likely_speaker: Literal["agent", "customer"]
    p: float = Field(ge=0.0, le=1.0)


class ScoreRecord(BaseModel):
    """One scored conversation (scores.md). More fields may be added."""

    model_config = ConfigDict(extra="allow")

    id: str
    agent_id: str
    # Beyond scores.md: the customer's keyed pseudonym (never the raw id), when the
    # transcript named one; grading finds repeat contacts by it.
    customer_id: str | None = None
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
    # Beyond scores.md (docs/phone-calls.md): voice records only, the turns the
    # speaker-role check flagged; absent from chat records.
    role_flags: list[RoleFlag] | None = None

    # No return annotation: pydantic then publishes the model's own serialisation schema.
    @model_serializer(mode="wrap")
    def _without_absent_customer(self, handler: SerializerFunctionWrapHandler):
        return drop_absent(handler(self), ("customer_id", "role_flags"))

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
