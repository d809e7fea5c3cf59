"""Evidence feedback: a reviewer's verdict on each evidence chip of a prediction
(``evidence_marks``: right or wrong) and the spans the rules missed (``missed_spans``).
One verdict per reviewer, conversation and chip; marking again replaces it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kefuqa.labeling.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _span_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(200), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("reviewer_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "evidence_marks",
        *_span_columns(),
        sa.Column("prediction_id", sa.Integer(), sa.ForeignKey("predictions.id", ondelete="SET NULL")),
        sa.Column("rule", sa.String(100), nullable=False, index=True),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("conversation_id", "reviewer_id", "rule", "turn", "start", "end",
                            name="uq_evidence_mark"),
        sa.CheckConstraint("verdict IN ('right', 'wrong')", name="ck_evidence_marks_verdict"),
    )
    op.create_table(
        "missed_spans",
        *_span_columns(),
        sa.Column("label", sa.String(50), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("conversation_id", "reviewer_id", "label", "turn", "start", "end",
                            name="uq_missed_span"),
        sa.CheckConstraint('"turn" >= 0 AND "start" >= 0 AND "end" > "start"', name="ck_missed_spans_span"),
    )


def downgrade() -> None:
    op.drop_table("missed_spans")
    op.drop_table("evidence_marks")
