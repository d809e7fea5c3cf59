"""Tamper evidence for the audit log: each row holds the hash of the previous row
(``prev_hash``) and its own (``hash``); rows already there are chained in id order.
PostgreSQL also refuses TRUNCATE on the log (row triggers do not fire on it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kefuqa.labeling.audit import GENESIS, entry_hash
from kefuqa.labeling.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SQLITE_GUARDS = ("UPDATE", "DELETE")


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(64)))
    op.add_column("audit_log", sa.Column("hash", sa.String(64)))
    _without_guards(_chain_existing_rows)
    op.create_index("uq_audit_log_hash", "audit_log", ["hash"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION kefuqa_audit_append_only()")


def _chain_existing_rows() -> None:
    log = sa.table("audit_log", sa.column("id", sa.Integer), sa.column("at", UTCDateTime()),
                   sa.column("actor", sa.String), sa.column("action", sa.String), sa.column("entity", sa.String),
                   sa.column("entity_id", sa.String), sa.column("before", sa.JSON), sa.column("after", sa.JSON),
                   sa.column("prev_hash", sa.String), sa.column("hash", sa.String))
    conn = op.get_bind()
    prev = GENESIS
    for row in conn.execute(sa.select(log).order_by(log.c.id)).mappings().all():
        digest = entry_hash(prev, row["at"], row["actor"], row["action"], row["entity"], row["entity_id"],
                            row["before"], row["after"])
        conn.execute(log.update().where(log.c.id == row["id"]).values(prev_hash=prev, hash=digest))
        prev = digest


def _without_guards(step) -> None:  # type: ignore[no-untyped-def]
    """Run ``step`` with the append-only triggers lifted (inside the migration's transaction)."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        step()
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        return
    if dialect == "sqlite":
        for event in _SQLITE_GUARDS:
            op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{event.lower()}")
        step()
        for event in _SQLITE_GUARDS:
            op.execute(f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                       "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")
        return
    step()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.drop_index("uq_audit_log_hash", table_name="audit_log")

    def drop_columns() -> None:  # SQLite rebuilds the table here, so its triggers are put back after
        with op.batch_alter_table("audit_log") as batch:
            batch.drop_column("hash")
            batch.drop_column("prev_hash")

    _without_guards(drop_columns)
