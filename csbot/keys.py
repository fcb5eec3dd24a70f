"""Every typed key of the aiohttp application state, in one place."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from csbot.clock import Clock
from csbot.config import Settings
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
