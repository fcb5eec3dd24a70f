"""Store: the engine and transactions. SQLite runs in WAL mode with immediate write transactions."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from csbot.store.writer import GroupCommit, SqliteWriter, finish_even_if_cancelled

log = logging.getLogger(__name__)

Tx = AsyncSession  # what store functions take: a session inside an open transaction

_READ_ONLY = "csbot_read_only"
# How long a connection waits for another process's write lock (SQLite's busy handler, and _enter_wal).
BUSY_TIMEOUT_MS = 10_000

T = TypeVar("T")


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queue this process's writers here, in FIFO order, instead of
        # letting them sleep in SQLite's busy handler: that handler is unfair and polls, which gave
        # multi-second tail latencies and, under load, "database is locked" past the busy timeout.
        # Other processes on the same file are still kept apart by SQLite itself (busy_timeout).
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # SQLite's hot write transactions (webhooks) run whole on a thread of their own (store/writer.py), with
        # its own connection to the same file (an in-memory database could not be shared: it stays here).
        on_file = engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")
        self._writer = (SqliteWriter(engine.url.render_as_string(hide_password=False), configure_sqlite)
                        if on_file else None)
        self._group = (GroupCommit(self._writer, self._write_lock)
                       if self._writer is not None and self._write_lock is not None else None)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @classmethod
    async def open(cls, url: str, *, create: bool = True, auto_upgrade: bool = False, pool_size: int = 10,
                   max_overflow: int = 10) -> Database:
        """Open the database. With `create`, bring its schema to the code's migration revision (SQLite
        always, PostgreSQL only with `auto_upgrade`) or raise SchemaOutdated (see store/schema.py)."""
        # hide_parameters: SQL logging and error messages never show bound values (buyer text, nicks, phones).
        options: dict[str, Any] = {"hide_parameters": True}
        if url.startswith("postgresql"):
            options |= {"pool_size": pool_size, "max_overflow": max_overflow, "pool_pre_ping": True}
        engine = create_async_engine(url, **options)
        if engine.dialect.name == "sqlite":
            configure_sqlite(engine)
        db = cls(engine)
        if create:
            from csbot.store import schema  # schema.py builds its migration engine from this module

            try:
                await schema.ensure(db, url, auto_upgrade=auto_upgrade)
            except BaseException:
                await db.close()
                raise
        return db

    async def close(self) -> None:
        if self._group is not None:
            await self._group.close()
        if self._writer is not None:
            await self._writer.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction: commits on success, rolls back on any exception. Not re-entrant."""
        if self._write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._sessions() as session, session.begin():
            yield session

    async def write(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `fn(tx, *args)` in a write transaction and return its result once committed: `transaction()`
        for a whole coroutine. On SQLite it runs on the writer thread, together with the writes that queued
        up meanwhile (group commit: one transaction, a savepoint each; store/writer.py), still in turn with
        this process's other writers; on PostgreSQL, here, in a transaction of its own. Either way an error
        undoes this write only, and a cancelled caller first waits for its transaction to end."""
        if self._group is None:
            return await finish_even_if_cancelled(asyncio.ensure_future(self._in_transaction(fn, args)))
        return await self._group.run(fn, *args)

    async def _in_transaction(self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
        async with self.transaction() as tx:
            return await fn(tx, *args)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """A read-only transaction (on SQLite a deferred BEGIN, so readers never queue behind writers)."""
        # Closing the session rolls the transaction back without expiring what was loaded, so
        # handlers can still read the objects after the block.
        async with self._sessions() as session:
            await session.connection(execution_options={_READ_ONLY: True})
            yield session


def _enter_wal(cursor: Any) -> None:
    """Switch the file to WAL, waiting for other connections that hold it. Switching needs the file to
    itself, and SQLite answers "database is locked" at once instead of calling the busy handler when
    another connection holds its write lock (two processes opening a new file together: one in about
    five such starts failed). So retry, with a short backoff, for as long as the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)  # on the driver's own thread, before the connection is handed out
        pause = min(pause * 2, 0.1)


def configure_sqlite(engine: AsyncEngine, *, foreign_keys: bool = True) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN, so we can make write transactions IMMEDIATE:
        # a deferred transaction that later writes can fail with SQLITE_BUSY instead of waiting.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _enter_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode across process crashes
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
