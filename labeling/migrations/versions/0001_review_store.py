"""The review store: users, conversations, predictions, tasks, reviews, disputes, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kefuqa.labeling.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    _create_users()
    _create_sessions()
    _create_teams()
    _create_conversations()
    _create_predictions()
    _create_review_tasks()
    _create_reviews()
    _create_disputes()
    _create_dispute_answers()
    _create_audit_log()
    _append_only_audit()


def _create_users() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("team", sa.String(100)),
        sa.Column("agent_id", sa.String(100), index=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("role IN ('reviewer', 'lead', 'admin', 'agent')", name="ck_users_role"),
    )


def _create_sessions() -> None:
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        _ts("created_at"),
        _ts("expires_at"),
    )


def _create_teams() -> None:
    op.create_table(
        "teams",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        _ts("updated_at"),
        sa.Column("updated_by", sa.String(100)),
    )


def _create_conversations() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("agent_id", sa.String(100), nullable=False, index=True),
        sa.Column("team", sa.String(100), index=True),
        sa.Column("channel", sa.String(10), nullable=False),
        _ts("started_at", nullable=True),
        sa.Column("turns", sa.JSON(), nullable=False),
        _ts("imported_at"),
    )


def _create_predictions() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(200), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("probs", sa.JSON(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("conversation_id", "model_name", "model_version", name="uq_prediction_model"),
    )


def _create_review_tasks() -> None:
    op.create_table(
        "review_tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(200), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("double", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("final_labels", sa.JSON()),
        sa.Column("final_source", sa.String(16)),
        sa.Column("final_by", sa.Integer(), sa.ForeignKey("users.id")),
        _ts("final_at", nullable=True),
        _ts("created_at"),
    )


def _create_reviews() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("review_tasks.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("conversation_id", sa.String(200), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("reviewer_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("prediction_id", sa.Integer(), sa.ForeignKey("predictions.id", ondelete="SET NULL")),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lead_time", sa.Float()),
        sa.Column("source_ref", sa.String(200), unique=True),
        _ts("created_at"),
    )


def _create_disputes() -> None:
    op.create_table(
        "disputes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(200), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("agent_user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_labels", sa.JSON()),
        sa.Column("status", sa.String(12), nullable=False, index=True),
        sa.Column("level", sa.Integer(), nullable=False),
        _ts("filed_at"),
        _ts("due_at"),
        _ts("escalate_until", nullable=True),
        sa.Column("escalation_reason", sa.Text()),
        _ts("escalated_at", nullable=True),
        _ts("closed_at", nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )


def _create_dispute_answers() -> None:
    op.create_table(
        "dispute_answers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dispute_id", sa.Integer(), sa.ForeignKey("disputes.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON()),
        _ts("at"),
    )


def _create_audit_log() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ts("at"),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("entity", sa.String(30), nullable=False),
        sa.Column("entity_id", sa.String(200), nullable=False),
        sa.Column("before", sa.JSON()),
        sa.Column("after", sa.JSON()),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_entity", "audit_log", ["entity", "entity_id"])


def _append_only_audit() -> None:
    """The audit log refuses UPDATE and DELETE at the database, not only in the code."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION kefuqa_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION kefuqa_audit_append_only()"
        )
    elif op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS kefuqa_audit_append_only()")
    for table in ("audit_log", "dispute_answers", "disputes", "reviews", "review_tasks", "predictions",
                  "conversations", "teams", "sessions", "users"):
        op.drop_table(table)
