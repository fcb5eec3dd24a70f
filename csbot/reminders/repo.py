"""Store: the queries about orders and reminders. Functions take an open transaction (`Tx`) and values;
SQL only through SQLAlchemy expressions."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from csbot.reminders.plans import FOLLOWUPS, PAYMENT, Kind, Planned
from csbot.store.db import Tx
from csbot.store.models import Buyer, Conversation, Order, Reminder
from csbot.store.repo import (  # the main query module's helpers
    _binds,
    _core,
    _flush_pending,
    _for_update,
    _insert,
    _sync_held,
    _table,
)

LIVE = ("pending", "claimed")

# --- orders ----------------------------------------------------------------------------------------


async def lock_order(tx: Tx, *, shop_id: str, external_id: str, now: datetime) -> Order:
    """The order row, created empty on first sight, locked for the rest of the transaction."""
    stmt = _insert(tx, Order).values(shop_id=shop_id, external_id=external_id, status="created",
                                     first_seen_at=now, updated_at=now)
    await tx.execute(stmt.on_conflict_do_nothing(index_elements=[Order.shop_id, Order.external_id]))
    query = _for_update(tx, select(Order).where(Order.shop_id == shop_id, Order.external_id == external_id))
    return (await tx.execute(query.execution_options(populate_existing=True))).scalar_one()


async def buyer_has_order(tx: Tx, buyer_id: int) -> bool:
    await _flush_pending(tx)
    return bool((await _core(tx, _buyer_has_order(), {"buyer_id": buyer_id})).scalar())


@functools.cache
def _buyer_has_order() -> Any:
    return select(exists().where(Order.buyer_id == bindparam("buyer_id")))


async def latest_conversation(tx: Tx, buyer_id: int) -> Conversation | None:
    query = (
        select(Conversation)
        .where(Conversation.buyer_id == buyer_id)
        .order_by(Conversation.last_buyer_at.desc().nulls_last(), Conversation.id.desc())
        .limit(1)
    )
    return (await tx.execute(query)).scalar_one_or_none()


# --- planning --------------------------------------------------------------------------------------


async def add_planned(tx: Tx, *, shop_id: str, buyer_id: int, plans: Sequence[Planned], now: datetime,
                      order_id: int | None = None, conversation_id: int | None = None) -> int:
    """Insert planned rows; a stage that already exists is left alone (repeated events replan nothing)."""
    added = 0
    for plan in plans:
        values = _row(plan, shop_id=shop_id, buyer_id=buyer_id, order_id=order_id,
                      conversation_id=conversation_id, now=now)
        stmt = _insert(tx, Reminder).values(**values)
        if order_id is not None:
            stmt = stmt.on_conflict_do_nothing(index_elements=[Reminder.order_id, Reminder.kind, Reminder.stage])
        else:
            stmt = stmt.on_conflict_do_nothing(
                index_elements=[Reminder.conversation_id, Reminder.kind, Reminder.stage],
                index_where=Reminder.order_id.is_(None),
            )
        added += len((await tx.execute(stmt.returning(Reminder.id))).all())
    return added


def _row(plan: Planned, *, shop_id: str, buyer_id: int, order_id: int | None, conversation_id: int | None,
         now: datetime) -> dict[str, Any]:
    return {
        "shop_id": shop_id, "order_id": order_id, "conversation_id": conversation_id, "buyer_id": buyer_id,
        "kind": plan.kind, "stage": plan.stage, "template": plan.template, "due_at": plan.due_at,
        "status": "pending" if plan.skip_reason is None else "skipped", "reason": plan.skip_reason,
        "attempts": 0, "created_at": now, "updated_at": now,
    }


async def arm_followup(tx: Tx, *, shop_id: str, conversation_id: int, buyer_id: int, plan: Planned,
                       now: datetime) -> int:
    """The conversation's live follow-up of this kind; a cancelled or skipped one is re-armed, and after
    one that was sent the next stage is added (so history stays). Returns the reminder's id. Prebuilt
    statements on the connection: a buyer's pre-sales question arms one on every message."""
    await _flush_pending(tx)  # the rows as this transaction has them
    latest = (await _core(tx, _latest_followup(), {"conv_id": conversation_id, "kind": plan.kind})).first()
    if latest is not None and latest.status in LIVE:
        return int(latest.id)
    if latest is not None and latest.status in ("cancelled", "skipped"):
        values = {"status": "pending", "due_at": plan.due_at, "reason": None, "attempts": 0, "lease_until": None,
                  "updated_at": now}
        await _core(tx, _rearm(), values | {"reminder_id": latest.id})
        _sync_held(tx, Reminder, latest.id, values)
        return int(latest.id)
    stage = 1 if latest is None else latest.stage + 1
    values = _row(plan, shop_id=shop_id, buyer_id=buyer_id, order_id=None, conversation_id=conversation_id,
                  now=now) | {"stage": stage}
    return int((await _core(tx, _add_reminder(), values)).scalar_one())


@functools.cache
def _latest_followup() -> Any:
    table = _table(Reminder)
    return (select(table.c.id, table.c.status, table.c.stage)
            .where(table.c.conversation_id == bindparam("conv_id"), table.c.order_id.is_(None),
                   table.c.kind == bindparam("kind"))
            .order_by(table.c.stage.desc()).limit(1))


@functools.cache
def _rearm() -> Any:
    table = _table(Reminder)
    return update(table).where(table.c.id == bindparam("reminder_id")).values(
        _binds(table, "status", "due_at", "reason", "attempts", "lease_until", "updated_at"))


@functools.cache
def _add_reminder() -> Any:
    table = _table(Reminder)
    return insert(table).returning(table.c.id)


# --- cancelling ------------------------------------------------------------------------------------


async def _cancel(tx: Tx, where: ColumnElement[bool], reason: str, now: datetime) -> int:
    # Only pending rows, and claimed rows whose firing failed (lease not held by a running tick: the tick
    # fires inside the claiming transaction, so a claimed row visible here is a failed one).
    stmt = (
        update(Reminder)
        .where(where, Reminder.status.in_(LIVE))
        .values(status="cancelled", reason=reason, lease_until=None, updated_at=now)
        .returning(Reminder.id)
        .execution_options(synchronize_session=False)
    )
    return len((await tx.execute(stmt)).all())


async def cancel_for_order(tx: Tx, order_id: int, *, kinds: Sequence[Kind] | None, reason: str,
                           now: datetime) -> int:
    where = Reminder.order_id == order_id
    if kinds is not None:
        where = and_(where, Reminder.kind.in_(kinds))
    return await _cancel(tx, where, reason, now)


async def cancel_followups(tx: Tx, conversation_id: int, *, reason: str, now: datetime,
                           keep: Sequence[Kind] = ()) -> int:
    """Cancel the conversation's live follow-ups except the kinds in `keep` (every buyer message does this:
    a prebuilt statement on the connection; pending changes to reminder objects are flushed first)."""
    kinds = [k for k in FOLLOWUPS if k not in keep]
    await _flush_pending(tx)
    params = {"conv_id": conversation_id, "kinds": kinds, "reason": reason, "updated_at": now}
    return len((await _core(tx, _cancel_followups(), params)).all())


@functools.cache
def _cancel_followups() -> Any:
    table = _table(Reminder)
    return (update(table)
            .where(table.c.conversation_id == bindparam("conv_id"), table.c.order_id.is_(None),
                   table.c.kind.in_(bindparam("kinds", expanding=True)), table.c.status.in_(LIVE))
            .values({**_binds(table, "reason", "updated_at"), "status": "cancelled", "lease_until": None})
            .returning(table.c.id))


async def cancel_for_buyer(tx: Tx, buyer_id: int, *, kinds: Sequence[Kind], reason: str, now: datetime) -> int:
    return await _cancel(tx, and_(Reminder.buyer_id == buyer_id, Reminder.kind.in_(kinds)), reason, now)


async def cancel_for_external_order(tx: Tx, external_id: str, *, shop_id: str | None, reason: str,
                                    now: datetime) -> int | None:
    """Cancel an order's live reminders by the platform's order id; None when no such order."""
    query = select(Order.id).where(Order.external_id == external_id)
    if shop_id:
        query = query.where(Order.shop_id == shop_id)
    ids = list((await tx.execute(query)).scalars())
    if not ids:
        return None
    return await _cancel(tx, Reminder.order_id.in_(ids), reason, now)


# --- the ticker ------------------------------------------------------------------------------------


async def claim_due(tx: Tx, *, now: datetime, lease: timedelta, limit: int) -> list[Reminder]:
    """Take due rows: pending and due, or claimed earlier by a tick whose firing failed (lease ran out).

    On PostgreSQL, SKIP LOCKED lets several instances claim disjoint batches; SQLite serialises writers."""
    due = or_(
        (Reminder.status == "pending") & (Reminder.due_at <= now),
        (Reminder.status == "claimed") & (Reminder.lease_until < now),
    )
    ids = _for_update(tx, select(Reminder.id).where(due).order_by(Reminder.due_at, Reminder.id).limit(limit),
                      skip_locked=True)
    stmt = (
        update(Reminder)
        .where(Reminder.id.in_(ids.scalar_subquery()))
        .values(status="claimed", lease_until=now + lease, attempts=Reminder.attempts + 1, updated_at=now)
        .returning(Reminder)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return sorted((await tx.execute(stmt)).scalars().all(), key=lambda r: (r.due_at, r.id))


@dataclass
class BatchFacts:
    """What firing a claimed batch needs to know, read in a few queries instead of several per row.

    The counters are kept up to date by the ticker as it sends within the batch (same transaction)."""

    sent_for_order: dict[tuple[int, str], int]  # (order_id, kind) -> sent
    sent_to_buyer: dict[int, list[datetime]]  # buyer_id -> sent_at of automated messages in the window
    latest_due_stage: dict[tuple[int, str], int]  # (order_id, kind) -> highest live stage due now
    # The batch's buyers and orders, held so that the session keeps them (its identity map holds objects only
    # weakly): `tx.get_one` for each row then finds them instead of reading them again.
    loaded: list[object] = field(default_factory=list)


async def batch_facts(tx: Tx, rows: Sequence[Reminder], *, now: datetime, window: timedelta) -> BatchFacts:
    order_ids = sorted({r.order_id for r in rows if r.order_id is not None})
    buyer_ids = sorted({r.buyer_id for r in rows})
    # Load the batch's buyers and orders into the session: `tx.get` then needs no query per row.
    loaded: list[object] = list((await tx.execute(select(Buyer).where(Buyer.id.in_(buyer_ids)))).scalars())
    sent_for_order: dict[tuple[int, str], int] = {}
    latest: dict[tuple[int, str], int] = {}
    if order_ids:
        loaded += (await tx.execute(select(Order).where(Order.id.in_(order_ids)))).scalars()
        counts = await tx.execute(
            select(Reminder.order_id, Reminder.kind, func.count(Reminder.id))
            .where(Reminder.order_id.in_(order_ids), Reminder.status == "sent")
            .group_by(Reminder.order_id, Reminder.kind))
        sent_for_order = {(o, k): n for o, k, n in counts.all() if o is not None}
        stages = await tx.execute(
            select(Reminder.order_id, Reminder.kind, func.max(Reminder.stage))
            .where(Reminder.order_id.in_(order_ids), Reminder.status.in_(LIVE), Reminder.due_at <= now)
            .group_by(Reminder.order_id, Reminder.kind))
        latest = {(o, k): n for o, k, n in stages.all() if o is not None}
    sent = await tx.execute(
        select(Reminder.buyer_id, Reminder.sent_at)
        .where(Reminder.buyer_id.in_(buyer_ids), Reminder.status == "sent", Reminder.sent_at > now - window,
               Reminder.reply_id.is_not(None)))
    to_buyer: dict[int, list[datetime]] = {}
    for buyer_id, sent_at in sent.all():
        if sent_at is not None:
            to_buyer.setdefault(buyer_id, []).append(sent_at)
    return BatchFacts(sent_for_order, to_buyer, latest, loaded)


# --- visibility ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderView:
    reminder: Reminder
    order_external_id: str | None
    conversation_external_id: str | None
    buyer_external_id: str


async def list_reminders(tx: Tx, *, order_external_id: str | None = None, status: str | None = None,
                         kind: str | None = None, conversation_id: int | None = None,
                         limit: int = 100) -> list[ReminderView]:
    conv = aliased(Conversation)
    query = (
        select(Reminder, Order.external_id, conv.external_id, Buyer.external_id)
        .join(Buyer, Buyer.id == Reminder.buyer_id)
        .outerjoin(Order, Order.id == Reminder.order_id)
        .outerjoin(conv, conv.id == Reminder.conversation_id)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
    )
    if order_external_id is not None:
        query = query.where(Order.external_id == order_external_id)
    if status is not None:
        query = query.where(Reminder.status == status)
    if kind is not None:
        query = query.where(Reminder.kind == kind)
    if conversation_id is not None:
        query = query.where(Reminder.conversation_id == conversation_id)
    return [ReminderView(r, o, c, b) for r, o, c, b in (await tx.execute(query)).all()]


async def order_reminders(tx: Tx, order_id: int) -> list[Reminder]:
    query = select(Reminder).where(Reminder.order_id == order_id).order_by(Reminder.kind, Reminder.stage)
    return list((await tx.execute(query)).scalars())


@dataclass(frozen=True)
class Stats:
    by_status: dict[str, int]
    sent: dict[str, int]  # by kind
    skipped: dict[str, int]  # by reason
    cancelled: dict[str, int]  # by reason
    reminded_orders: int  # orders that got at least one 催付 message
    recovered_orders: int  # of those, paid after a 催付 message went out


async def stats(tx: Tx) -> Stats:
    rows = (await tx.execute(
        select(Reminder.status, Reminder.kind, Reminder.reason, func.count(Reminder.id))
        .group_by(Reminder.status, Reminder.kind, Reminder.reason)
    )).all()
    by_status: dict[str, int] = {}
    sent: dict[str, int] = {}
    skipped: dict[str, int] = {}
    cancelled: dict[str, int] = {}
    for status, kind, reason, count in rows:
        by_status[status] = by_status.get(status, 0) + count
        code = (reason or "unknown").split(":", 1)[0]
        target = {"sent": sent, "skipped": skipped, "cancelled": cancelled}.get(status)
        key = kind if status == "sent" else code
        if target is not None:
            target[key] = target.get(key, 0) + count
    first_sent = (
        select(Reminder.order_id, func.min(Reminder.sent_at).label("first_sent"))
        .where(Reminder.kind == PAYMENT, Reminder.status == "sent")
        .group_by(Reminder.order_id)
        .subquery()
    )
    reminded = (await tx.execute(select(func.count()).select_from(first_sent))).scalar_one()
    recovered = (await tx.execute(
        select(func.count()).select_from(first_sent).join(Order, Order.id == first_sent.c.order_id)
        .where(Order.paid_at.is_not(None), Order.paid_at >= first_sent.c.first_sent)
    )).scalar_one()
    return Stats(by_status, sent, skipped, cancelled, reminded, recovered)
