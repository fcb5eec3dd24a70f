"""Kill -9 with reminders due: the real `python -m csbot serve` process on a SQLite file and the real clock,
killed while it sends, restarted; every reminder reaches the platform once (deduplicated by reply_id)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from csbot.ingest.signatures import signed_headers, verify
from csbot.store.db import Database
from csbot.store.models import Order, Reminder
from tests.conftest import SECRET, TOKEN

ORDERS = 20
SPREAD = 0.1  # seconds between the orders, so their reminders come due one after another
STAGE_1, STAGE_2 = 3, 10  # seconds after the order

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Platform:
    """The shop platform: takes signed replies, remembers every delivery by webhook-id (= reply_id)."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        verify((SECRET,), request.headers, body, now=datetime.now(UTC), tolerance=300)
        await asyncio.sleep(0.1)  # a platform takes a moment: a kill finds deliveries in flight
        self.deliveries.append(json.loads(body) | {"_webhook_id": request.headers["webhook-id"]})
        return web.Response(status=204)

    @property
    def distinct(self) -> set[str]:
        return {d["_webhook_id"] for d in self.deliveries}


@pytest.fixture
async def platform(aiohttp_server: Callable[..., Any]) -> AsyncIterator[tuple[Platform, str]]:
    p = Platform()
    app = web.Application()
    app.router.add_post("/replies", p.handle)
    server = await aiohttp_server(app)
    yield p, str(server.make_url("/replies"))


def write_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "csbot.toml"
    config.write_text(f"""
database = "sqlite:///{tmp_path / 'csbot.db'}"
port = {port}

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
""", encoding="utf-8")
    return config


def start(config: Path, outbound: str, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"CSBOT_WEBHOOK_SECRET": SECRET, "CSBOT_API_TOKEN": TOKEN, "CSBOT_OUTBOUND_URL": outbound}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "csbot", "--config", str(config), "serve"],
                                cwd=config.parent, env=env, stdout=out, stderr=subprocess.STDOUT)


async def until(condition: Callable[[], Any], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {limit} s waiting for {what}")
        await asyncio.sleep(0.05)


async def healthy(session: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with session.get(f"{base}/healthz") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def test_sigkill_with_reminders_due_sends_each_once(tmp_path: Path, platform: tuple[Platform, str]) -> None:
    receiver, outbound = platform
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, port)
    log = tmp_path / "serve.log"
    proc = start(config, outbound, log)
    try:
        async with aiohttp.ClientSession() as session:
            await until(lambda: healthy(session, base), 20, "csbot to start")
            now = datetime.now(UTC)
            for n in range(ORDERS):
                event = {"type": "order.created", "shop": "demo", "order": {
                    "id": f"o-{n}", "buyer": {"id": f"b-{n}", "nick": "小王"}, "amount": "199.00",
                    "items": [{"title": "羊毛围巾", "qty": 1}],
                    "created_at": (now + timedelta(seconds=n * SPREAD)).isoformat(),
                    "auto_close_at": (now + timedelta(hours=1)).isoformat()}}
                body = json.dumps(event, ensure_ascii=False).encode()
                headers = signed_headers(SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
                async with session.post(f"{base}/webhooks/generic", data=body, headers=headers) as resp:
                    assert resp.status == 200, await resp.text()

            # Kill -9 as soon as the first stage-1 replies arrive: the rest are due, some mid-flight.
            async def first_arrived() -> bool:
                return len(receiver.deliveries) >= 1

            await until(first_arrived, 20, "the first stage-1 reminder")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            killed_with = len(receiver.distinct)

            proc = start(config, outbound, log)
            await until(lambda: healthy(session, base), 20, "csbot to restart")

            async def stage_1_arrived() -> bool:
                return len(receiver.distinct) >= ORDERS

            await until(stage_1_arrived, 20, "every stage-1 reminder")
            # Kill again just before stage 2 and stay down past it: stage 2 comes due while nothing runs.
            await asyncio.sleep(max(0.0, (now + timedelta(seconds=STAGE_2 - 0.5) - datetime.now(UTC)).total_seconds()))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            down_with = len(receiver.distinct)
            last_due = now + timedelta(seconds=STAGE_2 + ORDERS * SPREAD + 0.5)
            await asyncio.sleep(max(0.0, (last_due - datetime.now(UTC)).total_seconds()))
            proc = start(config, outbound, log)

            async def all_arrived() -> bool:
                return len(receiver.distinct) >= 2 * ORDERS

            await until(all_arrived, 25, f"{2 * ORDERS} distinct reminders")
            await asyncio.sleep(1.0)  # anything sent twice would show up now
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

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

    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'csbot.db'}", create=False)
    try:
        async with db.read() as tx:
            rows = (await tx.execute(select(Reminder, Order.external_id).join(Order))).all()
    finally:
        await db.close()
    # attempts == 1: a claim only counts once committed, and it commits together with the outbox row
    assert [(r.status, r.attempts) for r, _ in rows] == [("sent", 1)] * (2 * ORDERS)
    assert {r.reply_id for r, _ in rows} == receiver.distinct
