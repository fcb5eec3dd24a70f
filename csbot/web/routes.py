"""Web: every URL csbot serves, in one list."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from csbot.keys import db_key
from csbot.web import api, reminders, webhooks
from csbot.web.middlewares import json_response


async def healthz(request: web.Request) -> web.Response:
    async with request.app[db_key].read() as tx:
        await tx.execute(text("SELECT 1"))
    return json_response({"status": "ok"})


def setup_routes(app: web.Application) -> None:
    app.router.add_routes([
        web.get("/healthz", healthz),
        web.post("/webhooks/generic", webhooks.generic_webhook),
        web.get("/api/conversations", api.list_conversations),
        web.get("/api/conversations/{id}", api.get_conversation),
        web.post("/api/suggestions/{id}/accept", api.accept),
        web.post("/api/suggestions/{id}/reject", api.reject),
        web.get("/api/outbox", api.list_outbox),
        web.post("/api/shops/{shop}/buyers/{buyer}/blacklist", api.blacklist),
        web.delete("/api/shops/{shop}/buyers/{buyer}/blacklist", api.blacklist),
        web.get("/api/reminders", reminders.list_reminders),
        web.get("/api/reminders/stats", reminders.reminder_stats),
        web.post("/api/orders/{id}/reminders/cancel", reminders.cancel_order_reminders),
    ])
