"""Alembic's entry point for csbot's migrations: online (async engines, one transaction) or offline (--sql).

csbot runs it through csbot/store/schema.py, which hands over a connection already inside a transaction
(`config.attributes["connection"]`); the `alembic` command line (root alembic.ini) gets here without one
and opens its own engine on `sqlalchemy.url`, or on csbot's configured database when that is empty.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from csbot.store.models import Base
from csbot.store.schema import PG_MIGRATION_LOCK, migration_engine

config = context.config
target_metadata = Base.metadata
if config.config_file_name is not None:  # the `alembic` command with alembic.ini: its logging section
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from csbot.config import load_settings

    return load_settings(None, os.environ).database_url


def run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Two instances starting at once: the second waits here, then finds the schema at head and does nothing
        # (Alembic reads the version inside this transaction, after the lock).
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
    # render_as_batch: SQLite cannot ALTER most things; Alembic's batch mode rebuilds the table instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = migration_engine(_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (shared := config.attributes.get("connection")) is not None:
    run_migrations(shared)
else:
    asyncio.run(run_migrations_online())
