"""Console: live updates. A WebSocket per open console; a hub fans "something changed" out to them.

The hub is in-process: with several csbot instances behind a load balancer, a console only hears about
webhooks that reached its own instance. Consoles therefore also refetch on reconnect and every 30 s, so
a missed event only delays; cross-instance fan-out (PostgreSQL LISTEN/NOTIFY) is a later step.
Events carry ids and kinds only, never buyer text: the page fetches what it shows through /api."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from csbot.console.auth import Forbidden

log = logging.getLogger(__name__)

Event = dict[str, Any]


class Hub:
    """Subscribers are bounded queues: a stuck browser loses events (and refetches), never blocks a webhook."""

    def __init__(self, maxsize: int = 100) -> None:
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._maxsize = maxsize

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
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    def close(self) -> None:
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


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

