"""Store: the tables. SQLAlchemy 2 typed declarative models; timestamps are stored as UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite has no integer type wider than INTEGER PRIMARY KEY aliasing; PostgreSQL gets BIGINT ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Shop(Base):
    __tablename__ = "shops"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Buyer(Base):
    __tablename__ = "buyers"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    nick: Mapped[str] = mapped_column(String(200), default="")
    blacklisted_at: Mapped[datetime | None]
    blacklist_reason: Mapped[str | None] = mapped_column(Text)
    blacklisted_by: Mapped[str | None] = mapped_column(String(128))
    opted_out_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"), Index("ix_conversations_activity", "last_buyer_at"),
                      Index("ix_conversations_buyer", "buyer_id"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"))
    channel: Mapped[str] = mapped_column(String(32), default="generic")
    # open: nothing waiting; waiting: a buyer message awaits an agent; escalated: needs a supervisor/human
    status: Mapped[str] = mapped_column(String(16), default="open")
    last_buyer_at: Mapped[datetime | None]
    last_intent: Mapped[str | None] = mapped_column(String(64))
    last_score: Mapped[float | None] = mapped_column(Float)
    # the next-opening instant of the off period whose offline reply this conversation already got
    offline_notice_for: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("shop_id", "direction", "external_id"),
        Index("ix_messages_conversation", "conversation_id", "id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    shop_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(3))  # "in" (buyer) | "out" (bot or agent)
    author: Mapped[str] = mapped_column(String(16))  # buyer | bot | agent
    external_id: Mapped[str | None] = mapped_column(String(128))  # buyer's message id, or our reply_id
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime]
    intent: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    action: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]


class Suggestion(Base):
    __tablename__ = "suggestions"
    __table_args__ = (Index("ix_suggestions_conversation_status", "conversation_id", "status"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # None for a follow-up raised by a reminder (no buyer message asked for it)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    rank: Mapped[int] = mapped_column(Integer)
    intent: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    trigger: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    # pending -> accepted | edited | rejected; superseded when a newer buyer message replaces it;
    # auto_sent for the one the policy sent itself (kept for the record and for learning)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    final_text: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class OutboxItem(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reply_id: Mapped[str] = mapped_column(String(64), unique=True)  # the receiver's idempotency key
    shop_id: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    channel: Mapped[str] = mapped_column(String(32), default="generic")
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sending|delivered|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class InboundEvent(Base):
    """One row per accepted webhook event: the idempotency record and the answer we gave."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("channel", "delivery_id"), UniqueConstraint("dedupe_key"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(200))  # webhook-id header
    dedupe_key: Mapped[str] = mapped_column(String(300))  # e.g. "message:demo:m-1"
    type: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any] | None]
    received_at: Mapped[datetime]


class Order(Base):
    """A platform order as far as its events told us. Milestone times are set once (the first event wins),
    and `status` is the furthest milestone reached, so late or repeated events never move it back."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"), Index("ix_orders_buyer", "buyer_id"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("buyers.id"))  # None until order.created arrives
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))  # if the event named it
    # created | paid | shipped | delivered | refund_requested | closed
    status: Mapped[str] = mapped_column(String(16), default="created")
    amount: Mapped[str | None] = mapped_column(String(32))  # decimal string as the platform sent it
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    ordered_at: Mapped[datetime | None]  # order.created's created_at
    auto_close_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    refund_requested_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Reminder(Base):
    """A message (or agents' follow-up) due at a time: 催付 stages per order, follow-ups per conversation.

    The ticker claims due rows; a row is fired at most once because sending and marking it `sent`
    commit together. Uniqueness per (order, kind, stage), or per (conversation, kind, stage) for
    conversation follow-ups, makes replanning on a repeated event a no-op."""

    __tablename__ = "reminders"
    __table_args__ = (
        Index("ix_reminders_due", "status", "due_at"),
        Index("uq_reminders_order_stage", "order_id", "kind", "stage", unique=True),
        Index("uq_reminders_conversation_stage", "conversation_id", "kind", "stage", unique=True,
              sqlite_where=text("order_id IS NULL"), postgresql_where=text("order_id IS NULL")),
        Index("ix_reminders_buyer_sent", "buyer_id", "sent_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"))
    kind: Mapped[str] = mapped_column(String(32))  # payment | consult_followup | after_delivery | aftersales_followup
    stage: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|claimed|sent|cancelled|skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)  # why skipped / cancelled / deferred / suggested
    reply_id: Mapped[str | None] = mapped_column(String(64))  # the outbox reply it became
    suggestion_id: Mapped[int | None] = mapped_column(ForeignKey("suggestions.id"))  # or the agents' suggestion
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# --- console: people, their sessions and tokens, and what they noted -------------------------------


class User(Base):
    """An agent or supervisor of the console. Only an argon2 hash of the password is stored."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # agent | supervisor
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class AuthSession(Base):
    """A console login. The cookie holds a random token; only its SHA-256 is stored (a leaked table
    gives no sessions). `csrf_token` is echoed by the page on every POST."""

    __tablename__ = "auth_sessions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ApiToken(Base):
    """A bearer token for an integration, acting as its user (and role). Only the SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Remark(Base):
    """A note an agent leaves on a conversation (escalation reason) or order, seeds' format: reason + agent + date."""

    __tablename__ = "remarks"
    __table_args__ = (Index("ix_remarks_conversation", "conversation_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(String(16))  # escalation | remark
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
