"""Store: every query csbot runs. Functions take an open transaction (`Tx`) and values; SQL only
through SQLAlchemy expressions (bound parameters), never string formatting."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from csbot.store.db import Tx
from csbot.store.models import Buyer, Conversation, InboundEvent, Message, OutboxItem, Shop, Suggestion

# --- dialect-aware upsert --------------------------------------------------------------------------


def _dialect(tx: Tx) -> str:
    return tx.get_bind().dialect.name


def _insert(tx: Tx, table: Any) -> Any:
    """INSERT … ON CONFLICT needs the dialect's own insert construct."""
    dialect = _dialect(tx)
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _for_update(tx: Tx, query: Select[Any], *, skip_locked: bool = False) -> Select[Any]:
    # SQLite has no row locks; its write transactions are already serialised (BEGIN IMMEDIATE).
    # PostgreSQL: FOR NO KEY UPDATE, the lock an UPDATE of non-key columns takes anyway. Plain FOR UPDATE
    # would also block the FOR KEY SHARE that foreign-key checks take on the row: a reminder tick writing a
    # row that points at an order deadlocked with an order.paid holding that order and cancelling the row.
    if _dialect(tx) == "postgresql":
        return query.with_for_update(skip_locked=skip_locked, key_share=True)
    return query


# --- shops -----------------------------------------------------------------------------------------


async def sync_shops(tx: Tx, shops: Mapping[str, str]) -> None:
    """Make the shops table match the configured shops (id -> name); rows are never deleted."""
    for shop_id, name in shops.items():
        stmt = _insert(tx, Shop).values(id=shop_id, name=name)
        await tx.execute(stmt.on_conflict_do_update(index_elements=[Shop.id], set_={"name": name}))


# --- idempotency -----------------------------------------------------------------------------------


async def claim_event(tx: Tx, *, channel: str, delivery_id: str, dedupe_key: str, type: str,
                      now: datetime) -> int | None:
    """Insert the event's idempotency row; None when this delivery or this event was seen before.

    On PostgreSQL a concurrent twin blocks on the unique index until the first commits, then
    does nothing, so exactly one of them runs the pipeline."""
    stmt = (
        _insert(tx, InboundEvent)
        .values(channel=channel, delivery_id=delivery_id, dedupe_key=dedupe_key, type=type, received_at=now)
        .on_conflict_do_nothing()
        .returning(InboundEvent.id)
    )
    return (await _core(tx, stmt)).scalar_one_or_none()


async def stored_response(tx: Tx, *, channel: str, delivery_id: str, dedupe_key: str) -> dict[str, Any] | None:
    query = select(InboundEvent.response).where(
        or_((InboundEvent.channel == channel) & (InboundEvent.delivery_id == delivery_id),
            InboundEvent.dedupe_key == dedupe_key)
    ).limit(1)
    return (await _core(tx, query)).scalar_one_or_none()


async def save_response(tx: Tx, event_id: int, response: dict[str, Any]) -> None:
    await _core(tx, update(InboundEvent).where(InboundEvent.id == event_id).values(response=response))


async def _core(tx: Tx, stmt: Any, parameters: Any = None) -> Any:
    """Run a statement on the transaction's connection, past the ORM session (no autoflush, no identity
    map): for rows which no code holds as objects. Saves the ORM's per-statement work."""
    return await (await tx.connection()).execute(stmt, parameters)


# --- buyers and conversations ----------------------------------------------------------------------


async def upsert_buyer(tx: Tx, *, shop_id: str, external_id: str, nick: str, now: datetime) -> Buyer:
    """The buyer row, created on first sight (a non-empty nick is kept up to date): one statement."""
    stmt = _insert(tx, Buyer).values(shop_id=shop_id, external_id=external_id, nick=nick, created_at=now)
    set_ = {"nick": nick} if nick else {"external_id": external_id}  # an update so RETURNING yields the row
    stmt = stmt.on_conflict_do_update(index_elements=[Buyer.shop_id, Buyer.external_id], set_=set_)
    return await _upserted(tx, stmt.returning(Buyer))


async def find_buyer(tx: Tx, shop_id: str, external_id: str) -> Buyer | None:
    query = select(Buyer).where(Buyer.shop_id == shop_id, Buyer.external_id == external_id)
    return (await tx.execute(query)).scalar_one_or_none()


async def upsert_conversation(tx: Tx, *, shop_id: str, external_id: str, buyer_id: int, channel: str,
                              now: datetime) -> Conversation:
    """The conversation row, created on first sight, in one statement. On PostgreSQL the DO UPDATE branch
    locks the row for the rest of the transaction (as SELECT … FOR UPDATE would), so two deliveries for
    the same conversation take turns; SQLite's write transactions are serialised anyway."""
    stmt = _insert(tx, Conversation).values(
        shop_id=shop_id, external_id=external_id, buyer_id=buyer_id, channel=channel, status="open", created_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[Conversation.shop_id, Conversation.external_id], set_={"buyer_id": buyer_id}
    )
    return await _upserted(tx, stmt.returning(Conversation))


async def _upserted(tx: Tx, stmt: Any) -> Any:
    # An ORM-enabled INSERT … RETURNING the entity: the row comes back as a tracked object, without a
    # second SELECT; populate_existing refreshes an object this session already holds.
    return (await tx.scalars(stmt, execution_options={"populate_existing": True})).one()


async def set_blacklist(tx: Tx, *, shop_id: str, external_id: str, reason: str | None, by: str,
                        now: datetime) -> Buyer:
    buyer = await upsert_buyer(tx, shop_id=shop_id, external_id=external_id, nick="", now=now)
    buyer.blacklisted_at = now if reason is not None else None
    buyer.blacklist_reason = reason
    buyer.blacklisted_by = by if reason is not None else None
    return buyer


# --- messages --------------------------------------------------------------------------------------


async def add_message(tx: Tx, conv: Conversation, *, direction: str, author: str, external_id: str | None,
                      text: str, sent_at: datetime, now: datetime, intent: str | None = None,
                      score: float | None = None, action: str | None = None) -> Message:
    msg = Message(
        conversation_id=conv.id, shop_id=conv.shop_id, direction=direction, author=author,
        external_id=external_id, text=text, sent_at=sent_at, created_at=now, intent=intent, score=score,
        action=action,
    )
    tx.add(msg)
    await tx.flush()
    return msg


async def last_bot_text(tx: Tx, conversation_id: int) -> str | None:
    """Text of the latest automatic reply in the conversation (to avoid repeating it)."""
    query = (
        select(Message.text)
        .where(Message.conversation_id == conversation_id, Message.direction == "out")
        .order_by(Message.id.desc())
        .limit(1)
    )
    row = (await tx.execute(query.add_columns(Message.author))).first()
    return row[0] if row is not None and row[1] == "bot" else None


async def count_messages(tx: Tx, *, shop_id: str, conversation_external_id: str, direction: str = "in") -> int:
    query = (
        select(func.count(Message.id))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.shop_id == shop_id, Conversation.external_id == conversation_external_id,
               Message.direction == direction)
    )
    return (await tx.execute(query)).scalar_one()


async def recent_bot_messages(tx: Tx, *, since: datetime, cap: int, shop_id: str | None = None,
                              buyer_id: int | None = None) -> int:
    """Automatic messages (author bot) to the buyer, or by the shop, created since `since`, counted up to
    `cap` (a count of `cap` means "at the cap"): a range of the index on (shop, author, created_at), or of
    the buyer's conversations, of at most `cap` rows, however many messages the table holds."""
    query = select(Message.id).where(Message.author == "bot", Message.direction == "out",
                                     Message.created_at >= since)
    if buyer_id is not None:
        query = query.join(Conversation, Conversation.id == Message.conversation_id).where(
            Conversation.buyer_id == buyer_id)
    if shop_id is not None:
        query = query.where(Message.shop_id == shop_id)
    recent = query.limit(cap).subquery()
    return (await tx.execute(select(func.count()).select_from(recent))).scalar_one()


async def auto_send_counts(tx: Tx, *, shop_id: str, buyer_id: int, now: datetime, buyer_hour_cap: int | None,
                           shop_minute_cap: int | None) -> tuple[int, int]:
    """(automatic messages to the buyer in the last hour, by the shop in the last minute), each up to its cap."""
    to_buyer = 0 if buyer_hour_cap is None else await recent_bot_messages(
        tx, since=now - timedelta(hours=1), cap=buyer_hour_cap, buyer_id=buyer_id)
    by_shop = 0 if shop_minute_cap is None else await recent_bot_messages(
        tx, since=now - timedelta(minutes=1), cap=shop_minute_cap, shop_id=shop_id)
    return to_buyer, by_shop


# --- suggestions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSuggestion:
    intent: str | None
    score: float | None
    trigger: str | None
    template: str
    text: str
    status: str = "pending"


async def supersede_pending(tx: Tx, conversation_id: int, now: datetime) -> None:
    """A new buyer message makes the suggestions for the previous one stale."""
    # synchronize_session=False: no code holds the pending rows as objects while it runs (the ORM's default
    # "evaluate" pass over the identity map cost more than the UPDATE itself on the webhook's hot path).
    await tx.execute(
        update(Suggestion)
        .where(Suggestion.conversation_id == conversation_id, Suggestion.status == "pending")
        .values(status="superseded", decided_at=now)
        .execution_options(synchronize_session=False)
    )


async def add_suggestions(tx: Tx, msg: Message, items: Sequence[NewSuggestion], now: datetime
                          ) -> list[tuple[int, NewSuggestion]]:
    """Store the message's suggestions (rank = position) in one multi-row INSERT … RETURNING; returns each
    with its new id, in rank order. Core, past the ORM: nothing holds these rows as objects here."""
    if not items:
        return []
    values = [
        {"message_id": msg.id, "conversation_id": msg.conversation_id, "rank": rank, "intent": s.intent,
         "score": s.score, "trigger": s.trigger, "template": s.template, "text": s.text, "status": s.status,
         "created_at": now}
        for rank, s in enumerate(items, start=1)
    ]
    # RETURNING rows may come back in any order (SQLite says so); the distinct ranks put them back.
    rows = (await _core(tx, insert(Suggestion).returning(Suggestion.rank, Suggestion.id), values)).all()
    ids = dict(rows)
    return [(ids[rank], item) for rank, item in enumerate(items, start=1)]


async def suggestion_for_update(tx: Tx, suggestion_id: int) -> Suggestion | None:
    query = _for_update(tx, select(Suggestion).where(Suggestion.id == suggestion_id))
    return (await tx.execute(query)).scalar_one_or_none()


async def pending_suggestions(tx: Tx, conversation_id: int) -> list[Suggestion]:
    query = (
        select(Suggestion)
        .where(Suggestion.conversation_id == conversation_id, Suggestion.status == "pending")
        .order_by(Suggestion.message_id.desc(), Suggestion.rank)
    )
    return list((await tx.execute(query)).scalars())


# --- conversations for agents ----------------------------------------------------------------------


async def list_conversations(tx: Tx, *, shop_id: str | None, status: str | None, limit: int
                             ) -> list[tuple[Conversation, Buyer]]:
    query = (
        select(Conversation, Buyer)
        .join(Buyer, Buyer.id == Conversation.buyer_id)
        .order_by(Conversation.last_buyer_at.desc().nulls_last(), Conversation.id.desc())
        .limit(limit)
    )
    if shop_id:
        query = query.where(Conversation.shop_id == shop_id)
    if status:
        query = query.where(Conversation.status == status)
    return [(c, b) for c, b in (await tx.execute(query)).all()]


async def conversation_with_buyer(tx: Tx, conversation_id: int) -> tuple[Conversation, Buyer] | None:
    query = select(Conversation, Buyer).join(Buyer, Buyer.id == Conversation.buyer_id).where(
        Conversation.id == conversation_id
    )
    row = (await tx.execute(query)).first()
    return None if row is None else (row[0], row[1])


async def messages_of(tx: Tx, conversation_id: int, limit: int = 200) -> list[Message]:
    query = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc()).limit(limit)
    return list(reversed((await tx.execute(query)).scalars().all()))


async def waiting_for_agent(tx: Tx, conversation_id: int) -> bool:
    query = select(func.count(Suggestion.id)).where(
        Suggestion.conversation_id == conversation_id, Suggestion.status == "pending"
    )
    return (await tx.execute(query)).scalar_one() > 0


# --- outbox ----------------------------------------------------------------------------------------


#: Session.info key: this transaction put something in the outbox (see `enqueue`, `ingest.accept`).
ENQUEUED = "csbot_enqueued"


def new_reply_id() -> str:
    return "r_" + uuid.uuid4().hex


async def enqueue(tx: Tx, *, conv: Conversation, channel: str, payload: dict[str, Any], reply_id: str,
                  now: datetime) -> OutboxItem:
    tx.info[ENQUEUED] = True  # the caller wakes the outbox worker only when this transaction gave it work
    item = OutboxItem(
        reply_id=reply_id, shop_id=conv.shop_id, conversation_id=conv.id, channel=channel, payload=payload,
        status="pending", attempts=0, next_attempt_at=now, created_at=now,
    )
    tx.add(item)
    await tx.flush()
    return item


async def claim_outbox(tx: Tx, *, now: datetime, lease: timedelta, limit: int) -> list[OutboxItem]:
    """Take due rows: pending and due, or claimed by a sender whose lease ran out (it died)."""
    due = or_(
        (OutboxItem.status == "pending") & (OutboxItem.next_attempt_at <= now),
        (OutboxItem.status == "sending") & (OutboxItem.lease_until < now),
    )
    ids = _for_update(tx, select(OutboxItem.id).where(due).order_by(OutboxItem.id).limit(limit), skip_locked=True)
    stmt = (
        update(OutboxItem)
        .where(OutboxItem.id.in_(ids.scalar_subquery()))
        .values(status="sending", lease_until=now + lease, attempts=OutboxItem.attempts + 1)
        .returning(OutboxItem)
        .execution_options(synchronize_session=False)
    )
    return sorted((await tx.execute(stmt)).scalars().all(), key=lambda item: item.id)


async def finish_outbox(tx: Tx, item_id: int, *, attempt: int, status: str, now: datetime, error: str | None = None,
                        next_attempt_at: datetime | None = None) -> None:
    values: dict[str, Any] = {"status": status, "lease_until": None, "last_error": error}
    if status == "delivered":
        values["delivered_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    # Only the holder of the claim may finish it: `attempts` is the claim's fencing token, so a sender whose
    # lease ran out while it was stalled cannot overwrite the claim another instance has taken since.
    await tx.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.status == "sending", OutboxItem.attempts == attempt)
        .values(**values)
    )


async def outbox_items(tx: Tx, *, status: str | None, limit: int) -> list[OutboxItem]:
    query = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxItem.status == status)
    return list((await tx.execute(query)).scalars())


async def outbox_depth(tx: Tx) -> dict[str, int]:
    query = select(OutboxItem.status, func.count(OutboxItem.id)).group_by(OutboxItem.status)
    return {status: count for status, count in (await tx.execute(query)).all()}
