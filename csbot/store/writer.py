"""SQLite's writer thread: whole write transactions in one hop to a thread, not three hops per statement.

aiosqlite runs every driver call (cursor, execute, fetch, close, commit) on its own thread and wakes the
event loop for each result: about a dozen statements per webhook cost 40 such round trips, which measured
as much CPU as all the SQL itself (benchmarks/webhook_notes.md). SQLite is a library, not a server: the
calls themselves take microseconds. So for hot write transactions csbot hands the *whole* transaction (a
coroutine function taking the session) to one thread that owns its own event loop and its own engine, on
which the driver runs each call on the spot ("inline"), and the caller's loop is woken once, at the end.

The calls block only this thread, which exists for nothing else; SQLite's busy timeout (another process
holding the write lock) blocks it too, never the server's loop. The transaction code is the same async
code that runs everywhere else (and unchanged on PostgreSQL, where asyncpg needs no thread at all).

Group commit (`GroupCommit`): the writes that queue up while a transaction runs go to the thread together
and share the next transaction, each in a savepoint of its own. SQLite has one writer at a time anyway, so
under load they would have waited in line; together they pay for one BEGIN … COMMIT and one hop. A write
that fails rolls back its own savepoint and gets its exception; the others commit. Nobody hears of success
before the COMMIT.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

T = TypeVar("T")


async def finish_even_if_cancelled(work: asyncio.Future[T]) -> T:
    """Await `work`; if the awaiting task is cancelled meanwhile, still wait for `work` to end before the
    cancellation goes on, so a transaction is never left half-way or still running behind its caller's back
    (and the caller's turn at the write lock lasts until it has ended)."""
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        if not work.done():
            await asyncio.wait([work])
        raise


class _RunNow:
    """Stands in for aiosqlite's work queue: runs each queued call at once, on the calling thread, and
    settles its future before aiosqlite awaits it (an already settled future never yields to the loop)."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller, as aiosqlite's thread does
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            if future is not None and not future.done():
                future.set_result(result)


async def _inline_connect(*args: Any, **kwargs: Any) -> aiosqlite.Connection:
    """An aiosqlite connection whose calls run on the calling thread (the writer's), without its own thread.
    aiosqlite offers no switch for this, so its two internals are replaced: the queue and the idle thread."""
    connection = aiosqlite.connect(*args, **kwargs)
    connection._tx = _RunNow()  # type: ignore[assignment]  # noqa: SLF001
    connection._thread = threading.Thread(target=lambda: None, daemon=True)  # noqa: SLF001 - started, ends at once
    return await connection


@dataclass(frozen=True)
class Outcome:
    """What one write of a batch came to."""

    result: Any = None
    error: BaseException | None = None


class SqliteWriter:
    """One daemon thread running an event loop that runs write transactions (batches of writes), one at a
    time, on an engine of its own (one connection, opened on that thread). Started on first use, stopped by
    `close()`."""

    def __init__(self, url: str, configure: Callable[[AsyncEngine], None]) -> None:
        self._url = url
        self._configure = configure
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._start_lock = threading.Lock()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="csbot-sqlite-writer", daemon=True)
                self._thread.start()
                self._engine = engine = create_async_engine(
                    self._url, async_creator=functools.partial(_inline_connect, self._database()),
                    hide_parameters=True, pool_size=1, max_overflow=0)
                self._configure(engine)
                self._sessions = async_sessionmaker(engine, expire_on_commit=False)
                self._loop = loop
            return self._loop

    def _database(self) -> str:
        database = make_url(self._url).database
        assert database, "the writer needs a database file (Database keeps in-memory SQLite to itself)"
        return database

    async def run_batch(self, work: list[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...]]]) -> list[Outcome]:
        """Run each `fn(session, *args)` in a savepoint of one write transaction on the writer thread; each
        one's outcome (its result, or the exception that rolled back its savepoint) once the whole has
        committed. An error in BEGIN or COMMIT raises here: then nothing was written."""
        loop = self._start()
        future: Future[list[Outcome]] = asyncio.run_coroutine_threadsafe(self._batch(work), loop)
        return await finish_even_if_cancelled(asyncio.wrap_future(future))

    async def _batch(self, work: list[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...]]]) -> list[Outcome]:
        assert self._sessions is not None
        outcomes: list[Outcome] = []
        async with self._sessions() as session, session.begin():
            for fn, args in work:
                session.info.clear()  # what a write notes on its session (e.g. "enqueued") is its own
                try:
                    async with session.begin_nested():
                        outcomes.append(Outcome(await fn(session, *args)))
                except Exception as exc:  # noqa: BLE001 - rolled back alone, handed to its caller
                    outcomes.append(Outcome(error=exc))
        return outcomes

    async def close(self) -> None:
        """Close the engine on the writer's loop, then stop the loop and the thread."""
        loop, thread, engine = self._loop, self._thread, self._engine
        if loop is None or thread is None or engine is None:
            return
        self._loop = None
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(engine.dispose(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()


@dataclass
class _Queued:
    fn: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...]
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit:
    """Hands the writes queued on this loop to the writer thread in batches of up to `max_batch`, one batch at
    a time, each batch in its turn at the process's write lock (shared with the main engine's writers)."""

    def __init__(self, writer: SqliteWriter, write_lock: asyncio.Lock, *, max_batch: int = 32) -> None:
        self._writer = writer
        self._write_lock = write_lock
        self._max_batch = max_batch
        self._queue: list[_Queued] = []
        self._drainer: asyncio.Task[None] | None = None

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `fn(session, *args)` in the next batch; its result once that batch has committed. A cancelled
        caller still waits for its batch to end (its write is not undone)."""
        queued = _Queued(fn, args)
        self._queue.append(queued)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="csbot-group-commit")
        result: T = await finish_even_if_cancelled(queued.future)
        return result

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
            try:
                async with self._write_lock:
                    outcomes = await self._writer.run_batch([(q.fn, q.args) for q in batch])
            except Exception as exc:  # BEGIN or COMMIT failed: nothing of this batch was written
                outcomes = [Outcome(error=exc)] * len(batch)
            except BaseException as exc:  # this task is cancelled (the loop is closing): nobody is left waiting
                for queued in [*batch, *self._queue]:
                    if not queued.future.done():
                        queued.future.set_exception(exc)
                raise
            for queued, outcome in zip(batch, outcomes, strict=True):
                if queued.future.done():
                    continue
                if outcome.error is not None:
                    queued.future.set_exception(outcome.error)
                else:
                    queued.future.set_result(outcome.result)

    async def close(self) -> None:
        """Wait until every queued write has been committed or failed."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.wait([self._drainer])
