"""One dispute per conversation, held by the database: parallel filings cannot race past
the check in ``file_dispute`` (a second score dispute is an escalation, not a new row).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_disputes_conversation", "disputes", ["conversation_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_disputes_conversation", table_name="disputes")
