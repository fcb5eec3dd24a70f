"""Web: what reminders will be sent when, why one was skipped, and cancelling an order's reminders."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csbot.errors import MalformedEvent, NotFound
from csbot.keys import clock_key, db_key
from csbot.reminders import plans
from csbot.reminders import repo as reminders_repo
from csbot.web.middlewares import json_response

API_AGENT = "api"


def reminder_json(view: reminders_repo.ReminderView) -> dict[str, Any]:
    r = view.reminder
    return {
        "id": r.id, "shop": r.shop_id, "kind": r.kind, "stage": r.stage, "template": r.template,
        "order_id": view.order_external_id, "conversation_id": view.conversation_external_id,
        "buyer_id": view.buyer_external_id, "due_at": r.due_at.isoformat(), "status": r.status,
        "reason": r.reason, "attempts": r.attempts, "reply_id": r.reply_id, "suggestion_id": r.suggestion_id,
        "sent_at": None if r.sent_at is None else r.sent_at.isoformat(),
    }


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise MalformedEvent(name, f"one of {', '.join(allowed)}")
    return value


async def list_reminders(request: web.Request) -> web.Response:
    """GET /api/reminders?order_id=&status=&kind=&limit="""
    limit_raw = request.query.get("limit", "100")
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 1000:
        raise MalformedEvent("limit", "must be a whole number from 1 to 1000")
    async with request.app[db_key].read() as tx:
        views = await reminders_repo.list_reminders(
            tx, order_external_id=request.query.get("order_id") or None,
            status=_choice(request, "status", plans.STATUSES), kind=_choice(request, "kind", plans.KINDS),
            limit=int(limit_raw),
        )
    return json_response({"reminders": [reminder_json(v) for v in views]})


async def cancel_order_reminders(request: web.Request) -> web.Response:
    """POST /api/orders/{id}/reminders/cancel[?shop=]: stop every pending reminder of the order."""
    order_id = request.match_info["id"]
    async with request.app[db_key].transaction() as tx:
        cancelled = await reminders_repo.cancel_for_external_order(
            tx, order_id, shop_id=request.query.get("shop") or None, reason=f"cancelled_by_{API_AGENT}",
            now=request.app[clock_key].now(),
        )
    if cancelled is None:
        raise NotFound(f"no order {order_id[:64]}")
    return json_response({"order_id": order_id, "cancelled": cancelled})


async def reminder_stats(request: web.Request) -> web.Response:
    """GET /api/reminders/stats: sent by kind, skipped and cancelled by reason, 催付 recovery."""
    async with request.app[db_key].read() as tx:
        stats = await reminders_repo.stats(tx)
    return json_response({
        "by_status": stats.by_status, "sent": stats.sent, "skipped": stats.skipped, "cancelled": stats.cancelled,
        "payment": {
            "reminded_orders": stats.reminded_orders,
            "paid_after_reminder": stats.recovered_orders,
            "recovery_rate": round(stats.recovered_orders / stats.reminded_orders, 3) if stats.reminded_orders
            else None,
        },
    })
