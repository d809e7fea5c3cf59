"""The audit log: who did what, when, and the state before → after.

Append-only: this module only inserts; the migration adds database triggers
that refuse UPDATE and DELETE on ``audit_log`` (SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEntry
from .workdays import utcnow


def record(s: Session, actor: str, action: str, entity: str, entity_id: object,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           at: datetime | None = None) -> AuditEntry:
    entry = AuditEntry(at=at or utcnow(), actor=actor, action=action, entity=entity, entity_id=str(entity_id),
                       before=before, after=after)
    s.add(entry)
    return entry


def entries(s: Session, entity: str | None = None, entity_id: str | None = None,
            conversation_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Newest first. ``conversation_id`` gathers the conversation's task, reviews and disputes."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity:
        q = q.where(AuditEntry.entity == entity)
    if entity_id is not None:
        q = q.where(AuditEntry.entity_id == str(entity_id))
    if conversation_id is not None:
        q = q.where(AuditEntry.entity == "conversation", AuditEntry.entity_id == conversation_id)
    return [as_dict(e) for e in s.scalars(q)]


def as_dict(e: AuditEntry) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "entity": e.entity,
            "entity_id": e.entity_id, "before": e.before, "after": e.after}
