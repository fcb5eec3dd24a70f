"""Initial schema: shops, buyers, conversations, messages, suggestions, outbox, inbound events, orders,
reminders, and the console's users, sessions, API tokens and remarks.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of csbot.store.models' column types (a migration never imports the models: they change).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid alias
Timestamp = sa.DateTime(timezone=True)  # UTCDateTime: aware UTC in, aware UTC out


def upgrade() -> None:
    op.create_table(
        "inbound_events",
        sa.Column("id", Id, nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_events")),
        sa.UniqueConstraint("channel", "delivery_id", name=op.f("uq_inbound_events_channel_delivery_id")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_inbound_events_dedupe_key")),
    )
    op.create_table(
        "shops",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shops")),
    )
    op.create_table(
        "users",
        sa.Column("id", Id, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("disabled_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", Id, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", Id, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_auth_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_sessions_token_hash")),
    )
    op.create_table(
        "buyers",
        sa.Column("id", Id, nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("nick", sa.String(length=200), nullable=False),
        sa.Column("blacklisted_at", Timestamp, nullable=True),
        sa.Column("blacklist_reason", sa.Text(), nullable=True),
        sa.Column("blacklisted_by", sa.String(length=128), nullable=True),
        sa.Column("opted_out_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_buyers_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buyers")),
        sa.UniqueConstraint("shop_id", "external_id", name=op.f("uq_buyers_shop_id_external_id")),
    )
    op.create_table(
        "conversations",
        sa.Column("id", Id, nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("buyer_id", Id, nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_buyer_at", Timestamp, nullable=True),
        sa.Column("last_intent", sa.String(length=64), nullable=True),
        sa.Column("last_score", sa.Float(), nullable=True),
        sa.Column("offline_notice_for", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["buyer_id"], ["buyers.id"], name=op.f("fk_conversations_buyer_id_buyers")),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_conversations_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("shop_id", "external_id", name=op.f("uq_conversations_shop_id_external_id")),
    )
    op.create_index("ix_conversations_activity", "conversations", ["last_buyer_at"])
    op.create_index("ix_conversations_buyer", "conversations", ["buyer_id"])
    op.create_table(
        "messages",
        sa.Column("id", Id, nullable=False),
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sent_at", Timestamp, nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_messages_conversation_id_conversations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "shop_id", "direction", "external_id", name=op.f("uq_messages_shop_id_direction_external_id")
        ),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "id"])
    op.create_table(
        "orders",
        sa.Column("id", Id, nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("buyer_id", Id, nullable=True),
        sa.Column("conversation_id", Id, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.String(length=32), nullable=True),
        sa.Column("items", sa.JSON(), nullable=True),
        sa.Column("ordered_at", Timestamp, nullable=True),
        sa.Column("auto_close_at", Timestamp, nullable=True),
        sa.Column("paid_at", Timestamp, nullable=True),
        sa.Column("shipped_at", Timestamp, nullable=True),
        sa.Column("delivered_at", Timestamp, nullable=True),
        sa.Column("refund_requested_at", Timestamp, nullable=True),
        sa.Column("closed_at", Timestamp, nullable=True),
        sa.Column("first_seen_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["buyer_id"], ["buyers.id"], name=op.f("fk_orders_buyer_id_buyers")),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_orders_conversation_id_conversations")
        ),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_orders_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("shop_id", "external_id", name=op.f("uq_orders_shop_id_external_id")),
    )
    op.create_index("ix_orders_buyer", "orders", ["buyer_id"])
    op.create_table(
        "outbox",
        sa.Column("id", Id, nullable=False),
        sa.Column("reply_id", sa.String(length=64), nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("lease_until", Timestamp, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("delivered_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_outbox_conversation_id_conversations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("reply_id", name=op.f("uq_outbox_reply_id")),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "remarks",
        sa.Column("id", Id, nullable=False),
        sa.Column("conversation_id", Id, nullable=True),
        sa.Column("order_id", Id, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_remarks_conversation_id_conversations")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_remarks_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remarks")),
    )
    op.create_index("ix_remarks_conversation", "remarks", ["conversation_id"])
    op.create_table(
        "suggestions",
        sa.Column("id", Id, nullable=False),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("trigger", sa.Text(), nullable=True),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("final_text", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_suggestions_conversation_id_conversations")
        ),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_suggestions_message_id_messages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suggestions")),
    )
    op.create_index("ix_suggestions_conversation_status", "suggestions", ["conversation_id", "status"])
    op.create_table(
        "reminders",
        sa.Column("id", Id, nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", Id, nullable=True),
        sa.Column("conversation_id", Id, nullable=True),
        sa.Column("buyer_id", Id, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("due_at", Timestamp, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", Timestamp, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reply_id", sa.String(length=64), nullable=True),
        sa.Column("suggestion_id", Id, nullable=True),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["buyer_id"], ["buyers.id"], name=op.f("fk_reminders_buyer_id_buyers")),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_reminders_conversation_id_conversations")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_reminders_order_id_orders")),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_reminders_shop_id_shops")),
        sa.ForeignKeyConstraint(
            ["suggestion_id"], ["suggestions.id"], name=op.f("fk_reminders_suggestion_id_suggestions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
    )
    op.create_index("ix_reminders_buyer_sent", "reminders", ["buyer_id", "sent_at"])
    op.create_index("ix_reminders_due", "reminders", ["status", "due_at"])
    op.create_index(
        "uq_reminders_conversation_stage",
        "reminders",
        ["conversation_id", "kind", "stage"],
        unique=True,
        sqlite_where=sa.text("order_id IS NULL"),
        postgresql_where=sa.text("order_id IS NULL"),
    )
    op.create_index("uq_reminders_order_stage", "reminders", ["order_id", "kind", "stage"], unique=True)


def downgrade() -> None:
    op.drop_table("reminders")
    op.drop_table("suggestions")
    op.drop_table("remarks")
    op.drop_table("outbox")
    op.drop_table("orders")
    op.drop_table("messages")
    op.drop_table("conversations")
    op.drop_table("buyers")
    op.drop_table("auth_sessions")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("shops")
    op.drop_table("inbound_events")
