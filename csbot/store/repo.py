"""Store: every query csbot runs. Functions take an open transaction (`Tx`) and values; SQL only
through SQLAlchemy expressions (bound parameters), never string formatting."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import BindParameter, Row, Select, Table, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from csbot.store.db import Tx
from csbot.store.models import Base, Buyer, Conversation, InboundEvent, Message, OutboxItem, Shop, Suggestion

# --- dialect-aware upsert --------------------------------------------------------------------------


def _dialect(tx: Tx) -> str:
    return tx.get_bind().dialect.name


def _insert(tx: Tx, table: Any) -> Any:
    """INSERT … ON CONFLICT needs the dialect's own insert construct."""
    return _insert_for(_dialect(tx), table)


def _insert_for(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


# --- the webhook's hot statements --------------------------------------------------------------------
# Every webhook runs the same dozen statements. Built once (per dialect) with bind parameters, SQLAlchemy
# skips constructing each statement and computing its cache key on every call, and run on the connection
# they skip the ORM's per-statement work; together that was most of a webhook's CPU (docs/benchmarks.md,
# "Fourth pass"). Rows the caller holds as objects come back through `_tracked`, without a second query.

T = TypeVar("T")


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _binds(table: Table, *names: str) -> dict[str, BindParameter[Any]]:
    """`column: :column` for VALUES/SET clauses, typed like the column (UTC datetimes, JSON)."""
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


def _tracked(tx: Tx, cls: type[T], row: Row[Any]) -> T:
    """A row that a statement returned, as the session's object (no second query): the object the session
    already holds for it, refreshed, or a new persistent one. Either way unmodified: nothing to flush."""
    values = row._asdict()
    held = _sync_held(tx, cls, values["id"], values)
    if held is not None:
        return held
    obj = cls(**values)
    make_transient_to_detached(obj)
    tx.sync_session.add(obj)
    return obj


def _sync_held(tx: Tx, cls: type[T], id_: int, values: Mapping[str, Any]) -> T | None:
    """Keep the object the session may hold for a row in step with what a Core statement wrote to it."""
    session = tx.sync_session
    held: T | None = session.identity_map.get(session.identity_key(cls, id_))
    for name, value in values.items() if held is not None else ():
        set_committed_value(held, name, value)
    return held


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
    params = {"channel": channel, "delivery_id": delivery_id, "dedupe_key": dedupe_key, "type": type,
              "received_at": now}
    return (await _core(tx, _claim_event(_dialect(tx)), params)).scalar_one_or_none()


@functools.cache
def _claim_event(dialect: str) -> Any:
    table = _table(InboundEvent)
    return (_insert_for(dialect, table).values(_binds(table, "channel", "delivery_id", "dedupe_key", "type",
                                                      "received_at"))
            .on_conflict_do_nothing().returning(table.c.id))


async def stored_response(tx: Tx, *, channel: str, delivery_id: str, dedupe_key: str) -> dict[str, Any] | None:
    query = select(InboundEvent.response).where(
        or_((InboundEvent.channel == channel) & (InboundEvent.delivery_id == delivery_id),
            InboundEvent.dedupe_key == dedupe_key)
    ).limit(1)
    return (await _core(tx, query)).scalar_one_or_none()


async def save_response(tx: Tx, event_id: int, response: dict[str, Any]) -> None:
    await _core(tx, _save_response(), {"event_id": event_id, "response": response})


@functools.cache
def _save_response() -> Any:
    table = _table(InboundEvent)
    return update(table).where(table.c.id == bindparam("event_id")).values(_binds(table, "response"))


async def _flush_pending(tx: Tx) -> None:
    """Write the session's pending object changes before a prebuilt statement on the connection (`_core`
    skips the ORM's autoflush). A session with nothing pending costs no trip through the greenlet bridge."""
    session = tx.sync_session
    if session.new or session.dirty or session.deleted:
        await tx.flush()


async def _core(tx: Tx, stmt: Any, parameters: Any = None) -> Any:
    """Run a statement on the transaction's connection, past the ORM session (no autoflush, no identity
    map): for rows which no code holds as objects. Saves the ORM's per-statement work."""
    return await (await _connection(tx)).execute(stmt, parameters)


_CONNECTION = "csbot_connection"  # Session.info key: (the session's transaction, its AsyncConnection)


async def _connection(tx: Tx) -> AsyncConnection:
    """The transaction's connection, asked of the session once per transaction (each ask is a trip through
    the greenlet bridge)."""
    current = tx.sync_session.get_transaction()
    held = tx.info.get(_CONNECTION)
    if held is not None and held[0] is current:
        return held[1]
    connection = await tx.connection()
    tx.info[_CONNECTION] = (tx.sync_session.get_transaction(), connection)
    return connection


# --- buyers and conversations ----------------------------------------------------------------------


async def upsert_buyer(tx: Tx, *, shop_id: str, external_id: str, nick: str, now: datetime) -> Buyer:
    """The buyer row, created on first sight (a non-empty nick is kept up to date): one statement."""
    params = {"shop_id": shop_id, "external_id": external_id, "nick": nick, "created_at": now}
    row = (await _core(tx, _upsert_buyer(_dialect(tx)), params)).one()
    return _tracked(tx, Buyer, row)


@functools.cache
def _upsert_buyer(dialect: str) -> Any:
    table = _table(Buyer)
    stmt = _insert_for(dialect, table).values(_binds(table, "shop_id", "external_id", "nick", "created_at"))
    # Always an update (an empty nick keeps the stored one), so that RETURNING yields the row.
    nick = case((stmt.excluded.nick == "", table.c.nick), else_=stmt.excluded.nick)
    return stmt.on_conflict_do_update(index_elements=[table.c.shop_id, table.c.external_id],
                                      set_={"nick": nick}).returning(*table.c)


async def find_buyer(tx: Tx, shop_id: str, external_id: str) -> Buyer | None:
    query = select(Buyer).where(Buyer.shop_id == shop_id, Buyer.external_id == external_id)
    return (await tx.execute(query)).scalar_one_or_none()


async def upsert_conversation(tx: Tx, *, shop_id: str, external_id: str, buyer_id: int, channel: str,
                              now: datetime) -> Conversation:
    """The conversation row, created on first sight, in one statement. On PostgreSQL the DO UPDATE branch
    locks the row for the rest of the transaction (as SELECT … FOR UPDATE would), so two deliveries for
    the same conversation take turns; SQLite's write transactions are serialised anyway."""
    params = {"shop_id": shop_id, "external_id": external_id, "buyer_id": buyer_id, "channel": channel,
              "created_at": now}
    row = (await _core(tx, _upsert_conversation(_dialect(tx)), params)).one()
    return _tracked(tx, Conversation, row)


@functools.cache
def _upsert_conversation(dialect: str) -> Any:
    table = _table(Conversation)
    stmt = (_insert_for(dialect, table)
            .values({**_binds(table, "shop_id", "external_id", "buyer_id", "channel", "created_at"), "status": "open"}))
    return stmt.on_conflict_do_update(index_elements=[table.c.shop_id, table.c.external_id],
                                      set_={"buyer_id": stmt.excluded.buyer_id}).returning(*table.c)


async def record_turn(tx: Tx, conv: Conversation, *, last_buyer_at: datetime, last_intent: str | None,
                      last_score: float | None, offline_notice_for: datetime | None, status: str) -> None:
    """What a buyer's message leaves on its conversation, in one prebuilt UPDATE (the object follows)."""
    values = {"last_buyer_at": last_buyer_at, "last_intent": last_intent, "last_score": last_score,
              "offline_notice_for": offline_notice_for, "status": status}
    await _core(tx, _record_turn(), values | {"conversation_id": conv.id})
    for name, value in values.items():
        set_committed_value(conv, name, value)


@functools.cache
def _record_turn() -> Any:
    table = _table(Conversation)
    return update(table).where(table.c.id == bindparam("conversation_id")).values(
        _binds(table, "last_buyer_at", "last_intent", "last_score", "offline_notice_for", "status"))


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
    values = {
        "conversation_id": conv.id, "shop_id": conv.shop_id, "direction": direction, "author": author,
        "external_id": external_id, "text": text, "sent_at": sent_at, "created_at": now, "intent": intent,
        "score": score, "action": action,
    }
    row = (await _core(tx, _add_message(), values)).one()
    return _tracked(tx, Message, row)


@functools.cache
def _add_message() -> Any:
    table = _table(Message)
    return insert(table).values(_binds(table, *(c.name for c in table.c if c.name != "id"))).returning(*table.c)


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
    if (buyer_id is None) == (shop_id is None):
        raise ValueError("count the messages to one buyer or by one shop")
    await _flush_pending(tx)
    params = {"since": since, "cap": cap, "who": buyer_id if buyer_id is not None else shop_id}
    return (await _core(tx, _recent_bot_messages(by_buyer=buyer_id is not None), params)).scalar_one()


@functools.cache
def _recent_bot_messages(*, by_buyer: bool) -> Any:
    query = select(Message.id).where(Message.author == "bot", Message.direction == "out",
                                     Message.created_at >= bindparam("since", type_=Message.created_at.type))
    if by_buyer:
        query = query.join(Conversation, Conversation.id == Message.conversation_id).where(
            Conversation.buyer_id == bindparam("who"))
    else:
        query = query.where(Message.shop_id == bindparam("who"))
    return select(func.count()).select_from(query.limit(bindparam("cap")).subquery())


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
    # On the connection: no code holds the pending rows as objects while it runs (the ORM's "evaluate" pass
    # over the identity map cost more than the UPDATE itself on the webhook's hot path).
    await _core(tx, _supersede_pending(), {"conv_id": conversation_id, "decided_at": now})


@functools.cache
def _supersede_pending() -> Any:
    table = _table(Suggestion)
    return (update(table).where(table.c.conversation_id == bindparam("conv_id"), table.c.status == "pending")
            .values({**_binds(table, "decided_at"), "status": "superseded"}))


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
    rows = (await _core(tx, _add_suggestions(), values)).all()
    ids = dict(rows)
    return [(ids[rank], item) for rank, item in enumerate(items, start=1)]


@functools.cache
def _add_suggestions() -> Any:
    table = _table(Suggestion)
    return insert(table).returning(table.c.rank, table.c.id)


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


async def list_conversations(tx: Tx, *, shop_id: str | None, status: str | None, limit: int,
                             exclude_channels: tuple[str, ...] = ()) -> list[tuple[Conversation, Buyer]]:
    query = (
        select(Conversation, Buyer)
        .join(Buyer, Buyer.id == Conversation.buyer_id)
        .where(Conversation.channel.not_in(exclude_channels))
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
                  now: datetime) -> int:
    """Put a payload in the outbox; returns the row's id."""
    tx.info[ENQUEUED] = True  # the caller wakes the outbox worker only when this transaction gave it work
    values = {"reply_id": reply_id, "shop_id": conv.shop_id, "conversation_id": conv.id, "channel": channel,
              "payload": payload, "next_attempt_at": now, "created_at": now}
    return int((await _core(tx, _enqueue(), values)).scalar_one())


@functools.cache
def _enqueue() -> Any:
    table = _table(OutboxItem)
    return (insert(table)
            .values({**_binds(table, "reply_id", "shop_id", "conversation_id", "channel", "payload", "next_attempt_at",
                           "created_at"), "status": "pending", "attempts": 0})
            .returning(table.c.id))


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
