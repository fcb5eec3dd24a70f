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
    MetaData,
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
    # Named constraints, so migrations can refer to them (SQLite keeps no name for an unnamed constraint,
    # and Alembic's batch mode needs one to drop or alter it).
    metadata = MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })
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
        # The automatic-send rate limits count a shop's recent bot messages (store/repo.py recent_bot_messages).
        Index("ix_messages_shop_author_created", "shop_id", "author", "created_at"),
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
    platform_intervened_at: Mapped[datetime | None]  # the platform stepped into the dispute (小二介入)
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


# --- after-sales cases (csbot/aftersales): one row per case, its history in case_events ------------


class Case(Base):
    """An after-sales case (售后工单): a return, exchange, quality problem, parcel problem or complaint, from the
    buyer's first message about it until an agent resolves or closes it with a resolution.

    At most one case per buyer and order is open at a time (per buyer and conversation when no order is
    known): further messages join it. `ended_at` is set when it is resolved or closed."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_shop_state", "shop_id", "state"),
        Index("ix_cases_conversation", "conversation_id"),
        Index("ix_cases_opened", "opened_at"),
        Index("uq_cases_open_order", "buyer_id", "order_id", unique=True,
              sqlite_where=text("ended_at IS NULL AND order_id IS NOT NULL"),
              postgresql_where=text("ended_at IS NULL AND order_id IS NOT NULL")),
        Index("uq_cases_open_conversation", "buyer_id", "conversation_id", unique=True,
              sqlite_where=text("ended_at IS NULL AND order_id IS NULL AND conversation_id IS NOT NULL"),
              postgresql_where=text("ended_at IS NULL AND order_id IS NULL AND conversation_id IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    type: Mapped[str] = mapped_column(String(32))  # csbot/aftersales/cases.py TYPES: return_refund, exchange, …
    reason: Mapped[str] = mapped_column(String(64))  # a code from csbot/aftersales/cases.py REASONS
    # new -> in_progress -> waiting_buyer / waiting_warehouse -> resolved / closed
    state: Mapped[str] = mapped_column(String(24), default="new")
    owner: Mapped[str | None] = mapped_column(String(64))  # the agent handling it
    source: Mapped[str] = mapped_column(String(16), default="message")  # message | review | agent
    # priority flags (the seeds' order: platform intervened, late shipment, out of stock), set by agents
    platform_intervened: Mapped[bool] = mapped_column(default=False)
    late_shipment: Mapped[bool] = mapped_column(default=False)
    out_of_stock: Mapped[bool] = mapped_column(default=False)
    photos: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{url, message_id, at}]
    resolution: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime]
    reply_due_at: Mapped[datetime | None]  # an agent's first answer (None: no conversation to answer in)
    resolve_due_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class CaseEvent(Base):
    """A case's history: opened, joined by a buyer message, every state change (from -> to), notes,
    assignment, flags, photos, blacklisting; who (`actor`) and when. `remark_id` is the order remark it wrote."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case", "case_id", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(16))  # opened | joined | transition | note | assign | flags | ...
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str | None] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))  # who: an agent, "buyer", or "csbot"
    remark_id: Mapped[int | None] = mapped_column(ForeignKey("remarks.id"))
    at: Mapped[datetime]


# --- restock notices and review replies (csbot/aftersales/restock.py, reviews.py) ------------------


class Sku(Base):
    """A SKU's stock as the last `stock.updated` told us; `available` None until the platform has counted."""

    __tablename__ = "skus"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200), default="")
    available: Mapped[int | None] = mapped_column(Integer)
    counted_at: Mapped[datetime | None]  # the platform's time of the count stored (an older one is ignored)
    updated_at: Mapped[datetime]


class RestockWait(Base):
    """A buyer waiting for an out-of-stock SKU (an agent put them on the list). Its notice is one reminder
    row (kind `restock`), armed when the SKU comes back and never re-armed once sent or skipped."""

    __tablename__ = "restock_waits"
    __table_args__ = (UniqueConstraint("sku_id", "conversation_id"), Index("ix_restock_waits_sku", "sku_id", "status"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"))
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | armed (its reminder tells)
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id"))
    added_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Review(Base):
    """A buyer's review of an order, with what it complains about (topics) and the case it opened."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    order_external_id: Mapped[str | None] = mapped_column(String(128))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"))
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)  # logistics | quality | size | service | ...
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    created_at: Mapped[datetime]


class ReviewReply(Base):
    """The reply csbot drafted for a review; an agent approves (possibly edited) or rejects it. Always suggest
    mode: review replies are public and platforms police them."""

    __tablename__ = "review_replies"
    __table_args__ = (UniqueConstraint("review_id"), Index("ix_review_replies_status", "status"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"))
    templates: Mapped[str] = mapped_column(String(400))  # the templates the draft was built from, comma-separated
    draft: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | rejected
    final_text: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    reply_id: Mapped[str | None] = mapped_column(String(64))  # the outbox row it became
    created_at: Mapped[datetime]
