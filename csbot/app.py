"""Wiring: make_app(settings, clock=...) builds the aiohttp application; lifecycles live in cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from csbot.clock import Clock, SystemClock
from csbot.config import Settings
from csbot.console import live
from csbot.console.metrics import Metrics, metrics_middleware
from csbot.ingest.connectors import build_connectors
from csbot.keys import (
    clock_key,
    connectors_key,
    db_key,
    deps_key,
    http_key,
    hub_key,
    metrics_key,
    outbox_key,
    reminders_key,
    settings_key,
)
from csbot.library import LibrarySet, load_libraries
from csbot.match import Matcher
from csbot.outbox.delivery import ChannelSenders, OutboxWorker
from csbot.pipeline import PipelineDeps
from csbot.reminders.ticker import ReminderClock, Ticker
from csbot.replies import Renderer
from csbot.store import repo
from csbot.store.db import Database
from csbot.web.middlewares import auth_middleware, error_middleware
from csbot.web.routes import setup_routes


def make_app(settings: Settings, *, clock: Clock | None = None, libraries: LibrarySet | None = None,
             matcher: Matcher | None = None) -> web.Application:
    """`libraries`/`matcher` may be passed in pre-built (tests build them once per session)."""
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[metrics_middleware(lambda a: a[metrics_key]), error_middleware,
                                       auth_middleware])
    app[settings_key] = settings
    app[clock_key] = clock or SystemClock()
    app[metrics_key] = Metrics()
    app[hub_key] = live.Hub()  # fan-out to open consoles; across instances on PostgreSQL (console/live.py)
    app[connectors_key] = connectors = build_connectors(settings)

    async def library_ctx(app: web.Application) -> AsyncIterator[None]:
        libs = libraries or load_libraries(settings.library_dir)
        app[deps_key] = PipelineDeps(
            settings=settings, libraries=libs, matcher=matcher or Matcher(libs),
            renderer=Renderer(settings.templates_dir), clock=app[clock_key],
            decision_hooks={name: c.after_decision for name, c in connectors.items()},
        )
        yield

    app.cleanup_ctx.extend([database_ctx, live_ctx, library_ctx, http_ctx, outbox_ctx, reminders_ctx])
    app.on_response_prepare.append(_publish_changes)
    app.on_shutdown.append(_close_live)  # open consoles' sockets end before the server waits for handlers
    setup_routes(app)
    return app


async def _publish_changes(request: web.Request, response: web.StreamResponse) -> None:
    """A webhook or API write that succeeded tells the open consoles to refetch (it has committed by now)."""
    event = live.changed_event(request, response)
    if event is not None:
        request.app[hub_key].publish(event)


async def _close_live(app: web.Application) -> None:
    app[hub_key].close()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    # Refuses to start (SchemaOutdated) on a PostgreSQL schema behind the code unless auto_upgrade is set;
    # SQLite, the embedded default, is migrated here (store/schema.py).
    options = settings.database
    app[db_key] = db = await Database.open(settings.database_url, auto_upgrade=options.auto_upgrade,
                                           pool_size=options.pool_size, max_overflow=options.max_overflow)
    async with db.transaction() as tx:
        await repo.sync_shops(tx, {shop.id: shop.name for shop in settings.shops.values()})
    yield
    await db.close()


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """Several instances on one PostgreSQL database: the hub relays through LISTEN/NOTIFY (SQLite: in-process)."""
    async with live.relayed(app[hub_key], app[db_key]):
        yield


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[http_key] = session
        yield


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    senders = {name: sender for name, c in app[connectors_key].items()
               if (sender := c.sender(app[http_key], app[clock_key], settings.outbox.timeout)) is not None}
    app[outbox_key] = worker = OutboxWorker(app[db_key], app[clock_key], settings.outbox,
                                            ChannelSenders(senders) if senders else None)
    task = asyncio.create_task(worker.run(), name="csbot-outbox")
    yield
    worker.stop()
    # A pass in flight ends within the send timeout; only a stuck one is cancelled (wait_for does that).
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=settings.outbox.timeout + 5)


async def reminders_ctx(app: web.Application) -> AsyncIterator[None]:
    """The reminder ticker, beaten by APScheduler; stopped before the outbox and the database close."""
    settings = app[settings_key]
    app[reminders_key] = ticker = Ticker(app[db_key], app[deps_key], settings.ticker, on_sent=app[outbox_key].wake)
    beat = ReminderClock(ticker, settings.ticker.interval)
    beat.start()
    yield
    await beat.stop()
