"""Order events -> the order row (forward only) -> reminder rows planned or cancelled. Runs in the caller's
transaction, like `pipeline.handle_message`; never sends anything itself (the ticker does, when due).

Each milestone time is set by the first event that carries it, and the order's status is the furthest
milestone reached, so events arriving late, twice, or out of order end in the same state. After every
event, `_reconcile` makes the reminder rows agree with that state (idempotent inserts and cancels).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from csbot.config import ShopSettings
from csbot.errors import UnknownShop
from csbot.hours import describe_when
from csbot.ingest.events import OrderCreated, OrderEvent
from csbot.pipeline import PipelineDeps
from csbot.reminders import plans
from csbot.reminders import repo as reminders_repo
from csbot.store import repo
from csbot.store.db import Tx
from csbot.store.models import Order, Reminder

log = logging.getLogger(__name__)

# The furthest milestone wins; "closed" (cancelled or timed out) ends the order.
RANK = {"created": 0, "paid": 1, "shipped": 2, "delivered": 3, "refund_requested": 4, "closed": 5}
MILESTONE_FIELD = {"paid": "paid_at", "shipped": "shipped_at", "delivered": "delivered_at",
                   "refund_requested": "refund_requested_at", "closed": "closed_at"}
# Events that mark the order without moving its status (the after-sales queue reads them).
MARK_FIELD = {"platform_intervened": "platform_intervened_at"}


async def handle_order(tx: Tx, deps: PipelineDeps, event: OrderCreated | OrderEvent) -> dict[str, Any]:
    """Webhook order event -> order row and its reminders; returns the webhook's answer."""
    shop = deps.settings.shop(event.shop)
    if shop is None:
        raise UnknownShop({"shop": event.shop, "known": sorted(deps.settings.shops)})
    now = deps.clock.now()
    order = await reminders_repo.lock_order(tx, shop_id=shop.id, external_id=event.order_id, now=now)
    before = order.status
    if isinstance(event, OrderCreated):
        await _created(tx, order, event, now)
    else:
        field = MILESTONE_FIELD.get(event.milestone) or MARK_FIELD[event.milestone]
        if getattr(order, field) is None:
            setattr(order, field, event.at or now)
    order.status = furthest(order)
    order.updated_at = now
    await _reconcile(tx, shop, order, now)
    rows = await reminders_repo.order_reminders(tx, order.id)
    log.info("order %s event=%s status %s -> %s", order.id, event.type, before, order.status)
    return {
        "order_id": event.order_id, "type": event.type, "status": order.status,
        "reminders": [reminder_json(r) for r in rows],
    }


async def _created(tx: Tx, order: Order, event: OrderCreated, now: datetime) -> None:
    if order.ordered_at is not None:
        return  # the first order.created wins; a platform resend changes nothing
    buyer = await repo.upsert_buyer(tx, shop_id=event.shop, external_id=event.buyer.id, nick=event.buyer.nick,
                                    now=now)
    order.buyer_id = buyer.id
    order.amount = str(event.amount)
    order.items = [{"title": item.title, "qty": item.qty} for item in event.items]
    order.ordered_at = event.created_at
    order.auto_close_at = event.auto_close_at
    if event.conversation_id is not None:
        conv = await repo.upsert_conversation(tx, shop_id=event.shop, external_id=event.conversation_id,
                                              buyer_id=buyer.id, channel="generic", now=now)
        order.conversation_id = conv.id


def furthest(order: Order) -> str:
    reached = [m for m, f in MILESTONE_FIELD.items() if getattr(order, f) is not None]
    return max(["created", *reached], key=RANK.__getitem__)


async def _reconcile(tx: Tx, shop: ShopSettings, order: Order, now: datetime) -> None:
    policy, zone = shop.reminders, shop.hours.zone
    if order.status != "created":
        await reminders_repo.cancel_for_order(tx, order.id, kinds=[plans.PAYMENT], reason=f"order_{order.status}",
                                              now=now)
    if order.status in ("refund_requested", "closed"):
        await reminders_repo.cancel_for_order(tx, order.id, kinds=[plans.AFTER_DELIVERY],
                                              reason=f"order_{order.status}", now=now)
    if order.buyer_id is None or order.ordered_at is None:
        return  # order.created has not arrived yet: nobody to remind
    if order.status == "created":
        planned = plans.plan_payment(order.ordered_at, order.auto_close_at, policy, zone)
        await reminders_repo.add_planned(tx, shop_id=shop.id, buyer_id=order.buyer_id, order_id=order.id,
                                         plans=planned, now=now)
    if order.status == "delivered" and order.delivered_at is not None:
        closing = plans.plan_after_delivery(order.delivered_at, policy, zone)
        if closing is not None:
            await reminders_repo.add_planned(tx, shop_id=shop.id, buyer_id=order.buyer_id, order_id=order.id,
                                             plans=[closing], now=now)


def reminder_json(r: Reminder) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "stage": r.stage, "template": r.template,
            "due_at": r.due_at.isoformat(), "status": r.status, "reason": r.reason}


def reminder_variables(kind: str, order: Order | None, shop: ShopSettings, locale: str,
                       now: datetime) -> dict[str, Any]:
    """The `reminder` template variable (see `replies.sample_variables`); order fields empty without an order."""
    items = [] if order is None else order.items or []
    titles = [str(i.get("title", "")) for i in items]
    zh = locale.startswith("zh")
    if not titles:
        items_text = "宝贝" if zh else "your items"
    elif len(titles) == 1:
        items_text = titles[0]
    else:
        items_text = f"{titles[0]} 等{len(titles)}件宝贝" if zh else f"{titles[0]} and {len(titles) - 1} more"
    close = None if order is None else order.auto_close_at
    return {
        "kind": kind,
        "order_id": "" if order is None else order.external_id,
        "amount": "" if order is None else order.amount or "",
        "items": [{"title": str(i.get("title", "")), "qty": int(i.get("qty", 1))} for i in items],
        "items_text": items_text,
        "auto_close_at": "" if close is None else describe_when(close, now, shop.hours.zone, locale),
    }
