"""When the platform's own service stepped into an order's dispute (小二介入), from order.platform_intervened.

The after-sales queue puts such an order's case first, as the manuals do; until now only an agent could flag
it on the case.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# A frozen copy of csbot.store.models' column type (a migration never imports the models: they change).
Timestamp = sa.DateTime(timezone=True)  # UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("platform_intervened_at", Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("platform_intervened_at")
