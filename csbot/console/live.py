"""Console: live updates. A WebSocket per open console; a hub fans "something changed" out to them.

Several csbot instances on one PostgreSQL database behave as one: each instance's hub hands what it
publishes to a `PgRelay`, which NOTIFYs the other instances (channel `csbot_live`) and LISTENs on a
dedicated connection for theirs. An instance delivers its own events to its own consoles at once and
drops its own NOTIFYs when they come back (they carry its instance id), so nothing arrives twice.
On SQLite the hub stays in-process (one instance per database file). Consoles also refetch on
reconnect and every 30 s, and the relay tells them to refetch after its listener reconnects, so a
missed event only delays. Events carry ids and kinds only, never buyer text: the page fetches what it
shows through /api."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from aiohttp import WSMsgType, web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from csbot.console.auth import Forbidden
from csbot.outbox.delivery import Backoff
from csbot.store.db import Database

log = logging.getLogger(__name__)

Event = dict[str, Any]
CHANNEL = "csbot_live"
LISTENER_NAME = "csbot-live"  # application_name of the listening connection (visible in pg_stat_activity)
MAX_PAYLOAD = 7999  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
RESYNC: Event = {"type": "changed", "source": "resync"}  # the listener was away: refetch everything
LISTEN_BACKOFF = Backoff(0.5, 30.0)  # listener reconnects: 0.25–0.5 s, doubling, at most 30 s (jittered)
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Hub:
    """Subscribers are bounded queues: a stuck browser loses events (and refetches), never blocks a webhook."""

    def __init__(self, maxsize: int = 100) -> None:
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._maxsize = maxsize
        self.relay: PgRelay | None = None  # set while the app runs on PostgreSQL

    def subscribe(self) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue(self._maxsize)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        self._subscribers.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Event) -> None:
        """An event from this instance: to its consoles now, and to the other instances through the relay."""
        self.deliver(event)
        if self.relay is not None:
            self.relay.send(event)

    def deliver(self, event: Event) -> None:
        """To this instance's consoles only (the relay calls this with the other instances' events)."""
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    def close(self) -> None:
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


@contextlib.asynccontextmanager
async def relayed(hub: Hub, db: Database) -> AsyncIterator[None]:
    """The hub's cross-instance relay for as long as the block runs: LISTEN/NOTIFY on PostgreSQL, none on SQLite."""
    if db.dialect != "postgresql":
        yield
        return
    relay = PgRelay(db.engine, hub)
    await relay.start()
    hub.relay = relay
    try:
        yield
    finally:
        hub.relay = None
        await relay.close()


class PgRelay:
    """PostgreSQL LISTEN/NOTIFY between instances.

    Sending never blocks a request: `send` queues the event and a task NOTIFYs on a pool connection (the
    request's transaction has committed by then), folding a burst of equal events into one NOTIFY.
    Receiving needs a connection of its own that stays in LISTEN, so it is a plain asyncpg connection
    outside SQLAlchemy's pool; when it drops, it reconnects with backoff and tells the consoles to refetch.
    """

    def __init__(self, engine: AsyncEngine, hub: Hub, *, keepalive: float = 30.0,
                 backoff: Backoff = LISTEN_BACKOFF, maxsize: int = 1000) -> None:
        self.instance = uuid.uuid4().hex  # tags our NOTIFYs, so we skip them when they come back
        self._engine = engine
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._hub = hub
        self._keepalive = keepalive
        self._backoff = backoff
        self._rng = random.Random()
        self._outgoing: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)  # None: stop after what is queued
        self._tasks: list[asyncio.Task[None]] = []
        self.reconnects = 0  # listener reconnections after the first connect

    async def start(self) -> None:
        """Connect the listener before the app serves (so no event is missed at start); if PostgreSQL is
        unreachable now, keep trying in the background instead of refusing to start."""
        first: tuple[asyncpg.Connection, asyncio.Event] | None = None
        try:
            first = await self._connect()
        except _DB_ERRORS as exc:
            log.warning("live: listener could not connect (%s); retrying in the background", type(exc).__name__)
        self._tasks = [asyncio.create_task(self._listen(first), name="csbot-live-listen"),
                       asyncio.create_task(self._send_loop(), name="csbot-live-notify")]

    async def close(self) -> None:
        if not self._tasks:
            return
        listener, sender = self._tasks
        self._tasks = []
        listener.cancel()
        # Let the sender finish what is queued: cancelling a NOTIFY mid-query would discard its pooled
        # connection. A sender stuck on an unreachable server is cancelled after 5 s.
        try:
            self._outgoing.put_nowait(None)
        except asyncio.QueueFull:
            sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(sender, timeout=5)
        with contextlib.suppress(asyncio.CancelledError):
            await listener

    def send(self, event: Event) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # PostgreSQL is slow or away: consoles refetch anyway
            self._outgoing.put_nowait(event)

    # --- sending ------------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            payloads = dict.fromkeys(json.dumps({"origin": self.instance, "event": e}, sort_keys=True)
                                     for e in batch if e is not None)
            for payload in payloads:
                await self._notify(payload)
            if None in batch:
                return

    async def _notify(self, payload: str) -> None:
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning("live: event of %d bytes not relayed (NOTIFY takes < 8000)", len(payload.encode()))
            return
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                                   {"channel": CHANNEL, "payload": payload})
                await conn.commit()
        except (SQLAlchemyError, *_DB_ERRORS) as exc:
            log.warning("live: NOTIFY failed (%s); other instances' consoles refetch later", type(exc).__name__)

    # --- receiving ----------------------------------------------------------------------------------

    async def _connect(self) -> tuple[asyncpg.Connection, asyncio.Event]:
        conn = await asyncpg.connect(self._dsn, timeout=10, server_settings={"application_name": LISTENER_NAME})
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._received)
        except BaseException:
            conn.terminate()
            raise
        return conn, lost

    async def _listen(self, current: tuple[asyncpg.Connection, asyncio.Event] | None) -> None:
        failures = 0
        while True:
            if current is None:
                try:
                    current = await self._connect()
                except _DB_ERRORS as exc:
                    failures += 1
                    delay = self._backoff.delay(failures, self._rng)
                    log.warning("live: listener reconnect failed (%s); next try in %.1f s", type(exc).__name__, delay)
                    await asyncio.sleep(delay)
                    continue
                self.reconnects += 1
                log.info("live: listener reconnected after %d failed tries", failures)
                self._hub.deliver(RESYNC)  # whatever was NOTIFYed while we were away is lost: refetch
            failures = 0
            conn, lost = current
            try:
                await self._watch(conn, lost)
            finally:
                conn.terminate()
            log.warning("live: listener connection lost; reconnecting")
            current = None

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is gone. asyncpg reports a closed socket; a half-open one (a
        vanished peer, a NAT timeout) only shows up when we ask something, hence the keepalive query."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), self._keepalive)
            except TimeoutError:
                try:
                    await conn.fetchval("SELECT 1", timeout=10)
                except _DB_ERRORS:
                    return

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return  # not ours: someone else NOTIFYs on the channel
        if not isinstance(message, dict) or not isinstance(message.get("event"), dict):
            return
        if message.get("origin") != self.instance:  # our own were delivered locally already
            self._hub.deliver(message["event"])


def changed_event(request: web.Request, response: web.StreamResponse) -> Event | None:
    """A successful write through a webhook or the API changes the queue; reads change nothing."""
    if request.method not in ("POST", "DELETE") or response.status != 200:
        return None
    if request.path.startswith("/webhooks/"):
        return {"type": "changed", "source": "webhook"}
    if request.path.startswith("/api/"):
        return {"type": "changed", "source": "api"}
    return None


async def live_socket(request: web.Request, hub: Hub) -> web.WebSocketResponse:
    # Browsers send cookies on cross-site WebSocket handshakes too: only our own pages may connect.
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise Forbidden("cross-origin WebSocket refused")
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    queue = hub.subscribe()
    reader = asyncio.create_task(_read_until_closed(ws))
    try:
        await ws.send_json({"type": "hello"})
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            event = getter.result()
            if event is None or ws.closed:
                break
            await ws.send_json(event)
    except ConnectionResetError:
        pass  # the browser went away; cancellation (server shutdown) propagates
    finally:
        hub.unsubscribe(queue)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.close()
    return ws


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    """Reading is what processes the browser's close frame and pongs; the page sends nothing else."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break

