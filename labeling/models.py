"""The review store's tables (SQLAlchemy 2 typed ORM).

The schema itself is created and changed only by the Alembic migrations in
``migrations/versions``; these classes must match them (a test checks).
All times are stored as UTC and come back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

ROLES = ("reviewer", "lead", "admin", "agent")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(100))
    agent_id: Mapped[str | None] = mapped_column(String(100), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class LoginSession(Base):
    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Team(Base):
    __tablename__ = "teams"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    restricted: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(100))


class StoredConversation(Base):
    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(100), index=True)
    team: Mapped[str | None] = mapped_column(String(100), index=True)
    channel: Mapped[str] = mapped_column(String(10), default="chat")
    started_at: Mapped[datetime | None]
    turns: Mapped[list[Any]]  # PII-masked: [{speaker, text, ts}]
    imported_at: Mapped[datetime]


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("conversation_id", "model_name", "model_version", name="uq_prediction_model"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))
    labels: Mapped[dict[str, Any]]
    probs: Mapped[dict[str, Any]]
    record: Mapped[dict[str, Any]]  # the whole score record (scores.md), masked
    confidence: Mapped[float] = mapped_column(Float)  # min over labels of the top probability
    created_at: Mapped[datetime]


class ReviewTask(Base):
    __tablename__ = "review_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), unique=True)
    reason: Mapped[str] = mapped_column(String(16))  # uncertain | sample | dispute | import
    priority: Mapped[float] = mapped_column(Float, default=0.0)  # uncertainty, higher first
    double: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)  # open | done
    version: Mapped[int] = mapped_column(Integer, default=1)
    final_labels: Mapped[dict[str, Any] | None]
    final_source: Mapped[str | None] = mapped_column(String(16))  # review | adjudication | dispute | label_studio
    final_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    final_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("review_tasks.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id", ondelete="SET NULL"))
    labels: Mapped[dict[str, Any]]
    comment: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default="review")
    lead_time: Mapped[float | None] = mapped_column(Float)
    source_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (Index("uq_disputes_conversation", "conversation_id", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    agent_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    requested_labels: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(12), index=True)  # open | answered | escalated | final
    level: Mapped[int] = mapped_column(Integer, default=1)
    filed_at: Mapped[datetime]
    due_at: Mapped[datetime]
    escalate_until: Mapped[datetime | None]
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)


class DisputeAnswer(Base):
    __tablename__ = "dispute_answers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(12))  # upheld (score stands) | overturned (labels changed)
    answer: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any] | None]
    at: Mapped[datetime]


class AuditEntry(Base):
    """Append-only: the code has no update or delete path, triggers refuse them, and each
    row's ``hash`` chains it to the one before (see ``audit``)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"), Index("uq_audit_log_hash", "hash", unique=True))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class GradeAppeal(Base):
    """An agent's appeal against their grade for a period (绩效申诉); one per agent and period,
    the re-appeal is its second level. ``due_at`` is the deadline of the step it waits for."""

    __tablename__ = "grade_appeals"
    __table_args__ = (UniqueConstraint("agent_user_id", "period", name="uq_grade_appeal_period"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    agent_id: Mapped[str] = mapped_column(String(100), index=True)
    team: Mapped[str | None] = mapped_column(String(100), index=True)
    period: Mapped[str] = mapped_column(String(10), index=True)  # 2026-11 | 2026-Q4 | 2026
    grade: Mapped[str] = mapped_column(String(16))  # the grade appealed against
    score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    # filed | acknowledged | decided | notified | reappealed | final
    status: Mapped[str] = mapped_column(String(12), index=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    due_at: Mapped[datetime | None]
    reappeal_until: Mapped[datetime | None]
    final_grade: Mapped[str | None] = mapped_column(String(16))  # the grade that stands after the last decision
    filed_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)


class GradeAppealStep(Base):
    """One step of an appeal's timeline, with the deadline it had."""

    __tablename__ = "grade_appeal_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("grade_appeals.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(16))  # filed | acknowledged | decided | notified | reappealed
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(12))  # decided: upheld | overturned
    new_grade: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")


class EvidenceMark(Base):
    """A reviewer's verdict on one evidence chip (scores.md ``evidence``): the rule hit is right or wrong."""

    __tablename__ = "evidence_marks"
    __table_args__ = (UniqueConstraint("conversation_id", "reviewer_id", "rule", "turn", "start", "end",
                                       name="uq_evidence_mark"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    turn: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id", ondelete="SET NULL"))
    rule: Mapped[str] = mapped_column(String(100), index=True)
    verdict: Mapped[str] = mapped_column(String(8))  # right | wrong
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MissedSpan(Base):
    """A span a reviewer says should have been evidence for ``label`` but was not."""

    __tablename__ = "missed_spans"
    __table_args__ = (UniqueConstraint("conversation_id", "reviewer_id", "label", "turn", "start", "end",
                                       name="uq_missed_span"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    turn: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime]


class SpeakerFix(Base):
    """A reviewer's answer on who said one turn of a call: ``speaker`` as they hear it,
    ``original`` as the transcript has it (speaker_fixes.py)."""

    __tablename__ = "speaker_fixes"
    __table_args__ = (UniqueConstraint("conversation_id", "reviewer_id", "turn", name="uq_speaker_fix"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    turn: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(10))  # agent | customer
    original: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
