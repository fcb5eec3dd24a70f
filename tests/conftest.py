"""Shared fixtures: the real app on a real database file (or PostgreSQL), a clock we control, a signer,
and a fake outbound receiver (the only thing faked: it stands for the shop's platform)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.config import OutboxSettings, Settings, ShopSettings, bundled_dir
from csbot.ingest.signatures import signed_headers, verify
from csbot.keys import outbox_key
from csbot.library import LibrarySet, load_libraries
from csbot.match import Matcher
from csbot.store import schema

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKEN = "test-api-token"
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10AM = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # the demo shop is open 08:30-23:00
PG_DSN = os.environ.get("CSBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def knowledge() -> tuple[LibrarySet, Matcher]:
    """The bundled library and its matcher index, built once for the whole run."""
    libraries = load_libraries(bundled_dir("scripts_library"))
    return libraries, Matcher(libraries)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(MONDAY_10AM)


async def _pg_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL not reachable at {PG_DSN}: {exc}"
    await conn.close()
    return None


def _pg_url(name: str) -> str:
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def _pg_admin(sql: str) -> None:
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


# The schema comes from the migrations (csbot/store/migrations), as in production. Running them costs
# ~60 ms on SQLite and more on PostgreSQL, so each run migrates one template per database and every test
# gets a copy: a file copy for SQLite, CREATE DATABASE ... TEMPLATE for PostgreSQL.


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("schema") / "template.db"
    asyncio.run(schema.upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated to head once per run (named per run: several runs may share the server)."""
    problem = asyncio.run(_pg_reachable())
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem + " (CI must run the PostgreSQL tests)")
        pytest.skip(problem)
    name = f"csbot_tpl_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(schema.upgrade(_pg_url(name)))
        yield name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@asynccontextmanager
async def _fresh_postgres(template: str | None) -> AsyncIterator[str]:
    name = f"csbot_t_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    yield _pg_url(name)
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def postgres_url(postgres_template: str) -> AsyncIterator[str]:
    """A fresh database per test on the local PostgreSQL server, at the migrations' head; dropped afterwards."""
    async with _fresh_postgres(postgres_template) as url:
        yield url


@pytest.fixture
async def empty_postgres_url(postgres_template: str) -> AsyncIterator[str]:
    """A fresh database without any table (for migration tests)."""
    async with _fresh_postgres(None) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    url = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A database file at the migrations' head (a copy of the run's template)."""
    shutil.copyfile(sqlite_template, tmp_path / "csbot.db")
    return f"sqlite+aiosqlite:///{tmp_path / 'csbot.db'}"


@dataclass
class Receiver:
    """The shop platform's end of the outbox: records signed replies; can be told to fail."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    fail_always: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait (at most 10 s) until `count` replies arrived."""
        async with asyncio.timeout(10):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@pytest.fixture
async def receiver(aiohttp_server: Callable[..., Any], clock: FrozenClock) -> Receiver:
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        verify((SECRET,), request.headers, body, now=clock.now(), tolerance=300)
        if rec.fail_always or rec.fail_next > 0:
            rec.fail_next = max(0, rec.fail_next - 1)
            return web.Response(status=503)
        rec.received.append(json.loads(body) | {"_webhook_id": request.headers["webhook-id"]})
        rec.arrived.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/replies", handle)
    server: TestServer = await aiohttp_server(app)
    rec.url = str(server.make_url("/replies"))
    return rec


def make_settings(database_url: str, receiver_url: str | None = None, **shop: Any) -> Settings:
    demo = replace(ShopSettings("demo", "示例小店"), **shop)
    return Settings(
        database_url=database_url, webhook_secret=SECRET, outbound_url=receiver_url, api_token=TOKEN,
        shops={"demo": demo},
        outbox=OutboxSettings(max_attempts=3, base_delay=1.0, max_delay=10.0, poll_interval=0.05, timeout=2.0),
    )


@pytest.fixture
def settings(database_url: str, receiver: Receiver) -> Settings:
    return make_settings(database_url, receiver.url)


@pytest.fixture
async def client(settings: Settings, clock: FrozenClock, knowledge: tuple[LibrarySet, Matcher],
                 aiohttp_client: Callable[..., Any]) -> TestClient[Any, Any]:
    # aiohttp_client comes last so the app closes before the database it uses is dropped.
    libraries, matcher = knowledge
    return await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))


async def run_outbox_until_dead(client: TestClient[Any, Any], clock: FrozenClock, *, step: float = 0.5
                                ) -> list[dict[str, Any]]:
    """Drive the outbox worker, moving the clock past each backoff, until the newest row is dead-lettered
    (at most 200 passes); returns the outbox rows as the API lists them."""
    worker = client.app[outbox_key]
    for _ in range(200):
        await worker.run_once()
        rows: list[dict[str, Any]] = (await (await client.get("/api/outbox", headers=AUTH)).json())["items"]
        if rows and rows[0]["status"] == "dead":
            break
        clock.advance(step)
        await asyncio.sleep(0.01)
    return rows


Signer = Callable[..., tuple[bytes, dict[str, str]]]


@pytest.fixture
def sign(clock: FrozenClock) -> Signer:
    def signer(event: dict[str, Any], *, webhook_id: str | None = None, secret: str = SECRET,
               timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(event, ensure_ascii=False).encode()
        ts = int(clock.now().timestamp()) if timestamp is None else timestamp
        headers = signed_headers(secret, webhook_id or f"msg_{uuid.uuid4().hex}", ts, body)
        headers["content-type"] = "application/json"
        return body, headers

    return signer


def message_event(text: str, *, conversation_id: str = "c-1", message_id: str | None = None,
                  buyer_id: str = "b-1", nick: str = "小王", shop: str = "demo",
                  sent_at: str = "2026-11-23T10:00:00+08:00") -> dict[str, Any]:
    return {
        "type": "message.created", "shop": shop, "conversation_id": conversation_id,
        "buyer": {"id": buyer_id, "nick": nick},
        "message": {"id": message_id or f"m-{uuid.uuid4().hex[:10]}", "text": text, "sent_at": sent_at},
    }


@pytest.fixture
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
