"""Kill -9 with reminders due: the real `python -m csbot serve` process on a SQLite file and the real clock,
killed while it sends, restarted; every reminder reaches the platform once (deduplicated by reply_id)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from csbot.store.models import Order, Reminder
from tests.procs import Event, Server, final_state, order_created, start_platform, until

ORDERS = 20
SPREAD = 0.1  # seconds between the orders, so their reminders come due one after another
STAGE_1, STAGE_2 = 3, 10  # seconds after the order

pytestmark = pytest.mark.slow

CONFIG = f"""
[outbox]
poll_interval = 0.1
base_delay = 0.2

[ticker]
interval = 0.2

[shops.demo]
name = "示例小店"

[shops.demo.reminders]
payment_stages = [{STAGE_1}, {STAGE_2}]
min_remaining = 0
last_call_before_close = false
quiet_hours = ""          # the real clock may be at any hour
max_per_buyer = 100
"""


async def test_sigkill_with_reminders_due_sends_each_once(tmp_path: Path,
                                                          aiohttp_server: Callable[..., Any]) -> None:
    receiver = await start_platform(aiohttp_server)
    url = f"sqlite+aiosqlite:///{tmp_path / 'csbot.db'}"
    server = Server(tmp_path, database=url, outbound=receiver.url, extra=CONFIG)
    server.start()
    try:
        async with aiohttp.ClientSession() as session:
            await server.started(session)
            now = datetime.now(UTC)
            for n in range(ORDERS):
                created = now + timedelta(seconds=n * SPREAD)
                event = Event(order_created(f"o-{n}", f"b-{n}", created, now + timedelta(hours=1)))
                async with session.post(server.webhook, data=event.body, headers=event.headers()) as resp:
                    assert resp.status == 200, await resp.text()

            # Kill -9 as soon as the first stage-1 replies arrive: the rest are due, some mid-flight.
            async def first_arrived() -> bool:
                return len(receiver.deliveries) >= 1

            await until(first_arrived, 20, "the first stage-1 reminder")
            server.kill()
            killed_with = len(receiver.distinct)

            server.start()
            await server.started(session)

            async def stage_1_arrived() -> bool:
                return len(receiver.distinct) >= ORDERS

            await until(stage_1_arrived, 20, "every stage-1 reminder")
            # Kill again just before stage 2 and stay down past it: stage 2 comes due while nothing runs.
            await asyncio.sleep(max(0.0, (now + timedelta(seconds=STAGE_2 - 0.5) - datetime.now(UTC)).total_seconds()))
            server.kill()
            down_with = len(receiver.distinct)
            last_due = now + timedelta(seconds=STAGE_2 + ORDERS * SPREAD + 0.5)
            await asyncio.sleep(max(0.0, (last_due - datetime.now(UTC)).total_seconds()))
            server.start()

            async def all_arrived() -> bool:
                return len(receiver.distinct) >= 2 * ORDERS

            await until(all_arrived, 25, f"{2 * ORDERS} distinct reminders")
            await asyncio.sleep(1.0)  # anything sent twice would show up now
    finally:
        server.stop()

    assert killed_with < ORDERS, "the first kill came too late to interrupt stage 1"
    assert down_with == ORDERS, "stage 2 must come due while csbot is down"
    # Every reminder went out under exactly one reply_id; a redelivery of the same reply_id (the outbox is
    # at-least-once) is dropped by the platform, so what counts is one distinct id per reminder.
    per_buyer: dict[str, set[str]] = {}
    for d in receiver.deliveries:
        per_buyer.setdefault(d["buyer_id"], set()).add(d["_webhook_id"])
    assert {b: len(ids) for b, ids in per_buyer.items()} == {f"b-{n}": 2 for n in range(ORDERS)}
    assert len(receiver.distinct) == 2 * ORDERS
    assert len(receiver.deliveries) - len(receiver.distinct) <= ORDERS  # redeliveries only of the in-flight ones

    async with final_state(url) as tx:
        rows = (await tx.execute(select(Reminder, Order.external_id).join(Order))).all()
    # attempts == 1: a claim only counts once committed, and it commits together with the outbox row
    assert [(r.status, r.attempts) for r, _ in rows] == [("sent", 1)] * (2 * ORDERS)
    assert {r.reply_id for r, _ in rows} == receiver.distinct
