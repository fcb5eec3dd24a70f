"""Test support for the process-level tests: real `python -m csbot serve` processes on a real database,
a client that signs events like a platform, and the platform's end of the outbox (the one thing faked).

Used by test_reminders_crash.py, test_multi_instance.py, test_crash_safety.py and test_shutdown.py.
"""

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
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select, text

from csbot.ingest.signatures import signed_headers, verify
from csbot.store.db import Database, Tx
from csbot.store.models import OutboxItem, Reminder
from tests.conftest import SECRET, TOKEN

START_LIMIT = 30.0  # seconds a csbot process may take to answer /healthz (2 shared cores, library load)
STOP_LIMIT = 20.0  # seconds a SIGTERMed csbot may take to exit
# Several instances (and other test runs) share one PostgreSQL server: keep each instance's pool small.
SMALL_POOL = {"CSBOT_DB_POOL_SIZE": "3", "CSBOT_DB_MAX_OVERFLOW": "3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(condition: Callable[[], Awaitable[bool]], limit: float, what: str, *, poll: float = 0.05) -> None:
    """Poll `condition` until it holds; fail the test naming `what` after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {limit} s waiting for {what}")
        await asyncio.sleep(poll)


# --- the platform --------------------------------------------------------------------------------------


def connections_to(port: int) -> tuple[int, int]:
    """(established connections to this local port, bytes on them the listening process has not read yet), from
    the kernel's socket tables (Linux): a request the server has read is one its event loop is handling."""
    connections = unread = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        for line in path.read_text().splitlines()[1:] if path.exists() else ():
            _, local, _, state, queues, *_ = line.split()
            if int(local.rsplit(":", 1)[1], 16) == port and state == "01":  # 01: ESTABLISHED
                connections += 1
                unread += int(queues.split(":")[1], 16)  # rx_queue
    return connections, unread


class Platform:
    """The shop platform: takes signed replies, remembers every delivery by webhook-id (= reply_id).

    `delay` stands for a platform that takes a moment, so a kill finds deliveries in flight."""

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.deliveries: list[dict[str, Any]] = []
        self.receiving = 0  # requests that arrived, finished or not
        self.url = ""

    @property
    def in_flight(self) -> int:
        return self.receiving - len(self.deliveries)

    async def handle(self, request: web.Request) -> web.Response:
        self.receiving += 1
        body = await request.read()
        verify((SECRET,), request.headers, body, now=datetime.now(UTC), tolerance=300)
        await asyncio.sleep(self.delay)
        self.deliveries.append(json.loads(body) | {"_webhook_id": request.headers["webhook-id"],
                                                   "_idempotency_key": request.headers.get("Idempotency-Key")})
        return web.Response(status=204)

    @property
    def distinct(self) -> set[str]:
        return {d["_webhook_id"] for d in self.deliveries}

    def redelivered(self) -> set[str]:
        """Reply ids that arrived more than once (the receiver drops the repeats by reply id)."""
        return {rid for rid, n in Counter(d["_webhook_id"] for d in self.deliveries).items() if n > 1}


async def start_platform(aiohttp_server: Callable[..., Awaitable[Any]], delay: float = 0.1) -> Platform:
    platform = Platform(delay)
    app = web.Application()
    app.router.add_post("/replies", platform.handle)
    server = await aiohttp_server(app)
    platform.url = str(server.make_url("/replies"))
    return platform


# --- csbot processes -----------------------------------------------------------------------------------


def write_config(directory: Path, *, database: str, port: int, extra: str = "") -> Path:
    """A csbot.toml for one instance: its database and port, and whatever sections the test needs."""
    config = directory / f"csbot-{port}.toml"
    config.write_text(f'database = "{database}"\nport = {port}\n{extra}', encoding="utf-8")
    return config


class Server:
    """One `python -m csbot serve` process; stdout and stderr go to files the test can read afterwards."""

    def __init__(self, directory: Path, *, database: str, outbound: str, extra: str = "", name: str = "csbot",
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = write_config(directory, database=database, port=self.port, extra=extra)
        self.stdout = directory / f"{name}.out"
        self.stderr = directory / f"{name}.err"
        self._env = os.environ | {"CSBOT_WEBHOOK_SECRET": SECRET, "CSBOT_API_TOKEN": TOKEN,
                                  "CSBOT_OUTBOUND_URL": outbound, "PYTHONUNBUFFERED": "1"} | (env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def webhook(self) -> str:
        return f"{self.base}/webhooks/generic"

    def start(self) -> None:
        with open(self.stdout, "ab") as out, open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "csbot", "--config", str(self.config), "serve"],
                                         cwd=self.config.parent, env=self._env, stdout=out, stderr=err)

    async def healthy(self, session: aiohttp.ClientSession) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"csbot on port {self.port} exited with {self.proc.returncode}:\n{self.errors()[-3000:]}")
        try:
            async with session.get(f"{self.base}/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    async def started(self, session: aiohttp.ClientSession) -> None:
        await until(lambda: self.healthy(session), START_LIMIT, f"csbot on port {self.port} to start", poll=0.1)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs, as when the machine or the OOM killer takes the process."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    async def exited(self, limit: float = STOP_LIMIT) -> int:
        """Wait (without blocking the loop) for the process to end; fail after `limit` seconds."""
        proc = self.proc
        assert proc is not None

        async def ended() -> bool:
            return proc.poll() is not None

        await until(ended, limit, f"csbot on port {self.port} to exit", poll=0.05)
        return proc.returncode

    def stop(self) -> None:
        """Test teardown: end the process whatever state it is in."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_LIMIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def errors(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace") if self.stderr.exists() else ""


@asynccontextmanager
async def database(url: str) -> AsyncIterator[Database]:
    """The test's own connection to the instances' database, to look at the rows (never to migrate)."""
    db = await Database.open(url, create=False, pool_size=2)
    try:
        yield db
    finally:
        await db.close()


async def settled(url: str, limit: float = 30.0) -> None:
    """Wait until nothing due is left in progress: no outbox row pending or being sent, no reminder due or
    claimed (follow-ups planned for hours later do not count).

    One statement, so one snapshot: read as two, a batch of reminders committed between them (its reminders
    read as sent, its outbox rows not yet seen) looked settled while its replies were still to go out."""
    async with database(url) as db:

        async def quiet() -> bool:
            now = datetime.now(UTC)
            outbox = (select(func.count(OutboxItem.id))
                      .where(OutboxItem.status.in_(("pending", "sending"))).scalar_subquery())
            reminders = (select(func.count(Reminder.id))
                         .where((Reminder.status == "claimed") | ((Reminder.status == "pending")
                                                                  & (Reminder.due_at <= now))).scalar_subquery())
            async with db.read() as tx:
                busy = (await tx.execute(select(outbox + reminders))).scalar_one()
            return busy == 0

        await until(quiet, limit, "the outbox and the reminders to settle", poll=0.2)


@asynccontextmanager
async def final_state(url: str, limit: float = 30.0) -> AsyncIterator[Tx]:
    """A read of what the stopped instances left, once no session of theirs is open any more: a process
    SIGKILLed while its COMMIT was on the way has exited before its PostgreSQL session has ended (and maybe
    committed), and a read that ran meanwhile would see half of the batch. SQLite's commits end with the
    process that makes them."""
    async with database(url) as db:
        if db.dialect == "postgresql":

            async def gone() -> bool:
                async with db.read() as tx:
                    others = (await tx.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"))).scalar_one()
                return others == 0

            await until(gone, limit, "the stopped instances' database sessions to end", poll=0.1)
        async with db.read() as tx:
            yield tx


# --- the platform's side of the webhooks -----------------------------------------------------------------


class Event:
    """One signed webhook delivery: the body and its webhook-id never change between retries; the
    timestamp (and so the signature) is fresh on each attempt, as a platform's retry would be."""

    def __init__(self, event: dict[str, Any], webhook_id: str | None = None) -> None:
        self.body = json.dumps(event, ensure_ascii=False).encode()
        self.webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"

    def headers(self) -> dict[str, str]:
        headers = signed_headers(SECRET, self.webhook_id, int(time.time()), self.body)
        headers["content-type"] = "application/json"
        return headers


async def post(session: aiohttp.ClientSession, url: str, event: Event) -> tuple[int, Any]:
    async with session.post(url, data=event.body, headers=event.headers()) as resp:
        return resp.status, await resp.json(content_type=None)


@dataclass(frozen=True)
class Ack:
    status: int
    answer: Any
    attempts: int  # more than one: an instance was down or dropped the request


async def post_until_acknowledged(session: aiohttp.ClientSession, urls: Callable[[], list[str]], event: Event,
                                  *, problems: list[str], limit: float = 60.0) -> Ack:
    """POST until some instance answers 2xx, moving on to the next instance (as a load balancer would)
    when one cannot be reached or drops the connection; `urls()` is asked again on every attempt.

    A non-2xx answer is retried too but recorded in `problems`: a retry must not hide a server error."""
    deadline = time.monotonic() + limit
    attempt = 0
    while True:
        candidates = urls()
        url = candidates[attempt % len(candidates)]
        attempt += 1
        try:
            status, answer = await post(session, url, event)
            if 200 <= status < 300:
                return Ack(status, answer, attempt)
            problem = f"HTTP {status} for {event.webhook_id}: {answer}"
            problems.append(problem)
        except (aiohttp.ClientError, TimeoutError) as exc:  # the instance is down or went down mid-request
            problem = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            pytest.fail(f"event {event.webhook_id} not acknowledged within {limit} s; last: {problem}")
        await asyncio.sleep(0.1)


def order_created(order_id: str, buyer_id: str, created_at: datetime, auto_close_at: datetime) -> dict[str, Any]:
    return {"type": "order.created", "shop": "demo", "order": {
        "id": order_id, "buyer": {"id": buyer_id, "nick": "小王"}, "amount": "199.00",
        "items": [{"title": "羊毛围巾", "qty": 1}], "created_at": created_at.isoformat(),
        "auto_close_at": auto_close_at.isoformat()}}


def order_paid(order_id: str, at: datetime) -> dict[str, Any]:
    return {"type": "order.paid", "shop": "demo", "order": {"id": order_id, "at": at.isoformat()}}


def message(conversation_id: str, message_id: str, text: str, buyer_id: str) -> dict[str, Any]:
    return {"type": "message.created", "shop": "demo", "conversation_id": conversation_id,
            "buyer": {"id": buyer_id, "nick": "小王"},
            "message": {"id": message_id, "text": text, "sent_at": datetime.now(UTC).isoformat()}}


def closed_all_week_toml() -> str:
    """Shop hours for a shop closed from yesterday to the day after tomorrow (shop time): every new
    conversation gets exactly one automatic reply, the offline one, whatever the real clock says."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    days = ", ".join(f'"{today.fromordinal(today.toordinal() + d).isoformat()}"' for d in (-1, 0, 1, 2))
    return f"""
[shops.demo.hours]
timezone = "Asia/Shanghai"
holidays = [{days}]

[shops.demo.auto_send]
max_per_buyer_per_hour = false
max_per_shop_per_minute = false
"""
