"""Store: the schema's version. Alembic migrations (csbot/store/migrations/) create and change the tables;
this module runs them and says whether a database is at the revision the code needs. Never creates tables
any other way.

SQLite (the embedded default) is brought to the code's revision when csbot opens it; PostgreSQL only on
`csbot db upgrade`, or at start with `[database] auto_upgrade = true` / `CSBOT_DB_AUTO_UPGRADE=1`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from csbot.errors import SchemaOutdated
from csbot.store.db import Database, configure_sqlite

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
# pg_advisory_xact_lock key held while migrating ("csbot" in ASCII): one migrator per database at a time.
PG_MIGRATION_LOCK = 0x6373626F74


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration, built here so neither an alembic.ini nor a working directory is needed."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolation
    return cfg


@functools.cache
def head() -> str:
    """The revision this code needs. Cached: it is fixed by the installed files (reading them costs ms)."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return revision


def known(revision: str) -> bool:
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        return False
    return True


def migration_engine(url: str) -> AsyncEngine:
    """An engine for migrating: no pool, and on SQLite foreign keys off (batch mode rebuilds a table by
    copy, drop and rename; with foreign keys on, dropping a referenced table would fail or cascade)."""
    engine = create_async_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine, foreign_keys=False)
    return engine


async def current(url: str) -> str | None:
    """The database's revision; None for a database migrations never touched (empty, or pre-migrations)."""
    engine = migration_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    await _run(url, command.upgrade, revision)


async def downgrade(url: str, revision: str) -> None:
    await _run(url, command.downgrade, revision)


async def check(db: Database) -> None:
    """Raise SchemaOutdated unless the database is at the code's revision."""
    revision = await _current_of(db)
    if revision != head():
        raise SchemaOutdated(revision, head()) if revision is None or known(revision) else _newer(revision)


async def ensure(db: Database, url: str, *, auto_upgrade: bool) -> None:
    """Upgrade the database to head when allowed (SQLite always; PostgreSQL when `auto_upgrade`),
    otherwise check it (SchemaOutdated names the revisions and the command to run)."""
    revision = await _current_of(db)
    if revision == head():
        return
    if revision is not None and not known(revision):
        raise _newer(revision)  # never "upgrade" (or downgrade) a schema this code does not know
    if revision is None and await _has_tables(db):
        raise SchemaOutdated(None, head(), hint="it has tables but no revision (made before csbot had migrations): "
                                                "start a fresh database, or `alembic stamp 0001` if it matches 0001")
    if not (auto_upgrade or db.dialect == "sqlite"):
        raise SchemaOutdated(revision, head())
    log.info("upgrading the database schema from %s to %s", revision or "empty", head())
    await upgrade(url)
    await check(db)


async def _run(url: str, action: Any, revision: str) -> None:
    # Alembic's `op` and `context` are module-level proxies: one migration run at a time per process (csbot
    # runs one at start). Across processes, the database's lock serialises them (env.py, BEGIN IMMEDIATE).
    engine = migration_engine(url)
    try:
        # One transaction for the whole run (both databases have transactional DDL): a failed migration
        # leaves the schema where it was. env.py uses this connection instead of opening its own.
        async with engine.begin() as conn:
            await conn.run_sync(_with_connection, action, url, revision)
    finally:
        await engine.dispose()


def _with_connection(conn: Connection, action: Any, url: str, revision: str) -> None:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = conn
    action(cfg, revision)


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def _current_of(db: Database) -> str | None:
    async with db.read() as tx:
        return await tx.run_sync(lambda session: _current(session.connection()))


async def _has_tables(db: Database) -> bool:
    async with db.read() as tx:
        return await tx.run_sync(lambda session: bool(inspect(session.connection()).get_table_names()))


def _newer(revision: str) -> SchemaOutdated:
    return SchemaOutdated(revision, head(), hint="it was migrated by a newer csbot: run that version, or step the "
                                                 "database back with it (`csbot db downgrade`)")
