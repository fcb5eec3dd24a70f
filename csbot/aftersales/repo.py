"""After-sales cases: the queries and the writes, in the caller's transaction (the pipeline's or the API's).
The rules (states, deadlines, priority) are in `aftersales/cases.py`; SQL only through SQLAlchemy expressions.

`open_or_join_case` is the one way a case comes into being; the pipeline calls `on_buyer_message` after
its decision, for every buyer message (an after-sales intent opens or joins a case; any other message in a
conversation with an open case may bring photos, or the answer a waiting case needed).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select
from sqlalchemy import case as sql_case

from csbot.aftersales import cases
from csbot.aftersales.report import ReportRow
from csbot.config import ShopSettings
from csbot.console import repo as console_repo
from csbot.reminders import followups, plans
from csbot.store import repo
from csbot.store.db import Tx
from csbot.store.models import Buyer, Case, CaseEvent, Conversation, Message, Order, Remark, Reminder

log = logging.getLogger(__name__)

BOT = "csbot"  # the actor when csbot itself opens or moves a case
_OPEN_WITH_ORDER = and_(Case.ended_at.is_(None), Case.order_id.is_not(None))
_OPEN_WITHOUT_ORDER = and_(Case.ended_at.is_(None), Case.order_id.is_(None), Case.conversation_id.is_not(None))


@dataclass(frozen=True)
class Opened:
    case: Case
    new: bool  # False: an open case of this buyer and order (or conversation) was joined


# Stable entry point, also used by the review replies (reviews rated <= 3 open a case with type="review",
# source="review"): keep this signature; add only keyword arguments with defaults.
async def open_or_join_case(tx: Tx, *, shop: ShopSettings, buyer_id: int, type: str, reason: str, now: datetime,
                            conversation_id: int | None = None, order_id: int | None = None,
                            source: str = "message", note: str | None = None, photo_urls: Sequence[str] = (),
                            message_id: str | None = None, actor: str = BOT) -> Opened:
    """The buyer's open case for this order (or this conversation when no order is known), else a new one.

    Two messages about the same order never open two cases: a partial unique index holds one open case per
    buyer and order (per buyer and conversation without an order); the insert yields to it."""
    if type not in cases.TYPES:
        raise ValueError(f"unknown case type {type!r}")
    reason = reason if reason in cases.REASON_LABELS else cases.UNSPECIFIED
    if order_id is not None and conversation_id is not None:
        await _adopt_order(tx, buyer_id=buyer_id, conversation_id=conversation_id, order_id=order_id, now=now)
    due = cases.deadlines(now, shop.after_sales, has_conversation=conversation_id is not None)
    values: dict[str, Any] = {
        "shop_id": shop.id, "buyer_id": buyer_id, "conversation_id": conversation_id, "order_id": order_id,
        "type": type, "reason": reason, "state": "new", "source": source, "platform_intervened": False,
        "late_shipment": False, "out_of_stock": False, "photos": [], "opened_at": now,
        "reply_due_at": due.reply_due_at, "resolve_due_at": due.resolve_due_at, "updated_at": now,
    }
    yields_to = "order" if order_id is not None else ("conversation" if conversation_id is not None else None)
    row = (await repo._core(tx, _insert_case(repo._dialect(tx), yields_to), values)).first()
    if row is not None:
        case = repo._tracked(tx, Case, row)  # the new row as the session's object, without a second query
        remark = await _remark(tx, case, shop, f"{cases.type_label(type, shop.locale)}："
                               f"{cases.reason_label(reason, shop.locale)}", actor, now)
        _event(tx, case, "opened", actor, now, to_state="new", note=note or source, remark_id=remark)
        log.info("case %s opened: type=%s reason=%s source=%s", case.id, type, reason, source)
    else:
        found = await _open_case(tx, buyer_id=buyer_id, conversation_id=conversation_id, order_id=order_id)
        assert found is not None  # the insert yielded to exactly this row, locked by our transaction
        case = found
        _event(tx, case, "joined", actor, now, note=note or message_id or source)
        if case.reason == cases.UNSPECIFIED and reason != cases.UNSPECIFIED:
            case.reason = reason
            _event(tx, case, "reason", actor, now, note=reason)
        case.updated_at = now
    await _add_photos(tx, case, photo_urls, message_id, now)
    await tx.flush()
    return Opened(case, row is not None)


_CASE_COLUMNS = ("shop_id", "buyer_id", "conversation_id", "order_id", "type", "reason", "state", "source",
                 "platform_intervened", "late_shipment", "out_of_stock", "photos", "opened_at", "reply_due_at",
                 "resolve_due_at", "updated_at")


@functools.cache
def _insert_case(dialect: str, yields_to: str | None) -> Any:
    """INSERT … RETURNING the whole row, yielding (no row back) to the buyer's open case for the same order,
    or for the same conversation when no order is known."""
    table = repo._table(Case)
    stmt = repo._insert_for(dialect, table).values(repo._binds(table, *_CASE_COLUMNS))
    if yields_to == "order":
        stmt = stmt.on_conflict_do_nothing(index_elements=[Case.buyer_id, Case.order_id], index_where=_OPEN_WITH_ORDER)
    elif yields_to == "conversation":
        stmt = stmt.on_conflict_do_nothing(index_elements=[Case.buyer_id, Case.conversation_id],
                                           index_where=_OPEN_WITHOUT_ORDER)
    return stmt.returning(*table.c)


async def _adopt_order(tx: Tx, *, buyer_id: int, conversation_id: int, order_id: int, now: datetime) -> None:
    """A case opened before its order was known belongs to that order once it is (unless the order has one)."""
    if await _open_case(tx, buyer_id=buyer_id, conversation_id=None, order_id=order_id) is not None:
        return
    orphan = await _open_case(tx, buyer_id=buyer_id, conversation_id=conversation_id, order_id=None)
    if orphan is not None:
        orphan.order_id, orphan.updated_at = order_id, now
        await tx.flush()


async def _open_case(tx: Tx, *, buyer_id: int, conversation_id: int | None, order_id: int | None) -> Case | None:
    if order_id is not None:
        where = and_(Case.buyer_id == buyer_id, Case.order_id == order_id, _OPEN_WITH_ORDER)
    elif conversation_id is not None:
        where = and_(Case.buyer_id == buyer_id, Case.conversation_id == conversation_id, _OPEN_WITHOUT_ORDER)
    else:
        return None
    query = repo._for_update(tx, select(Case).where(where).limit(1))
    return (await tx.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()


async def _add_photos(tx: Tx, case: Case, urls: Sequence[str], message_id: str | None, now: datetime) -> None:
    known = {p.get("url") for p in case.photos or []}
    fresh = [u for u in urls if u not in known][: max(0, cases.MAX_PHOTOS - len(known))]
    if not fresh:
        return
    # A new list (not an in-place append): the JSON column only notices assignment.
    case.photos = [*(case.photos or []), *({"url": u, "message_id": message_id, "at": now.isoformat()} for u in fresh)]
    _event(tx, case, "photos", "buyer", now, note=f"{len(fresh)} photo(s)")


def _event(tx: Tx, case: Case, kind: str, actor: str, now: datetime, *, from_state: str | None = None,
           to_state: str | None = None, note: str | None = None, remark_id: int | None = None) -> None:
    tx.add(CaseEvent(case_id=case.id, kind=kind, from_state=from_state, to_state=to_state, note=note, actor=actor,
                     remark_id=remark_id, at=now))


async def _remark(tx: Tx, case: Case, shop: ShopSettings, text: str, actor: str, now: datetime) -> int | None:
    """An order remark in the seeds' format (reason + agent + date; the date is the row's created_at)."""
    if case.order_id is None and case.conversation_id is None:
        return None
    type_text = cases.type_label(case.type, shop.locale)
    body = text if text.startswith(type_text) else f"{type_text}：{text}"
    remark = await console_repo.add_remark(tx, conversation_id=case.conversation_id, order_id=case.order_id,
                                           kind="aftersales", text=body[:500], author=actor, now=now)
    return remark.id


# --- the pipeline's hook ----------------------------------------------------------------------------


async def open_case(tx: Tx, conversation_id: int) -> Case | None:
    """The conversation's latest case that has not ended, if any. Every buyer message asks this, and most
    conversations have none: the id is looked up with a prebuilt statement, the case loaded only if found."""
    case_id = (await repo._core(tx, _latest_open_case(), {"conv_id": conversation_id})).scalar_one_or_none()
    return None if case_id is None else await tx.get_one(Case, case_id)


@functools.cache
def _latest_open_case() -> Select[int]:
    return (select(Case.id).where(Case.conversation_id == bindparam("conv_id"), Case.ended_at.is_(None))
            .order_by(Case.id.desc()).limit(1))


async def on_buyer_message(tx: Tx, shop: ShopSettings, conv: Conversation, buyer: Buyer, msg: Message, text: str,
                           now: datetime, *, current: Case | None) -> Case | None:
    """After the decision: an after-sales intent opens or joins the buyer's case (with the order this chat is
    about, if any); another message in a conversation with an open case (`current`, from `open_case`) adds
    its photos, and answers a case that was waiting for the buyer (back to in_progress). `text` is the
    normalised message."""
    if buyer.blacklisted_at is not None:
        return None  # csbot ignores blacklisted buyers; agents can still open a case by hand
    urls = cases.photo_urls(msg.text)
    if msg.intent in cases.INTENT_TYPES:
        opened = await open_or_join_case(
            tx, shop=shop, buyer_id=buyer.id, type=msg.intent, reason=cases.classify_reason(text), now=now,
            conversation_id=conv.id, order_id=await case_order_id(tx, buyer.id, conv.id), photo_urls=urls,
            message_id=msg.external_id)
        case = opened.case
    else:
        if current is None:
            return None
        case = current
        await _add_photos(tx, case, urls, msg.external_id, now)
    if case.state == "waiting_buyer":
        _event(tx, case, "transition", "buyer", now, from_state=case.state, to_state="in_progress",
               note=f"buyer wrote ({msg.external_id})")
        case.state, case.updated_at = "in_progress", now
    await tx.flush()
    return case


async def case_order_id(tx: Tx, buyer_id: int, conversation_id: int) -> int | None:
    """The order an after-sales message is about: the latest paid order this chat was named for, else the
    buyer's latest paid order (an unpaid order has no after-sales)."""
    await repo._flush_pending(tx)
    params = {"buyer_id": buyer_id, "conv_id": conversation_id}
    return (await repo._core(tx, _case_order_id(), params)).scalar_one_or_none()


@functools.cache
def _case_order_id() -> Select[int]:
    return (
        select(Order.id)
        .where(Order.buyer_id == bindparam("buyer_id"), Order.paid_at.is_not(None))
        .order_by(sql_case((Order.conversation_id == bindparam("conv_id"), 0), else_=1), Order.paid_at.desc(),
                  Order.id.desc())
        .limit(1)
    )


# --- agents' actions --------------------------------------------------------------------------------


async def case_for_update(tx: Tx, case_id: int) -> Case | None:
    query = repo._for_update(tx, select(Case).where(Case.id == case_id))
    return (await tx.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()


async def transition(tx: Tx, case: Case, shop: ShopSettings, *, to: str, actor: str, now: datetime,
                     note: str | None = None, resolution: str | None = None, reason: str | None = None) -> None:
    """Move the case (checked by `cases.check_transition`), with its history, remark and follow-ups."""
    cases.check_transition(case.state, to, resolution)
    before = case.state
    if reason is not None and reason != case.reason:
        case.reason = reason
        _event(tx, case, "reason", actor, now, note=reason)
    remark_id = None
    if to in cases.ENDED_STATES:
        case.resolution, case.ended_at = (resolution or "").strip(), now
        remark_id = await _remark(tx, case, shop, f"{cases.reason_label(case.reason, shop.locale)}，"
                                  f"{case.resolution}", actor, now)
    if to == "in_progress" and case.owner is None:
        case.owner = actor  # taking a new case makes it yours
    case.state, case.updated_at = to, now
    _event(tx, case, "transition", actor, now, from_state=before, to_state=to, note=note, remark_id=remark_id)
    await tx.flush()
    if case.conversation_id is None:
        return
    if to in cases.ENDED_STATES:
        if not await _other_open_case(tx, case):  # another open case in the chat keeps its follow-ups
            await followups.cancel_case_followups(tx, case.conversation_id, kinds=followups.CASE_KINDS,
                                                  reason=f"case_{to}", now=now)
    elif to == "waiting_buyer":
        await followups.arm_case_waiting(tx, shop_id=case.shop_id, conversation_id=case.conversation_id,
                                         buyer_id=case.buyer_id, policy=shop.after_sales, now=now)
    elif before == "waiting_buyer":
        await followups.cancel_case_followups(tx, case.conversation_id, kinds=(plans.CASE_WAITING,),
                                              reason=f"case_{to}", now=now)


async def _other_open_case(tx: Tx, case: Case) -> bool:
    query = select(func.count(Case.id)).where(Case.conversation_id == case.conversation_id, Case.id != case.id,
                                              Case.ended_at.is_(None))
    return (await tx.execute(query)).scalar_one() > 0


async def add_note(tx: Tx, case: Case, *, text: str, actor: str, now: datetime) -> None:
    case.updated_at = now
    _event(tx, case, "note", actor, now, note=text)
    await tx.flush()


async def assign(tx: Tx, case: Case, *, owner: str, actor: str, now: datetime) -> None:
    before = case.owner
    case.owner, case.updated_at = owner, now
    _event(tx, case, "assign", actor, now, note=f"{before or '-'} -> {owner}")
    await tx.flush()


FLAGS = ("platform_intervened", "late_shipment", "out_of_stock")


async def set_flags(tx: Tx, case: Case, flags: dict[str, bool], *, actor: str, now: datetime) -> None:
    changed = {name: value for name, value in flags.items() if getattr(case, name) != value}
    for name, value in changed.items():
        setattr(case, name, value)
    if changed:
        case.updated_at = now
        _event(tx, case, "flags", actor, now, note=", ".join(f"{k}={'on' if v else 'off'}" for k, v in changed.items()))
        await tx.flush()


async def blacklist_buyer(tx: Tx, case: Case, shop: ShopSettings, *, reason: str, actor: str, now: datetime) -> Buyer:
    """Blacklist the case's buyer (the manuals: malicious bad reviews, returns without cause, abuse) with the
    existing blacklist, and keep it in the case's history and the order's remarks."""
    buyer = await tx.get_one(Buyer, case.buyer_id)
    buyer = await repo.set_blacklist(tx, shop_id=case.shop_id, external_id=buyer.external_id, reason=reason,
                                     by=actor, now=now)
    label = "拉黑" if shop.locale.startswith("zh") else "blacklisted"
    remark_id = await _remark(tx, case, shop, f"{label}：{reason}", actor, now)
    _event(tx, case, "blacklist", actor, now, note=reason, remark_id=remark_id)
    case.updated_at = now
    await tx.flush()
    return buyer


# --- reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseView:
    case: Case
    buyer_external_id: str
    buyer_nick: str
    buyer_blacklisted: bool
    conversation_external_id: str | None
    order: Order | None
    facts: cases.CaseFacts
    standing: cases.Standing


#: Cases ranked at most (the newest): ranked in Python; an open queue far beyond this is a staffing problem,
#: not a query.
QUEUE_LIMIT = 2000


async def list_cases(tx: Tx, *, settings_for: dict[str, ShopSettings], now: datetime, shop_id: str | None = None,
                     states: Sequence[str] = cases.OPEN_STATES, type: str | None = None, owner: str | None = None,
                     case_ids: Sequence[int] | None = None, limit: int = 200) -> list[CaseView]:
    """Cases in the agents' priority order (`cases.queue_order`). At most `limit`, most urgent first."""
    query = (
        select(Case, Buyer, Conversation.external_id, Order)
        .join(Buyer, Buyer.id == Case.buyer_id)
        .outerjoin(Conversation, Conversation.id == Case.conversation_id)
        .outerjoin(Order, Order.id == Case.order_id)
        .where(Case.state.in_(states))
        .order_by(Case.opened_at.desc(), Case.id.desc())
        .limit(QUEUE_LIMIT)
    )
    if shop_id:
        query = query.where(Case.shop_id == shop_id)
    if type:
        query = query.where(Case.type == type)
    if owner:
        query = query.where(Case.owner == owner)
    if case_ids is not None:
        query = query.where(Case.id.in_(case_ids))
    rows = (await tx.execute(query)).all()
    replies = await first_replies(tx, [r[0].id for r in rows])
    views = []
    for case, buyer, conv_ext, order in rows:
        facts = facts_of(case, order, replies.get(case.id))
        shop = settings_for.get(case.shop_id)
        policy = shop.after_sales if shop is not None else next(iter(settings_for.values())).after_sales
        views.append(CaseView(case, buyer.external_id, buyer.nick, buyer.blacklisted_at is not None, conv_ext, order,
                              facts, cases.assess(facts, policy, now)))
    views.sort(key=lambda v: v.standing.key)
    return views[:limit]


def facts_of(case: Case, order: Order | None, first_reply_at: datetime | None) -> cases.CaseFacts:
    return cases.CaseFacts(
        id=case.id, state=case.state, opened_at=case.opened_at, reply_due_at=case.reply_due_at,
        resolve_due_at=case.resolve_due_at, ended_at=case.ended_at, first_reply_at=first_reply_at,
        # flagged by an agent, or the platform said so (order.platform_intervened)
        platform_intervened=case.platform_intervened or (
            order is not None and order.platform_intervened_at is not None),
        late_shipment=case.late_shipment,
        out_of_stock=case.out_of_stock, paid_at=None if order is None else order.paid_at,
        shipped_at=None if order is None else order.shipped_at,
        refund_requested_at=None if order is None else order.refund_requested_at,
    )


async def first_replies(tx: Tx, case_ids: Sequence[int]) -> dict[int, datetime]:
    """Per case: an agent's first message in its conversation since the case opened (the 5-minute answer).
    Only agents count: the bot's automatic text is no answer to an after-sales problem."""
    if not case_ids:
        return {}
    query = (
        select(Case.id, func.min(Message.sent_at))
        .join(Message, and_(Message.conversation_id == Case.conversation_id, Message.direction == "out",
                            Message.author == "agent", Message.sent_at >= Case.opened_at))
        .where(Case.id.in_(case_ids))
        .group_by(Case.id)
    )
    return {case_id: at for case_id, at in (await tx.execute(query)).all() if at is not None}


@dataclass(frozen=True)
class CaseDetail:
    view: CaseView
    events: list[CaseEvent]
    remarks: list[Remark]
    follow_ups: list[Reminder]


async def case_detail(tx: Tx, case_id: int, *, settings_for: dict[str, ShopSettings], now: datetime
                      ) -> CaseDetail | None:
    found = await list_cases(tx, settings_for=settings_for, now=now, states=cases.STATES, case_ids=[case_id])
    if not found:
        return None
    view = found[0]
    events = list((await tx.execute(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                    .order_by(CaseEvent.id))).scalars())
    remark_ids = [e.remark_id for e in events if e.remark_id is not None]
    remarks = list((await tx.execute(select(Remark).where(Remark.id.in_(remark_ids)).order_by(Remark.id))).scalars()
                   ) if remark_ids else []
    follow_ups: list[Reminder] = []
    if view.case.conversation_id is not None:
        where: ColumnElement[bool] = and_(Reminder.conversation_id == view.case.conversation_id,
                                          Reminder.order_id.is_(None), Reminder.kind.in_(followups.CASE_KINDS),
                                          Reminder.updated_at >= view.case.opened_at)
        follow_ups = list((await tx.execute(select(Reminder).where(where).order_by(Reminder.due_at))).scalars())
    return CaseDetail(view, events, remarks, follow_ups)


# --- the quality report -----------------------------------------------------------------------------


async def report_rows(tx: Tx, *, start: datetime, end: datetime, shop_id: str | None,
                      types: Sequence[str] = cases.REPORT_TYPES) -> list[ReportRow]:
    query = (
        select(Case.id, Case.type, Case.reason, Case.opened_at, Order.items)
        .outerjoin(Order, Order.id == Case.order_id)
        .where(Case.opened_at >= start, Case.opened_at < end, Case.type.in_(types))
        .order_by(Case.opened_at, Case.id)
    )
    if shop_id:
        query = query.where(Case.shop_id == shop_id)
    out = []
    for case_id, type_, reason, opened_at, items in (await tx.execute(query)).all():
        titles = tuple(dict.fromkeys(str(i.get("title", "")).strip() for i in items or [] if isinstance(i, dict)))
        out.append(ReportRow(case_id, type_, reason, opened_at, tuple(t for t in titles if t)))
    return out
