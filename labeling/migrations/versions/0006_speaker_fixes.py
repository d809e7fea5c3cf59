"""Speaker fixes: a reviewer's answer on who said one turn of a call (``speaker_fixes``),
one per reviewer, conversation and turn; answering again replaces it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kefuqa.labeling.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "speaker_fixes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(200), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("reviewer_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(10), nullable=False),
        sa.Column("original", sa.String(10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("conversation_id", "reviewer_id", "turn", name="uq_speaker_fix"),
        sa.CheckConstraint("speaker IN ('agent', 'customer') AND original IN ('agent', 'customer') AND turn >= 0",
                           name="ck_speaker_fixes_values"),
    )


def downgrade() -> None:
    op.drop_table("speaker_fixes")
