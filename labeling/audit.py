"""The audit log: who did what, when, and the state before → after.

Append-only: this module only inserts; the migrations add database triggers that
refuse UPDATE and DELETE on ``audit_log`` (SQLite and PostgreSQL) and TRUNCATE
(PostgreSQL), and ``grants_sql`` gives the grants that refuse them to the
application's role. Each row also carries tamper evidence: ``hash`` is the SHA-256
of the row's content and of the previous row's hash (``prev_hash``), so editing,
deleting or inserting a row anywhere but at the end breaks the chain, and
``verify`` names the first broken link.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .models import AuditEntry
from .workdays import utcnow

GENESIS = "0" * 64  # the prev_hash of the first row
# Held for the rest of the transaction while a row is chained, so two writers on
# PostgreSQL never chain onto the same previous row (SQLite writers are serialised).
_CHAIN_LOCK = 0x6B65667571610001


def entry_hash(prev_hash: str, at: datetime, actor: str, action: str, entity: str, entity_id: str,
               before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """The chain hash of one row: stable across databases (UTC time to the microsecond,
    JSON with sorted keys)."""
    when = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    body = json.dumps([prev_hash, when, actor, action, entity, entity_id, before, after],
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def _row_hash(e: AuditEntry, prev_hash: str) -> str:
    return entry_hash(prev_hash, e.at, e.actor, e.action, e.entity, e.entity_id, e.before, e.after)


def record(s: Session, actor: str, action: str, entity: str, entity_id: object,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           at: datetime | None = None) -> AuditEntry:
    bind = s.get_bind()
    if bind.dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    prev = s.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)) or GENESIS
    entry = AuditEntry(at=at or utcnow(), actor=actor, action=action, entity=entity, entity_id=str(entity_id),
                       before=before, after=after, prev_hash=prev)
    entry.hash = _row_hash(entry, prev)
    s.add(entry)
    s.flush()  # the next row in this transaction chains onto this one
    return entry


@dataclass(frozen=True)
class ChainCheck:
    rows: int
    head: str  # the last row's hash: keep it elsewhere to detect a cut-off tail
    broken_at: int | None = None  # id of the first row whose link does not hold
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def check_chain(rows: Iterable[AuditEntry]) -> ChainCheck:
    prev, count = GENESIS, 0
    for e in rows:
        count += 1
        if e.prev_hash != prev:
            return ChainCheck(count, prev, e.id, "its prev_hash is not the previous row's hash "
                              "(a row before it was deleted, or it was inserted)")
        if e.hash != _row_hash(e, prev):
            return ChainCheck(count, prev, e.id, "its content does not match its hash (the row was changed)")
        prev = e.hash
    return ChainCheck(count, prev)


def verify(s: Session, page: int = 1000) -> ChainCheck:
    """Walk the whole log in order and report the first broken link."""
    return check_chain(_in_order(s, page))


def _in_order(s: Session, page: int) -> Iterator[AuditEntry]:
    """Every row by id, a page at a time (memory stays flat on a long log)."""
    last = None
    while True:
        q = select(AuditEntry).order_by(AuditEntry.id).limit(page)
        rows = s.scalars(q if last is None else q.where(AuditEntry.id > last)).all()
        yield from rows
        if len(rows) < page:
            return
        last = rows[-1].id
        s.expunge_all()


_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def grants_sql(role: str, schema: str = "public") -> str:
    """PostgreSQL grants for the application's role: everything the app needs, but
    no UPDATE, DELETE or TRUNCATE on the audit log. Run as the store's owner after
    ``kefuqa review init-db``; the app then connects as ``role``."""
    for what, name in (("role", role), ("schema", schema)):
        if not _ROLE.match(name):
            raise ValueError(f"{what} {name!r}: use letters, digits and _ (a plain PostgreSQL identifier)")
    return "\n".join([
        f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}";',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}";',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}";',
        f'REVOKE UPDATE, DELETE, TRUNCATE ON "{schema}".audit_log FROM "{role}";',
        f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "{schema}".alembic_version FROM "{role}";',
    ]) + "\n"


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
