"""Alembic migrations own the schema: they agree with the models, go down and up again, and csbot refuses to
run on a PostgreSQL schema behind the code (SQLite, the embedded default, upgrades itself)."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from csbot.app import make_app
from csbot.cli import main
from csbot.clock import FrozenClock
from csbot.config import DatabaseSettings, load_settings
from csbot.errors import SchemaOutdated
from csbot.keys import db_key
from csbot.store import schema
from csbot.store.db import Database
from csbot.store.models import Base
from tests.conftest import make_settings

REVISIONS = [r.revision for r in ScriptDirectory.from_config(schema.alembic_config()).walk_revisions()][::-1]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without any table: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


async def _inspect(url: str, fn: Callable[[sa.Connection], Any]) -> Any:
    engine = schema.migration_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _model_diffs(conn: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(conn: sa.Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names())


def test_the_revisions_form_one_chain_from_0001() -> None:
    assert REVISIONS[0] == "0001"
    assert schema.head() == REVISIONS[-1]
    assert len(REVISIONS) == len(set(REVISIONS))


async def test_migrations_create_exactly_the_models(blank_url: str) -> None:
    await schema.upgrade(blank_url)
    assert await schema.current(blank_url) == schema.head()
    assert await _inspect(blank_url, _model_diffs) == []
    assert await _inspect(blank_url, _tables) == set(Base.metadata.tables) | {"alembic_version"}


async def test_each_migration_goes_down_and_up_again(blank_url: str) -> None:
    """The stairway: up one revision, down one, up again; then all the way down and up."""
    previous = "base"
    for revision in REVISIONS:
        await schema.upgrade(blank_url, revision)
        await schema.downgrade(blank_url, previous)
        assert await schema.current(blank_url) == (None if previous == "base" else previous)
        await schema.upgrade(blank_url, revision)
        assert await schema.current(blank_url) == revision
        previous = revision
    await schema.downgrade(blank_url, "base")
    assert await _inspect(blank_url, _tables) == {"alembic_version"}
    await schema.upgrade(blank_url)
    assert await _inspect(blank_url, _model_diffs) == []


@pytest.mark.slow
async def test_two_upgrades_at_once_both_succeed(blank_url: str) -> None:
    """Two instances starting together (two processes: Alembic runs one migration at a time per process):
    one migrates, the other waits for it (advisory lock / SQLite's write lock) and then finds the schema at
    head; without the lock the second fails on tables that already exist."""
    env = {**os.environ, "CSBOT_DB": blank_url}
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-m", "csbot", "db", "upgrade", env=env,
                                                  stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
             for _ in range(2)]
    results = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert all(f"-> {schema.head()}" in out.decode() for out, _ in results), results
    assert await schema.current(blank_url) == schema.head()
    assert await _inspect(blank_url, lambda c: c.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar()) == 1


async def test_a_new_sqlite_file_another_process_holds_is_waited_for(tmp_path: Path) -> None:
    """Two instances opening a new file together: the one that switches it to WAL while the other holds its
    write lock gets "database is locked" at once from SQLite, without the busy handler (CI saw one of two
    `csbot db upgrade` fail so). csbot waits for the lock instead: here a plain sqlite3 connection, another
    process's stand-in, holds the new file's write lock in rollback mode and lets go after a moment."""
    path = tmp_path / "new.db"
    url = f"sqlite+aiosqlite:///{path}"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE other_process (x)")
    release = threading.Timer(0.3, other.execute, ["COMMIT"])
    release.start()
    try:
        await schema.upgrade(url)
    finally:
        release.join()
        other.close()
    assert await schema.current(url) == schema.head()
    assert "other_process" in await _inspect(url, _tables)
    assert await _inspect(url, lambda c: c.exec_driver_sql("PRAGMA journal_mode").scalar()) == "wal"


async def test_a_failed_upgrade_leaves_the_schema_where_it_was(blank_url: str) -> None:
    """The whole run is one transaction: a table in the way makes the first migration fail, and nothing of
    it stays behind (no half-created tables, no version row)."""
    blocker = "CREATE TABLE reminders (id INTEGER PRIMARY KEY)"
    engine = schema.migration_engine(blank_url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(blocker)
    await engine.dispose()
    with pytest.raises(sa.exc.DatabaseError):
        await schema.upgrade(blank_url)
    assert await _inspect(blank_url, _tables) == {"reminders"}
    assert await schema.current(blank_url) is None


async def test_tables_without_a_revision_are_not_migrated_over(blank_url: str, tmp_cwd: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A database made before csbot had migrations: csbot says so instead of failing halfway."""
    engine = schema.migration_engine(blank_url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE shops (id VARCHAR(64) PRIMARY KEY, name VARCHAR(200))")
    await engine.dispose()
    with pytest.raises(SchemaOutdated, match="it has tables but no revision"):
        await Database.open(blank_url, auto_upgrade=True)
    monkeypatch.setenv("CSBOT_DB", blank_url)
    assert await asyncio.to_thread(main, ["db", "upgrade"]) == 1
    assert capsys.readouterr().err.startswith("csbot: the migration failed and changed nothing: ")
    assert await _inspect(blank_url, _tables) == {"shops"}


@pytest.mark.postgresql
@pytest.mark.parametrize("behind", ["base", "previous"])
async def test_startup_refuses_a_postgres_schema_behind_the_code(empty_postgres_url: str, clock: FrozenClock,
                                                                 behind: str) -> None:
    at = None
    if behind == "previous":
        if len(REVISIONS) < 2:
            pytest.skip("only one migration so far: no earlier revision to be at")
        at = REVISIONS[-2]
        await schema.upgrade(empty_postgres_url, at)
    runner = web.AppRunner(make_app(make_settings(empty_postgres_url), clock=clock))
    with pytest.raises(SchemaOutdated) as refused:
        await runner.setup()  # what `csbot serve` (web.run_app) does before it listens
    await runner.cleanup()
    at_text = at or "empty (no migrations applied)"
    assert str(refused.value) == (f"database schema is at {at_text}, code needs {schema.head()}: "
                                  "run `csbot db upgrade`")
    assert await schema.current(empty_postgres_url) == at  # and it changed nothing


@pytest.mark.postgresql
@pytest.mark.slow
async def test_csbot_serve_exits_with_the_message(empty_postgres_url: str, tmp_cwd: Path) -> None:
    with socket.socket() as sock:  # a free port, should the check let it get that far
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "CSBOT_DB": empty_postgres_url, "CSBOT_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "csbot", "serve", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    assert err.decode().endswith(f"csbot: database schema is at empty (no migrations applied), code needs "
                                 f"{schema.head()}: run `csbot db upgrade`\n")


@pytest.mark.postgresql
async def test_postgres_auto_upgrade_migrates_at_start(empty_postgres_url: str, clock: FrozenClock,
                                                       aiohttp_client: Callable[..., Any]) -> None:
    settings = replace(make_settings(empty_postgres_url), database=DatabaseSettings(auto_upgrade=True))
    client: TestClient[Any, Any] = await aiohttp_client(make_app(settings, clock=clock))
    assert (await client.get("/healthz")).status == 200
    assert await schema.current(empty_postgres_url) == schema.head()


async def test_sqlite_upgrades_itself_at_start(tmp_path: Path, clock: FrozenClock,
                                               aiohttp_client: Callable[..., Any]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    client: TestClient[Any, Any] = await aiohttp_client(make_app(make_settings(url), clock=clock))
    assert (await client.get("/healthz")).status == 200
    assert await schema.current(url) == schema.head()
    assert await _inspect(url, _model_diffs) == []


async def test_a_schema_newer_than_the_code_is_refused_even_on_sqlite(blank_url: str) -> None:
    """A rollback to an older csbot must not run on (or 'upgrade') a schema it does not know."""
    await schema.upgrade(blank_url)
    engine = schema.migration_engine(blank_url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    await engine.dispose()
    with pytest.raises(SchemaOutdated, match=f"database schema is at 9999, code needs {schema.head()}: it was "
                                             "migrated by a newer csbot"):
        await Database.open(blank_url, auto_upgrade=True)


@pytest.mark.postgresql
async def test_pool_size_comes_from_the_settings(postgres_url: str, clock: FrozenClock,
                                                 aiohttp_client: Callable[..., Any]) -> None:
    settings = replace(make_settings(postgres_url), database=DatabaseSettings(pool_size=3, max_overflow=2))
    client: TestClient[Any, Any] = await aiohttp_client(make_app(settings, clock=clock))
    pool = client.app[db_key].engine.pool
    assert (pool.size(), pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]


def test_database_table_and_environment() -> None:
    env = {"CSBOT_DB": "postgresql://u@db/shop", "CSBOT_DB_AUTO_UPGRADE": "1", "CSBOT_DB_POOL_SIZE": "4"}
    s = load_settings(None, env)
    assert s.database_url == "postgresql+asyncpg://u@db/shop"
    assert s.database == DatabaseSettings(pool_size=4, max_overflow=10, auto_upgrade=True)
    assert load_settings(None, {}).database == DatabaseSettings(pool_size=10, max_overflow=10, auto_upgrade=False)


def test_database_table_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "csbot.toml"
    config.write_text('[database]\nurl = "postgresql://u@db/shop"\npool_size = 20\nmax_overflow = 0\n'
                      "auto_upgrade = true\n", encoding="utf-8")
    s = load_settings(config, {"CSBOT_DB_MAX_OVERFLOW": "5"})
    assert s.database_url == "postgresql+asyncpg://u@db/shop"
    assert s.database == DatabaseSettings(pool_size=20, max_overflow=5, auto_upgrade=True)


async def test_db_commands(blank_url: str, tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CSBOT_DB", blank_url)

    async def csbot(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(argv))  # main() runs its own event loop
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await csbot("db", "current")
    assert code == 0 and "current:  empty (no migrations applied)" in out and f"needed:   {schema.head()}" in out
    code, _, err = await csbot("db", "check")
    assert code == 1
    assert err == f"csbot: database schema is at empty (no migrations applied), code needs {schema.head()}: " \
                  "run `csbot db upgrade`\n"
    code, out, _ = await csbot("db", "upgrade")
    assert code == 0 and out.rstrip().endswith(f": empty -> {schema.head()}")
    code, out, _ = await csbot("db", "current")
    assert code == 0 and f"current:  {schema.head()}\n" in out and "up to date" in out
    assert await csbot("db", "check") == (0, f"ok: {blank_url} is at {schema.head()}\n", "")
    code, out, _ = await csbot("db", "downgrade", "base")
    assert code == 0 and out.rstrip().endswith(f": {schema.head()} -> empty")
    assert await schema.current(blank_url) is None
