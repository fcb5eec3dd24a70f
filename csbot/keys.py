"""Every typed key of the aiohttp application state, in one place."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from aiohttp import web

from csbot.clock import Clock
from csbot.config import Settings
from csbot.console.auth import Identity
from csbot.console.live import Hub
from csbot.console.metrics import Metrics
from csbot.ingest.connectors.base import Connector
from csbot.outbox.delivery import OutboxWorker
from csbot.pipeline import PipelineDeps
from csbot.reminders.ticker import Ticker
from csbot.store.db import Database

settings_key = web.AppKey("settings", Settings)
clock_key = web.AppKey("clock", Clock)
db_key = web.AppKey("db", Database)
deps_key = web.AppKey("deps", PipelineDeps)
http_key = web.AppKey("http", aiohttp.ClientSession)
outbox_key = web.AppKey("outbox", OutboxWorker)
reminders_key = web.AppKey("reminders", Ticker)
connectors_key: web.AppKey[Mapping[str, Connector]] = web.AppKey("connectors")  # by channel name
hub_key = web.AppKey("hub", Hub)  # the console's live fan-out
metrics_key = web.AppKey("metrics", Metrics)
identity_key = web.RequestKey("identity", Identity)  # who made the request (set by the auth middleware)
