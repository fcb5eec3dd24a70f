"""Graceful shutdown: SIGTERM to a real `python -m csbot serve` while webhooks are being handled and replies
are being delivered. The requests it holds complete, new connections are refused, the process exits 0, and
the reminder beat and the outbox worker stop without leaving a claim or a traceback behind."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from csbot.store.models import Message, OutboxItem
from tests.procs import (
    Event,
    Server,
    closed_all_week_toml,
    connections_to,
    final_state,
    message,
    start_platform,
    until,
)

pytestmark = pytest.mark.slow

IN_FLIGHT = 8  # webhooks being handled when SIGTERM arrives (fewer than the PostgreSQL pool's connections)
EARLIER = 5  # webhooks answered before, whose replies are being delivered at that moment

CONFIG = """
[outbox]
poll_interval = 0.1
timeout = 5.0

[ticker]
interval = 0.2
""" + closed_all_week_toml()  # closed: every conversation gets one automatic reply (an outbox row)


@asynccontextmanager
async def writes_held(url: str) -> AsyncIterator[Callable[[], Any]]:
    """Hold the database so that webhooks cannot commit: they stay in flight inside csbot until released.
    Yields a coroutine function telling how many of them wait (PostgreSQL; None on SQLite, which cannot tell)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(parsed.database), isolation_level=None, timeout=10)
        conn.execute("BEGIN IMMEDIATE")  # the one writer's lock; csbot's writers wait in SQLite's busy handler

        async def unknown() -> int | None:
            return None

        try:
            yield unknown
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    pg = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
    watcher = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        tx = pg.transaction()
        await tx.start()
        await pg.execute("LOCK TABLE inbound_events IN SHARE MODE")  # every webhook inserts its event first

        async def waiting() -> int | None:
            count: int = await watcher.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'inbound_events'::regclass")
            return count

        try:
            yield waiting
        finally:
            await tx.rollback()
    finally:
        await pg.close()
        await watcher.close()


async def test_sigterm_completes_requests_in_flight_and_exits_cleanly(
        tmp_path: Path, database_url: str, aiohttp_server: Callable[..., Any]) -> None:
    platform = await start_platform(aiohttp_server, delay=2.0)  # a delivery takes 2 s: some are mid-send
    server = Server(tmp_path, database=database_url, outbound=platform.url, extra=CONFIG)
    server.start()
    try:
        async with aiohttp.ClientSession() as session:
            await server.started(session)
            for n in range(EARLIER):
                event = Event(message(f"c-early-{n}", f"m-early-{n}", "在吗 包邮吗", f"b-early-{n}"))
                async with session.post(server.webhook, data=event.body, headers=event.headers()) as resp:
                    assert resp.status == 200, await resp.text()

            async def delivering() -> bool:
                return platform.in_flight >= 1

            await until(delivering, 10, "a reply to be on its way to the platform")

            held = [Event(message(f"c-{n}", f"m-{n}", "在吗 包邮吗", f"b-{n}")) for n in range(IN_FLIGHT)]
            sent = asyncio.Semaphore(0)

            async def body(event: Event) -> AsyncIterator[bytes]:
                yield event.body
                sent.release()  # aiohttp asks for more only once it has written the body to the socket

            async def post(event: Event) -> tuple[int, Any]:
                headers = event.headers() | {"content-length": str(len(event.body))}
                async with session.post(server.webhook, data=body(event), headers=headers) as resp:
                    return resp.status, await resp.json(content_type=None)

            async with writes_held(database_url) as waiting:
                posts = [asyncio.create_task(post(event)) for event in held]
                async with asyncio.timeout(20):
                    for _ in held:
                        await sent.acquire()

                async def all_waiting() -> bool:
                    count = await waiting()
                    if count is None:  # SQLite cannot tell: then at least every request is read by the server
                        connections, unread = connections_to(server.port)
                        return connections >= IN_FLIGHT and unread == 0
                    return bool(count == IN_FLIGHT)

                await until(all_waiting, 20, f"{IN_FLIGHT} webhooks waiting for the database")
                deliveries_in_flight = platform.in_flight
                server.terminate()

                async def refusing() -> bool:
                    # A bare connect: a request (even /healthz, which reads the database) could itself be held.
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
                    except (ConnectionRefusedError, ConnectionResetError):
                        # Refused, or reset when the listening socket closed with this connect in its backlog.
                        return True
                    writer.close()
                    await writer.wait_closed()
                    return False

                await until(refusing, 10, "csbot to stop accepting connections")
                # Still in flight: they need the database (what any finished one got, for the failure message).
                assert not any(p.done() for p in posts), [
                    p.exception() or p.result() for p in posts if p.done() and not p.cancelled()]
            answers = await asyncio.gather(*posts)
            returncode = await server.exited()
    finally:
        server.stop()

    assert deliveries_in_flight >= 1
    assert [status for status, _ in answers] == [200] * IN_FLIGHT
    assert [a["message_id"] for _, a in answers] == [f"m-{n}" for n in range(IN_FLIGHT)]
    assert all(len(a["sent"]) == 1 for _, a in answers)  # the offline reply, committed before the answer
    assert returncode == 0
    errors = server.errors()
    for sign in ("Traceback", "Task was destroyed", "Unclosed", "was never awaited", " ERROR "):
        assert sign not in errors, errors[-3000:]

    async with final_state(database_url) as tx:
        stored = set((await tx.execute(select(Message.external_id).where(Message.direction == "in"))).scalars())
        outbox = {i.reply_id: i.status for i in (await tx.execute(select(OutboxItem))).scalars()}
    assert stored == {f"m-early-{n}" for n in range(EARLIER)} | {f"m-{n}" for n in range(IN_FLIGHT)}
    assert len(outbox) == EARLIER + IN_FLIGHT
    # The worker finished the deliveries it had started: what the platform took is marked delivered and
    # nothing is left claimed ("sending" would mean a lease to wait out, and a repeat, on the next start).
    assert platform.distinct and {outbox[rid] for rid in platform.distinct} == {"delivered"}
    assert set(outbox.values()) <= {"delivered", "pending"}
