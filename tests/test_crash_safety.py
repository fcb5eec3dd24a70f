"""Crash safety: a platform sends 1,000 signed messages to a real `python -m csbot serve`, which is SIGKILLed
mid-stream and restarted; the platform keeps re-sending what was not acknowledged (same webhook-id).

Every acknowledged message is stored, none twice; every automatic reply an answer promised reaches the
platform under its reply_id (at least once; again only if it was being sent at the kill)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from csbot.store.models import InboundEvent, Message, OutboxItem
from tests.procs import (
    SMALL_POOL,
    Ack,
    Event,
    Server,
    closed_all_week_toml,
    final_state,
    message,
    post_until_acknowledged,
    settled,
    start_platform,
    until,
)

pytestmark = pytest.mark.slow

MESSAGES = 1000
CONCURRENCY = 16
KILL_AFTER = 300  # acknowledged messages when the server is SIGKILLed
TEXTS = ("在吗 包邮吗", "这款有现货吗", "今天下单什么时候发货", "有优惠券吗")

CONFIG = """
[outbox]
poll_interval = 0.1
base_delay = 0.2
timeout = 2.0
lease_seconds = 3.0     # a reply the killed process was sending goes again this long after its claim

[ticker]
interval = 0.2
""" + closed_all_week_toml()  # closed: each new conversation gets exactly one automatic reply


async def test_sigkill_while_messages_arrive_loses_nothing_and_stores_nothing_twice(
        tmp_path: Path, database_url: str, aiohttp_server: Callable[..., Any]) -> None:
    platform = await start_platform(aiohttp_server, delay=0.05)
    server = Server(tmp_path, database=database_url, outbound=platform.url, extra=CONFIG, env=SMALL_POOL)
    server.start()
    acks: dict[str, Ack] = {}
    problems: list[str] = []
    killed_with = -1
    try:
        async with aiohttp.ClientSession() as session:
            await server.started(session)
            gate = asyncio.Semaphore(CONCURRENCY)

            async def send(n: int) -> None:
                event = Event(message(f"c-{n}", f"m-{n}", TEXTS[n % len(TEXTS)], f"b-{n}"))
                async with gate:
                    acks[f"m-{n}"] = await post_until_acknowledged(session, lambda: [server.webhook], event,
                                                                   problems=problems)

            async def crash_and_restart() -> None:
                nonlocal killed_with

                async def under_way() -> bool:
                    return len(acks) >= KILL_AFTER

                await until(under_way, 60, f"{KILL_AFTER} acknowledged messages")
                server.kill()
                killed_with = len(acks)
                server.start()
                await server.started(session)

            await asyncio.gather(*(send(n) for n in range(MESSAGES)), crash_and_restart())
            promised = {sent["reply_id"] for ack in acks.values() for sent in ack.answer["sent"]}

            async def all_delivered() -> bool:
                return platform.distinct >= promised

            await until(all_delivered, 60, f"{len(promised)} replies at the platform")
            await settled(database_url)
    finally:
        server.stop()

    assert problems == []
    assert KILL_AFTER <= killed_with < MESSAGES
    assert any(ack.attempts > 1 for ack in acks.values()), "no request was cut off by the kill"
    assert [len(ack.answer["sent"]) for ack in acks.values()] == [1] * MESSAGES
    async with final_state(database_url) as tx:
        stored = list((await tx.execute(select(Message.external_id).where(Message.direction == "in"))).scalars())
        events = (await tx.execute(select(func.count(InboundEvent.id)))).scalar_one()
        outbox = {i.reply_id: i for i in (await tx.execute(select(OutboxItem))).scalars()}
    # Every acknowledged message is stored, once: a retry of one that committed before the kill got the
    # stored answer (the same reply_id), not a second message or a second reply.
    assert sorted(stored) == sorted(acks) and len(set(stored)) == MESSAGES
    assert events == MESSAGES
    assert set(outbox) == promised and len(promised) == MESSAGES
    assert platform.distinct == promised
    assert {item.status for item in outbox.values()} == {"delivered"}
    # At-least-once across the crash, once otherwise: only rows claimed again after a lease are repeated.
    redelivered = platform.redelivered()
    assert all(outbox[rid].attempts > 1 for rid in redelivered)
    assert len(platform.deliveries) - len(platform.distinct) <= 50  # one outbox batch at most was in flight
