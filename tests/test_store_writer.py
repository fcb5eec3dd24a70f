"""Database.write: a whole write transaction handed over at once (SQLite: to the writer thread, store/writer.py).
It must commit what it did, undo everything on an error, survive its caller's cancellation without losing or
half-doing work, take turns with the other writers of the process, and stop its thread on close."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from csbot.store.db import Database, Tx
from csbot.store.models import Shop


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url)
    yield database
    await database.close()


async def _add_shop(tx: Tx, shop_id: str, *, fail: bool = False, wait: asyncio.Event | None = None) -> int:
    tx.add(Shop(id=shop_id, name=f"shop {shop_id}"))
    await tx.flush()
    if wait is not None:
        await wait.wait()
    if fail:
        raise LookupError(f"{shop_id} failed after its insert")
    return threading.get_ident()


async def _shops(db: Database) -> list[str]:
    async with db.read() as tx:
        return list((await tx.execute(select(Shop.id).order_by(Shop.id))).scalars())


async def test_write_commits_and_returns_the_result(db: Database) -> None:
    thread = await db.write(_add_shop, "s-1")
    assert await _shops(db) == ["s-1"]
    # SQLite: the transaction ran on the writer thread, not on the event loop's; PostgreSQL: right here.
    assert (thread != threading.get_ident()) is (db.dialect == "sqlite")


async def test_an_error_undoes_the_whole_transaction_and_reaches_the_caller(db: Database) -> None:
    with pytest.raises(LookupError, match="s-2 failed"):
        await db.write(functools.partial(_add_shop, fail=True), "s-2")
    assert await _shops(db) == []
    await db.write(_add_shop, "s-3")  # the writer is still usable
    assert await _shops(db) == ["s-3"]


async def test_a_cancelled_caller_waits_for_its_transaction_which_commits(db: Database) -> None:
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The event is set from the writer's side of the fence: the loop that waits on it is the writer's own on
    # SQLite, so set it thread-safely from wherever the waiting coroutine lives.
    waiting: dict[str, asyncio.AbstractEventLoop] = {}
    started = threading.Event()  # crosses threads on SQLite

    async def add_when_released(tx: Tx) -> int:
        waiting["loop"] = asyncio.get_running_loop()
        started.set()
        return await _add_shop(tx, "s-4", wait=release)

    task = asyncio.create_task(db.write(add_when_released))
    assert await asyncio.to_thread(started.wait, 10)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the transaction, which holds the write turn
    (waiting["loop"].call_soon_threadsafe if waiting["loop"] is not loop else loop.call_soon)(release.set)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _shops(db) == ["s-4"]  # the work was done once, not lost and not half-done


async def test_writes_queued_meanwhile_share_a_transaction_and_fail_alone(db: Database) -> None:
    """Group commit (SQLite): the writes that queue up while one runs go together in the next transaction,
    each in its own savepoint: one that fails is undone alone and its caller gets the error; the rest commit.
    PostgreSQL runs each in a transaction of its own, with the same outcome for the callers."""
    release = asyncio.Event()
    waiting: dict[str, asyncio.AbstractEventLoop] = {}
    started = threading.Event()

    async def first(tx: Tx) -> int:
        waiting["loop"] = asyncio.get_running_loop()
        started.set()
        return await _add_shop(tx, "g-0", wait=release)

    async def add(tx: Tx, shop_id: str, fail: bool) -> tuple[int, bool]:
        await _add_shop(tx, shop_id, fail=fail)
        return id(tx.sync_session.get_transaction()), bool(tx.info)  # the session's notes start empty

    async def note_and_add(tx: Tx, shop_id: str) -> tuple[int, bool]:
        tx.info["note"] = shop_id
        return await add(tx, shop_id, False)

    head = asyncio.create_task(db.write(first))
    assert await asyncio.to_thread(started.wait, 10)
    queued = [asyncio.create_task(db.write(note_and_add, "g-1"))]
    queued += [asyncio.create_task(db.write(add, f"g-{i}", i == 3)) for i in range(2, 6)]
    await asyncio.sleep(0.05)
    waiting["loop"].call_soon_threadsafe(release.set)
    await head
    outcomes = await asyncio.gather(*queued, return_exceptions=True)
    assert isinstance(outcomes[2], LookupError) and "g-3 failed" in str(outcomes[2])
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(done) == 4 and all(notes is (i == 0) for i, (_, notes) in enumerate(done))
    assert await _shops(db) == ["g-0", "g-1", "g-2", "g-4", "g-5"]
    if db.dialect == "sqlite":
        assert len({transaction for transaction, _ in done}) == 1  # one BEGIN … COMMIT for the four


async def test_writers_of_both_kinds_take_turns(db: Database) -> None:
    """Forty writes at once, half handed to `write`, half in `transaction()` blocks: all commit, none fails
    with "database is locked" (SQLite) or a deadlock (PostgreSQL)."""

    async def in_block(shop_id: str) -> None:
        async with db.transaction() as tx:
            await _add_shop(tx, shop_id)

    jobs = [db.write(_add_shop, f"w-{i:02}") if i % 2 else in_block(f"t-{i:02}") for i in range(40)]
    await asyncio.gather(*jobs)
    async with db.read() as tx:
        assert (await tx.execute(select(func.count()).select_from(Shop))).scalar_one() == 40


def _writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "csbot-sqlite-writer" and t.is_alive()}


async def test_close_stops_the_writer_thread(database_url: str) -> None:
    before = _writer_threads()
    database = await Database.open(database_url)
    await database.write(_add_shop, "s-5")
    started = _writer_threads() - before
    assert len(started) == (1 if database.dialect == "sqlite" else 0)
    await database.close()
    assert not (_writer_threads() & started)
