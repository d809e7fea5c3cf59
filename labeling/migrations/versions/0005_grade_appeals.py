"""Appeals on a period grade (绩效申诉): ``grade_appeals``, one per agent and period (the
re-appeal is its second level), and ``grade_appeal_steps``, its timeline with each step's
deadline.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kefuqa.labeling.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_STATUSES = "'filed', 'acknowledged', 'decided', 'notified', 'reappealed', 'final'"
_STEPS = "'filed', 'acknowledged', 'decided', 'notified', 'reappealed'"


def upgrade() -> None:
    op.create_table(
        "grade_appeals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agent_user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("agent_id", sa.String(100), nullable=False, index=True),
        sa.Column("team", sa.String(100), index=True),
        sa.Column("period", sa.String(10), nullable=False, index=True),
        sa.Column("grade", sa.String(16), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False, index=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime()),
        sa.Column("reappeal_until", UTCDateTime()),
        sa.Column("final_grade", sa.String(16)),
        sa.Column("filed_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.UniqueConstraint("agent_user_id", "period", name="uq_grade_appeal_period"),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_grade_appeals_status"),
        sa.CheckConstraint("level IN (1, 2)", name="ck_grade_appeals_level"),
    )
    op.create_table(
        "grade_appeal_steps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("appeal_id", sa.Integer(), sa.ForeignKey("grade_appeals.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime()),
        sa.Column("outcome", sa.String(12)),
        sa.Column("new_grade", sa.String(16)),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(f"step IN ({_STEPS})", name="ck_grade_appeal_steps_step"),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('upheld', 'overturned')",
                           name="ck_grade_appeal_steps_outcome"),
    )


def downgrade() -> None:
    op.drop_table("grade_appeal_steps")
    op.drop_table("grade_appeals")
