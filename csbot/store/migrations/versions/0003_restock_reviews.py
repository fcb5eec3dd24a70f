"""Restock waiting list and review replies: skus, restock_waits, reviews, review_replies.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of csbot.store.models' column types (a migration never imports the models: they change).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid alias
Timestamp = sa.DateTime(timezone=True)  # UTCDateTime: aware UTC in, aware UTC out


def upgrade() -> None:
    op.create_table(
        "skus",
        sa.Column("id", Id, nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("available", sa.Integer(), nullable=True),
        sa.Column("counted_at", Timestamp, nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_skus_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skus")),
        sa.UniqueConstraint("shop_id", "external_id", name=op.f("uq_skus_shop_id_external_id")),
    )
    op.create_table(
        "restock_waits",
        sa.Column("id", Id, nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("sku_id", Id, nullable=False),
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("buyer_id", Id, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reminder_id", Id, nullable=True),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["buyer_id"], ["buyers.id"], name=op.f("fk_restock_waits_buyer_id_buyers")),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_restock_waits_conversation_id_conversations")
        ),
        sa.ForeignKeyConstraint(["reminder_id"], ["reminders.id"], name=op.f("fk_restock_waits_reminder_id_reminders")),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_restock_waits_shop_id_shops")),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f("fk_restock_waits_sku_id_skus")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restock_waits")),
        sa.UniqueConstraint("sku_id", "conversation_id", name=op.f("uq_restock_waits_sku_id_conversation_id")),
    )
    op.create_index("ix_restock_waits_sku", "restock_waits", ["sku_id", "status"])
    op.create_table(
        "reviews",
        sa.Column("id", Id, nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("order_external_id", sa.String(length=128), nullable=True),
        sa.Column("buyer_id", Id, nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("case_id", Id, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["buyer_id"], ["buyers.id"], name=op.f("fk_reviews_buyer_id_buyers")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_reviews_case_id_cases")),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_reviews_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("shop_id", "external_id", name=op.f("uq_reviews_shop_id_external_id")),
    )
    op.create_table(
        "review_replies",
        sa.Column("id", Id, nullable=False),
        sa.Column("review_id", Id, nullable=False),
        sa.Column("templates", sa.String(length=400), nullable=False),
        sa.Column("draft", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("final_text", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", Timestamp, nullable=True),
        sa.Column("reply_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["review_id"], ["reviews.id"], name=op.f("fk_review_replies_review_id_reviews")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_replies")),
        sa.UniqueConstraint("review_id", name=op.f("uq_review_replies_review_id")),
    )
    op.create_index("ix_review_replies_status", "review_replies", ["status"])


def downgrade() -> None:
    op.drop_table("review_replies")
    op.drop_table("reviews")
    op.drop_table("restock_waits")
    op.drop_table("skus")
