"""Wiring: make_app(settings, clock=...) builds the aiohttp application; lifecycles live in cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from csbot.clock import Clock, SystemClock
from csbot.config import Settings
from csbot.ingest.connectors.generic import GenericSender
from csbot.keys import clock_key, db_key, deps_key, http_key, outbox_key, reminders_key, settings_key
from csbot.library import LibrarySet, load_libraries
from csbot.match import Matcher
from csbot.outbox.delivery import OutboxWorker
from csbot.pipeline import PipelineDeps
from csbot.reminders.ticker import ReminderClock, Ticker
from csbot.replies import Renderer
from csbot.store import repo
from csbot.store.db import Database
from csbot.web.middlewares import api_auth_middleware, error_middleware
from csbot.web.routes import setup_routes


def make_app(settings: Settings, *, clock: Clock | None = None, libraries: LibrarySet | None = None,
             matcher: Matcher | None = None) -> web.Application:
    """`libraries`/`matcher` may be passed in pre-built (tests build them once per session)."""
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[error_middleware, api_auth_middleware])
    app[settings_key] = settings
    app[clock_key] = clock or SystemClock()

    async def library_ctx(app: web.Application) -> AsyncIterator[None]:
        libs = libraries or load_libraries(settings.library_dir)
        app[deps_key] = PipelineDeps(
            settings=settings, libraries=libs, matcher=matcher or Matcher(libs),
            renderer=Renderer(settings.templates_dir), clock=app[clock_key],
        )
        yield

    app.cleanup_ctx.extend([database_ctx, library_ctx, http_ctx, outbox_ctx, reminders_ctx])
    setup_routes(app)
    return app


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    app[db_key] = db = await Database.open(settings.database_url)
    async with db.transaction() as tx:
        await repo.sync_shops(tx, {shop.id: shop.name for shop in settings.shops.values()})
    yield
    await db.close()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[http_key] = session
        yield


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    sender = None
    if settings.outbound_url and settings.webhook_secret:
        sender = GenericSender(app[http_key], settings.outbound_url, settings.webhook_secret, app[clock_key],
                               settings.outbox.timeout)
    app[outbox_key] = worker = OutboxWorker(app[db_key], app[clock_key], settings.outbox, sender)
    task = asyncio.create_task(worker.run(), name="csbot-outbox")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def reminders_ctx(app: web.Application) -> AsyncIterator[None]:
    """The reminder ticker, beaten by APScheduler; stopped before the outbox and the database close."""
    settings = app[settings_key]
    app[reminders_key] = ticker = Ticker(app[db_key], app[deps_key], settings.ticker, on_sent=app[outbox_key].wake)
    beat = ReminderClock(ticker, settings.ticker.interval)
    beat.start()
    yield
    await beat.stop()
