"""Store: the restock waiting list. `stock.updated` events -> SKU rows -> the waiting buyers' notice reminders armed
or (sold out again before they went out) cancelled. Runs in the caller's transaction; never sends anything
itself: the reminder ticker does, when the notice is due (csbot/reminders/ticker.py).

A waiting entry has at most one reminder row (kind `restock`, stage = the entry's id). It is armed when the SKU
comes back, re-armed only if it was cancelled because the SKU sold out again before it fired, so repeated
events, or stock going 0 -> 5 -> 0 -> 5, never notify the same entry twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from csbot.aftersales import restock
from csbot.config import ShopSettings
from csbot.errors import Conflict, NotFound, UnknownShop
from csbot.ingest.events import StockUpdated
from csbot.pipeline import PipelineDeps
from csbot.reminders import plans
from csbot.reminders import repo as reminders_repo
from csbot.store.db import Tx
from csbot.store.models import Buyer, Conversation, Message, Order, Reminder, RestockWait, Sku
from csbot.store.repo import _for_update, _insert

log = logging.getLogger(__name__)


async def handle_stock(tx: Tx, deps: PipelineDeps, event: StockUpdated) -> dict[str, Any]:
    """Webhook stock event -> the SKU row and its waiting buyers' notices; returns the webhook's answer."""
    shop = deps.settings.shop(event.shop)
    if shop is None:
        raise UnknownShop({"shop": event.shop, "known": sorted(deps.settings.shops)})
    now = deps.clock.now()
    sku = await lock_sku(tx, shop_id=shop.id, external_id=event.sku_id, now=now)
    if event.title:
        sku.title = event.title
    if event.at is not None and sku.counted_at is not None and event.at < sku.counted_at:
        return _answer(event, sku, "stale", 0)  # a count older than the one we hold changes nothing
    change = restock.stock_change(sku.available, event.available)
    sku.available, sku.updated_at = event.available, now
    if event.at is not None:
        sku.counted_at = event.at
    touched = 0
    if change == "restocked":
        touched = await _arm(tx, shop, sku, now)
    elif change == "sold_out":
        touched = await _disarm(tx, sku, now)
    log.info("sku %s available=%d change=%s waits=%d", sku.id, event.available, change, touched)
    return _answer(event, sku, change, touched)


def _answer(event: StockUpdated, sku: Sku, change: str, touched: int) -> dict[str, Any]:
    return {"type": event.type, "sku_id": event.sku_id, "available": sku.available, "change": change,
            "notices": touched}


async def lock_sku(tx: Tx, *, shop_id: str, external_id: str, now: datetime) -> Sku:
    """The SKU row, created uncounted on first sight, locked for the rest of the transaction."""
    stmt = _insert(tx, Sku).values(shop_id=shop_id, external_id=external_id, title="", updated_at=now)
    await tx.execute(stmt.on_conflict_do_nothing(index_elements=[Sku.shop_id, Sku.external_id]))
    query = _for_update(tx, select(Sku).where(Sku.shop_id == shop_id, Sku.external_id == external_id))
    return (await tx.execute(query.execution_options(populate_existing=True))).scalar_one()


async def _arm(tx: Tx, shop: ShopSettings, sku: Sku, now: datetime) -> int:
    """Each waiting entry of the SKU gets its notice planned (or its cancelled one re-armed)."""
    due = restock.notice_due(now, shop.reminders, shop.hours.zone)
    waits = (await tx.execute(
        select(RestockWait).where(RestockWait.sku_id == sku.id, RestockWait.status == "waiting")
        .order_by(RestockWait.id))).scalars().all()
    for wait in waits:
        if wait.reminder_id is None:
            plan = plans.Planned(plans.RESTOCK, wait.id, due, restock.NOTICE_TEMPLATE)
            await reminders_repo.add_planned(tx, shop_id=shop.id, buyer_id=wait.buyer_id, plans=[plan], now=now,
                                             conversation_id=wait.conversation_id)
            wait.reminder_id = (await tx.execute(select(Reminder.id).where(
                Reminder.conversation_id == wait.conversation_id, Reminder.order_id.is_(None),
                Reminder.kind == plans.RESTOCK, Reminder.stage == wait.id))).scalar_one()
        else:
            # Only a notice cancelled because the SKU sold out before it fired comes back; a sent or skipped
            # one is final (that is the "once").
            await tx.execute(
                update(Reminder)
                .where(Reminder.id == wait.reminder_id, Reminder.status == "cancelled",
                       Reminder.reason == restock.SOLD_OUT_AGAIN)
                .values(status="pending", reason=None, due_at=due, attempts=0, lease_until=None, updated_at=now)
                .execution_options(synchronize_session=False))
        wait.status, wait.updated_at = "armed", now
    return len(waits)


async def _disarm(tx: Tx, sku: Sku, now: datetime) -> int:
    """Sold out again: notices not sent yet are cancelled and their buyers wait again."""
    waits = (await tx.execute(
        select(RestockWait).where(RestockWait.sku_id == sku.id, RestockWait.status == "armed",
                                  RestockWait.reminder_id.is_not(None)))).scalars().all()
    ids = [w.reminder_id for w in waits if w.reminder_id is not None]
    cancelled = set((await tx.execute(
        update(Reminder)
        .where(Reminder.id.in_(ids), Reminder.status.in_(reminders_repo.LIVE))
        .values(status="cancelled", reason=restock.SOLD_OUT_AGAIN, lease_until=None, updated_at=now)
        .returning(Reminder.id)
        .execution_options(synchronize_session=False))).scalars())
    for wait in waits:
        if wait.reminder_id in cancelled:
            wait.status, wait.updated_at = "waiting", now
    return len(cancelled)


# --- the agents' side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitView:
    wait: RestockWait
    sku: Sku
    conversation_external_id: str
    buyer_external_id: str
    notice: Reminder | None


def wait_json(view: WaitView) -> dict[str, Any]:
    w, n = view.wait, view.notice
    return {
        "id": w.id, "shop": w.shop_id, "sku_id": view.sku.external_id, "title": view.sku.title,
        "available": view.sku.available, "conversation_id": w.conversation_id,
        "conversation": view.conversation_external_id, "buyer_id": view.buyer_external_id, "status": w.status,
        "added_by": w.added_by, "created_at": w.created_at.isoformat(),
        "notice": None if n is None else {"reminder_id": n.id, "status": n.status, "reason": n.reason,
                                          "due_at": n.due_at.isoformat(), "reply_id": n.reply_id},
    }


async def add_wait(tx: Tx, *, conversation_id: int, sku_external_id: str, by: str,
                   now: datetime) -> tuple[WaitView, bool]:
    """Put the conversation's buyer on the SKU's waiting list; (the entry, whether it is new). Refused while the
    SKU is in stock: then the agent simply tells the buyer."""
    conv = await tx.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"no conversation {conversation_id}")
    sku = await lock_sku(tx, shop_id=conv.shop_id, external_id=sku_external_id, now=now)
    if sku.available is not None and sku.available > 0:
        raise Conflict({"sku_id": sku_external_id, "available": sku.available,
                        "problem": "in stock now: tell the buyer instead of waiting"})
    stmt = _insert(tx, RestockWait).values(
        shop_id=conv.shop_id, sku_id=sku.id, conversation_id=conv.id, buyer_id=conv.buyer_id, status="waiting",
        added_by=by, created_at=now, updated_at=now)
    stmt = stmt.on_conflict_do_nothing(index_elements=[RestockWait.sku_id, RestockWait.conversation_id])
    created = (await tx.execute(stmt.returning(RestockWait.id))).scalar_one_or_none() is not None
    views = await list_waits(tx, conversation_id=conv.id, sku_id=sku.id)
    return views[0], created


async def list_waits(tx: Tx, *, shop_id: str | None = None, sku_external_id: str | None = None,
                     conversation_id: int | None = None, sku_id: int | None = None,
                     limit: int = 200) -> list[WaitView]:
    query = (
        select(RestockWait, Sku, Conversation.external_id, Buyer.external_id, Reminder)
        .join(Sku, Sku.id == RestockWait.sku_id)
        .join(Conversation, Conversation.id == RestockWait.conversation_id)
        .join(Buyer, Buyer.id == RestockWait.buyer_id)
        .outerjoin(Reminder, Reminder.id == RestockWait.reminder_id)
        .order_by(RestockWait.id.desc())
        .limit(limit)
    )
    if shop_id:
        query = query.where(RestockWait.shop_id == shop_id)
    if sku_external_id:
        query = query.where(Sku.external_id == sku_external_id)
    if conversation_id is not None:
        query = query.where(RestockWait.conversation_id == conversation_id)
    if sku_id is not None:
        query = query.where(RestockWait.sku_id == sku_id)
    return [WaitView(w, s, c, b, r) for w, s, c, b, r in (await tx.execute(query)).all()]


async def proposals(tx: Tx, conversation_id: int, limit: int = 5) -> list[restock.Proposal]:
    """Out-of-stock SKUs of the conversation's shop, best fit to its buyer messages and orders first."""
    conv = await tx.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"no conversation {conversation_id}")
    messages = (await tx.execute(
        select(Message.text).where(Message.conversation_id == conv.id, Message.direction == "in")
        .order_by(Message.id.desc()).limit(10))).scalars().all()
    items = (await tx.execute(select(Order.items).where(Order.buyer_id == conv.buyer_id)
                              .order_by(Order.id.desc()).limit(10))).scalars().all()
    titles = [str(i.get("title", "")) for order_items in items for i in order_items or []]
    skus = (await tx.execute(select(Sku).where(Sku.shop_id == conv.shop_id,
                                               (Sku.available.is_(None)) | (Sku.available <= 0))
                             .order_by(Sku.updated_at.desc()).limit(500))).scalars().all()
    options = [restock.SkuOption(s.external_id, s.title, s.available) for s in skus]
    return restock.propose(options, [*messages, *titles], limit)


async def title_for_notice(tx: Tx, reminder_id: int) -> str:
    """The SKU title a restock notice names (its id when the platform never sent a title)."""
    row = (await tx.execute(
        select(Sku.title, Sku.external_id).join(RestockWait, RestockWait.sku_id == Sku.id)
        .where(RestockWait.reminder_id == reminder_id))).first()
    if row is None:
        return ""
    return row[0] or row[1]
