"""After-sales cases: the cases table and its history (case_events). See csbot/aftersales/.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of csbot.store.models' column types (a migration never imports the models: they change).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)  # UTCDateTime
OPEN_WITH_ORDER = "ended_at IS NULL AND order_id IS NOT NULL"
OPEN_WITHOUT_ORDER = "ended_at IS NULL AND order_id IS NULL AND conversation_id IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", Id, nullable=False),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("buyer_id", Id, nullable=False),
        sa.Column("conversation_id", Id, nullable=True),
        sa.Column("order_id", Id, nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("platform_intervened", sa.Boolean(), nullable=False),
        sa.Column("late_shipment", sa.Boolean(), nullable=False),
        sa.Column("out_of_stock", sa.Boolean(), nullable=False),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("opened_at", Timestamp, nullable=False),
        sa.Column("reply_due_at", Timestamp, nullable=True),
        sa.Column("resolve_due_at", Timestamp, nullable=False),
        sa.Column("ended_at", Timestamp, nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_cases_shop_id_shops")),
        sa.ForeignKeyConstraint(["buyer_id"], ["buyers.id"], name=op.f("fk_cases_buyer_id_buyers")),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_cases_conversation_id_conversations")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_cases_order_id_orders")),
    )
    op.create_index("ix_cases_shop_state", "cases", ["shop_id", "state"])
    op.create_index("ix_cases_conversation", "cases", ["conversation_id"])
    op.create_index("ix_cases_opened", "cases", ["opened_at"])
    # One open case per buyer and order (per buyer and conversation without an order): messages join it.
    op.create_index("uq_cases_open_order", "cases", ["buyer_id", "order_id"], unique=True,
                    sqlite_where=sa.text(OPEN_WITH_ORDER), postgresql_where=sa.text(OPEN_WITH_ORDER))
    op.create_index("uq_cases_open_conversation", "cases", ["buyer_id", "conversation_id"], unique=True,
                    sqlite_where=sa.text(OPEN_WITHOUT_ORDER), postgresql_where=sa.text(OPEN_WITHOUT_ORDER))

    op.create_table(
        "case_events",
        sa.Column("id", Id, nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(24), nullable=True),
        sa.Column("to_state", sa.String(24), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("remark_id", Id, nullable=True),
        sa.Column("at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")),
        sa.ForeignKeyConstraint(["remark_id"], ["remarks.id"], name=op.f("fk_case_events_remark_id_remarks")),
    )
    op.create_index("ix_case_events_case", "case_events", ["case_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_case_events_case", table_name="case_events")
    op.drop_table("case_events")
    for name in ("uq_cases_open_conversation", "uq_cases_open_order", "ix_cases_opened", "ix_cases_conversation",
                 "ix_cases_shop_state"):
        op.drop_index(name, table_name="cases")
    op.drop_table("cases")
