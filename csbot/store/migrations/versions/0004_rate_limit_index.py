"""An index for the automatic-send rate limits: a shop's recent bot messages by time.

Without it, counting a shop's bot messages of the last minute walked the messages table backwards by id
until it had found `cap` of them: every message since, on a shop whose agents answer most chats.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_shop_author_created", "messages", ["shop_id", "author", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_shop_author_created", table_name="messages")
