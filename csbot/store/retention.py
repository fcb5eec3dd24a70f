"""Store: data retention. `purge` deletes what is older than a cutoff and finished; `forget_buyer` erases one
buyer. Queries only through SQLAlchemy expressions; each runs in the caller's transaction, so it is all or nothing.

What a purge keeps, whatever its age: a conversation with anything still open — a reply waiting in the outbox
(pending / sending), a reminder not yet fired, an open after-sales case, a buyer waiting for a restock, or an
order of its buyer that is unpaid (`created`) or has a refund requested. Orders themselves are accounting
records and are never purged (their link to a purged conversation is cleared); buyers (blacklist, opt-out)
stay. Dead-lettered outbox rows older than the cutoff go with the delivered ones.

What forgetting a buyer keeps: their orders, for accounting (amount, items, status and milestone times, the
platform's order id), with the buyer and conversation links cleared, and after-sales cases of other buyers.
Everything else goes: conversations, messages, suggestions, outbox rows (pending ones too: nothing more is
sent), reminders, remarks on their conversations and orders, their cases and case history, reviews and review
replies, restock waits, the idempotency rows of their messages and reviews (these hold our answers, which
quote them), and the buyer row itself (with its nick, blacklist and opt-out: a new message under the same id
starts a new buyer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, or_, select, update

from csbot.store.db import Database, Tx
from csbot.store.models import (
    Buyer,
    Case,
    CaseEvent,
    Conversation,
    InboundEvent,
    Message,
    Order,
    OutboxItem,
    Remark,
    Reminder,
    RestockWait,
    Review,
    ReviewReply,
    Suggestion,
)

OPEN_OUTBOX = ("pending", "sending")
OPEN_REMINDER = ("pending", "claimed")
FINISHED_OUTBOX = ("delivered", "dead")
FINISHED_REMINDER = ("sent", "cancelled", "skipped")
OPEN_ORDER = ("created", "refund_requested")  # unpaid, or an after-sales case the platform still runs
CHUNK = 500  # ids per IN (…): well under SQLite's and asyncpg's bound-parameter limits

Counts = dict[str, int]


@dataclass(frozen=True)
class ForgetResult:
    found: bool
    deleted: Counts
    orders_kept: int  # anonymised: buyer and conversation links cleared


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


async def _delete(tx: Tx, model: Any, *where: ColumnElement[bool]) -> int:
    result = await tx.execute(delete(model).where(*where).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def _ids(tx: Tx, column: Any, *where: ColumnElement[bool]) -> list[Any]:
    return list((await tx.execute(select(column).where(*where))).scalars())


def _add(counts: Counts, table: str, n: int) -> None:
    counts[table] = counts.get(table, 0) + n


# --- purge -----------------------------------------------------------------------------------------


def _stale_conversations(cutoff: datetime) -> Any:
    """Conversations whose last activity is before `cutoff` and with nothing still open."""
    conv = Conversation
    return select(conv.id).where(
        conv.created_at < cutoff,
        or_(conv.last_buyer_at.is_(None), conv.last_buyer_at < cutoff),
        ~exists().where(Message.conversation_id == conv.id, Message.created_at >= cutoff),
        ~exists().where(OutboxItem.conversation_id == conv.id, OutboxItem.status.in_(OPEN_OUTBOX)),
        ~exists().where(Reminder.conversation_id == conv.id, Reminder.status.in_(OPEN_REMINDER)),
        ~exists().where(Order.status.in_(OPEN_ORDER),
                        or_(Order.conversation_id == conv.id, Order.buyer_id == conv.buyer_id)),
        ~exists().where(Case.conversation_id == conv.id, Case.ended_at.is_(None)),
        ~exists().where(RestockWait.conversation_id == conv.id, RestockWait.status == "waiting"),
    )


async def purge(tx: Tx, *, cutoff: datetime) -> Counts:
    """Delete finished data whose last activity is before `cutoff`; returns rows deleted per table."""
    counts: Counts = {}
    conv_ids = list((await tx.execute(_stale_conversations(cutoff))).scalars())
    for ids in _chunks(conv_ids):
        await _drop_conversations(tx, ids, counts)
    # Finished rows of conversations that stay (still open elsewhere, or recently active).
    _add(counts, "reminders", await _delete(
        tx, Reminder, Reminder.status.in_(FINISHED_REMINDER), Reminder.updated_at < cutoff,
        ~exists().where(RestockWait.reminder_id == Reminder.id)))
    _add(counts, "outbox", await _delete(
        tx, OutboxItem, OutboxItem.status.in_(FINISHED_OUTBOX),
        or_(OutboxItem.delivered_at < cutoff, (OutboxItem.delivered_at.is_(None)) & (OutboxItem.created_at < cutoff))))
    # A delivery older than the cutoff is long past the webhook timestamp tolerance: it cannot come back.
    _add(counts, "inbound_events", await _delete(tx, InboundEvent, InboundEvent.received_at < cutoff))
    return {table: n for table, n in counts.items() if n}


async def _drop_conversations(tx: Tx, ids: Sequence[int], counts: Counts) -> None:
    """Delete conversations chosen by `_stale_conversations` and what hangs off them, children first."""
    suggestion_ids = select(Suggestion.id).where(Suggestion.conversation_id.in_(ids))
    await tx.execute(update(Reminder).where(Reminder.suggestion_id.in_(suggestion_ids)).values(suggestion_id=None)
                     .execution_options(synchronize_session=False))
    _add(counts, "restock_waits", await _delete(tx, RestockWait, RestockWait.conversation_id.in_(ids)))
    _add(counts, "reminders", await _delete(tx, Reminder, Reminder.conversation_id.in_(ids)))
    await tx.execute(update(Case).where(Case.conversation_id.in_(ids)).values(conversation_id=None)
                     .execution_options(synchronize_session=False))
    await tx.execute(update(Order).where(Order.conversation_id.in_(ids)).values(conversation_id=None)
                     .execution_options(synchronize_session=False))
    remark_ids = select(Remark.id).where(Remark.conversation_id.in_(ids))
    await tx.execute(update(CaseEvent).where(CaseEvent.remark_id.in_(remark_ids)).values(remark_id=None)
                     .execution_options(synchronize_session=False))
    _add(counts, "remarks", await _delete(tx, Remark, Remark.conversation_id.in_(ids)))
    _add(counts, "outbox", await _delete(tx, OutboxItem, OutboxItem.conversation_id.in_(ids)))
    _add(counts, "suggestions", await _delete(tx, Suggestion, Suggestion.conversation_id.in_(ids)))
    _add(counts, "messages", await _delete(tx, Message, Message.conversation_id.in_(ids)))
    _add(counts, "conversations", await _delete(tx, Conversation, Conversation.id.in_(ids)))


class _DryRun(Exception):
    def __init__(self, counts: Counts) -> None:
        super().__init__("dry run")
        self.counts = counts


async def run_purge(db: Database, *, cutoff: datetime, dry_run: bool = False) -> Counts:
    """Purge in one transaction; a dry run does the same deletes and rolls them back, so its counts are exact."""
    try:
        async with db.transaction() as tx:
            counts = await purge(tx, cutoff=cutoff)
            if dry_run:
                raise _DryRun(counts)
    except _DryRun as rolled_back:
        return rolled_back.counts
    return counts


# --- forget one buyer ------------------------------------------------------------------------------


async def forget_buyer(tx: Tx, *, shop_id: str, external_id: str) -> ForgetResult:
    """Erase one buyer (see the module docstring for what is kept for accounting)."""
    buyer = (await tx.execute(select(Buyer).where(Buyer.shop_id == shop_id, Buyer.external_id == external_id))
             ).scalar_one_or_none()
    if buyer is None:
        return ForgetResult(False, {}, 0)
    counts: Counts = {}
    conv_ids = await _ids(tx, Conversation.id, Conversation.buyer_id == buyer.id)
    order_ids = await _ids(tx, Order.id, Order.buyer_id == buyer.id)
    message_keys = [f"message:{shop_id}:{mid}" for mid in await _ids(
        tx, Message.external_id, Message.conversation_id.in_(conv_ids), Message.direction == "in") if mid]
    review_ids = await _ids(tx, Review.id, Review.buyer_id == buyer.id)
    review_keys = [f"review:{shop_id}:{rid}" for rid in await _ids(tx, Review.external_id, Review.id.in_(review_ids))]
    case_ids = await _ids(tx, Case.id, Case.buyer_id == buyer.id)

    _add(counts, "restock_waits", await _delete(tx, RestockWait, or_(
        RestockWait.buyer_id == buyer.id, RestockWait.conversation_id.in_(conv_ids))))
    _add(counts, "review_replies", await _delete(tx, ReviewReply, ReviewReply.review_id.in_(review_ids)))
    _add(counts, "reviews", await _delete(tx, Review, Review.id.in_(review_ids)))
    _add(counts, "case_events", await _delete(tx, CaseEvent, CaseEvent.case_id.in_(case_ids)))
    _add(counts, "cases", await _delete(tx, Case, Case.id.in_(case_ids)))
    # Another buyer's case may have been opened in one of these conversations: it stays, unlinked.
    await tx.execute(update(Case).where(Case.conversation_id.in_(conv_ids)).values(conversation_id=None)
                     .execution_options(synchronize_session=False))
    _add(counts, "reminders", await _delete(tx, Reminder, or_(
        Reminder.buyer_id == buyer.id, Reminder.conversation_id.in_(conv_ids), Reminder.order_id.in_(order_ids))))
    remarks = or_(Remark.conversation_id.in_(conv_ids), Remark.order_id.in_(order_ids))
    await tx.execute(update(CaseEvent).where(CaseEvent.remark_id.in_(select(Remark.id).where(remarks)))
                     .values(remark_id=None).execution_options(synchronize_session=False))
    _add(counts, "remarks", await _delete(tx, Remark, remarks))
    _add(counts, "outbox", await _delete(tx, OutboxItem, OutboxItem.conversation_id.in_(conv_ids)))
    _add(counts, "suggestions", await _delete(tx, Suggestion, Suggestion.conversation_id.in_(conv_ids)))
    _add(counts, "messages", await _delete(tx, Message, Message.conversation_id.in_(conv_ids)))
    kept = await tx.execute(update(Order).where(Order.buyer_id == buyer.id).values(buyer_id=None, conversation_id=None)
                            .execution_options(synchronize_session=False))
    await tx.execute(update(Order).where(Order.conversation_id.in_(conv_ids)).values(conversation_id=None)
                     .execution_options(synchronize_session=False))
    _add(counts, "conversations", await _delete(tx, Conversation, Conversation.id.in_(conv_ids)))
    _add(counts, "inbound_events", await _delete(tx, InboundEvent, InboundEvent.dedupe_key.in_(
        [*message_keys, *review_keys])))
    _add(counts, "buyers", await _delete(tx, Buyer, Buyer.id == buyer.id))
    return ForgetResult(True, {table: n for table, n in counts.items() if n}, int(getattr(kept, "rowcount", 0)))
