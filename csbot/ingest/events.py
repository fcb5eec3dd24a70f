"""Ingest: the normalised inbound events, and parsing the generic channel's JSON into them. Pure: no I/O."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from csbot.errors import MalformedEvent, UnknownEventType

MAX_TEXT_CHARS = 4000
MAX_ID_CHARS = 128
MAX_ITEMS = 100
MAX_JSON_DEPTH = 16  # objects and arrays inside one another; events need 4


@dataclass(frozen=True)
class BuyerRef:
    id: str
    nick: str


@dataclass(frozen=True)
class MessageEvent:
    """A buyer wrote something in a conversation."""

    shop: str
    conversation_id: str
    buyer: BuyerRef
    message_id: str
    text: str
    sent_at: datetime | None

    type = "message.created"

    @property
    def dedupe_key(self) -> str:
        return f"message:{self.shop}:{self.message_id}"


@dataclass(frozen=True)
class OrderItem:
    title: str
    qty: int


@dataclass(frozen=True)
class OrderCreated:
    """The buyer placed an order (拍下); it is unpaid until `order.paid`."""

    shop: str
    order_id: str
    buyer: BuyerRef
    amount: Decimal
    items: tuple[OrderItem, ...]
    created_at: datetime
    auto_close_at: datetime | None
    conversation_id: str | None  # the chat to remind in, when the platform knows it

    type = "order.created"

    @property
    def dedupe_key(self) -> str:
        return f"order:{self.shop}:{self.order_id}:created"


ORDER_MILESTONES = ("order.paid", "order.closed", "order.shipped", "order.delivered", "order.refund_requested",
                    "order.platform_intervened")


@dataclass(frozen=True)
class OrderEvent:
    """An order moved on: paid, closed (cancelled or timed out), shipped, delivered, refund requested; or the
    platform's own service stepped into its dispute (小二介入), which moves its after-sales case to the front."""

    type: str  # one of ORDER_MILESTONES
    shop: str
    order_id: str
    at: datetime | None

    @property
    def milestone(self) -> str:
        return self.type.removeprefix("order.")

    @property
    def dedupe_key(self) -> str:
        return f"order:{self.shop}:{self.order_id}:{self.milestone}"


@dataclass(frozen=True)
class StockUpdated:
    """A SKU's available quantity changed (restock notices go out when it rises from 0)."""

    shop: str
    sku_id: str
    title: str
    available: int
    at: datetime | None  # when the platform counted; an older count than the one stored is ignored
    version: str  # `at`, or the delivery's own nonce: a stock level is no event id (5 -> 0 -> 5 repeats)

    type = "stock.updated"

    @property
    def dedupe_key(self) -> str:
        return f"stock:{self.shop}:{self.sku_id}:{self.version}"


@dataclass(frozen=True)
class ReviewCreated:
    """A buyer reviewed an order; csbot drafts a reply for an agent and opens a case when it is bad."""

    shop: str
    review_id: str
    order_id: str | None
    rating: int  # 1..5
    text: str
    buyer: BuyerRef

    type = "review.created"

    @property
    def dedupe_key(self) -> str:
        return f"review:{self.shop}:{self.review_id}"


Event = MessageEvent | OrderCreated | OrderEvent | StockUpdated | ReviewCreated
EVENT_TYPES = ("message.created", "order.created", *ORDER_MILESTONES, "stock.updated", "review.created")


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEvent("body", "not valid UTF-8") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise MalformedEvent("body", "JSON nested too deeply") from None
    except ValueError as exc:
        raise MalformedEvent("body", f"not valid JSON: {exc.args[0] if exc.args else exc}") from None
    if not isinstance(data, dict):
        raise MalformedEvent("body", "must be a JSON object")
    _shallow(data)
    return data


def _shallow(data: dict[str, Any]) -> None:
    """No event nests deeper than a few levels; a deeper body is refused before anything walks it."""
    level: list[Any] = [data]
    for _ in range(MAX_JSON_DEPTH):
        level = [child for node in level
                 for child in (node.values() if isinstance(node, dict) else node) if isinstance(child, dict | list)]
        if not level:
            return
    raise MalformedEvent("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def parse_event(data: dict[str, Any]) -> Event:
    kind = data.get("type")
    if not isinstance(kind, str):
        raise MalformedEvent("type", "required string")
    if kind == "message.created":
        return _message(data)
    if kind == "order.created":
        return _order_created(data)
    if kind in ORDER_MILESTONES:
        order = _obj(data, "order")
        return OrderEvent(type=kind, shop=_id(data, "shop"), order_id=_id(order, "id", "order."),
                          at=_time(order, "at", "order."))
    if kind == "stock.updated":
        return _stock(data)
    if kind == "review.created":
        return _review(data)
    raise UnknownEventType({"type": kind[:100], "known": list(EVENT_TYPES)})


def _message(data: dict[str, Any]) -> MessageEvent:
    buyer = _obj(data, "buyer")
    message = _obj(data, "message")
    return MessageEvent(
        shop=_id(data, "shop"),
        conversation_id=_id(data, "conversation_id"),
        buyer=BuyerRef(id=_id(buyer, "id", "buyer."), nick=_str(buyer, "nick", "buyer.", default="", limit=200)),
        message_id=_id(message, "id", "message."),
        text=_str(message, "text", "message.", limit=MAX_TEXT_CHARS),
        sent_at=_time(message, "sent_at", "message."),
    )


def _order_created(data: dict[str, Any]) -> OrderCreated:
    order = _obj(data, "order")
    buyer = _obj(order, "buyer", "order.")
    items_raw = order.get("items", [])
    if not isinstance(items_raw, list) or len(items_raw) > MAX_ITEMS:
        raise MalformedEvent("order.items", f"must be a list of at most {MAX_ITEMS} {{title, qty}} objects")
    created_at = _time(order, "created_at", "order.")
    if created_at is None:
        raise MalformedEvent("order.created_at", "required ISO 8601 timestamp")
    auto_close_at = _time(order, "auto_close_at", "order.")
    if auto_close_at is not None and auto_close_at <= created_at:
        raise MalformedEvent("order.auto_close_at", "must be after order.created_at")
    conversation = data.get("conversation_id")
    return OrderCreated(
        shop=_id(data, "shop"),
        order_id=_id(order, "id", "order."),
        buyer=BuyerRef(id=_id(buyer, "id", "order.buyer."),
                       nick=_str(buyer, "nick", "order.buyer.", default="", limit=200)),
        amount=_amount(order, "amount", "order."),
        items=tuple(_item(item, f"order.items[{i}].") for i, item in enumerate(items_raw)),
        created_at=created_at,
        auto_close_at=auto_close_at,
        conversation_id=None if conversation is None else _id(data, "conversation_id"),
    )


def _stock(data: dict[str, Any]) -> StockUpdated:
    sku = _obj(data, "sku")
    available = sku.get("available")
    if isinstance(available, bool) or not isinstance(available, int) or not 0 <= available <= 10**9:
        raise MalformedEvent("sku.available", "required whole number from 0")
    at = _time(sku, "at", "sku.")
    return StockUpdated(
        shop=_id(data, "shop"), sku_id=_id(sku, "id", "sku."), title=_str(sku, "title", "sku.", default="", limit=200),
        available=available, at=at, version=at.isoformat() if at is not None else uuid.uuid4().hex,
    )


def _review(data: dict[str, Any]) -> ReviewCreated:
    review = _obj(data, "review")
    buyer = _obj(review, "buyer", "review.")
    rating = review.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise MalformedEvent("review.rating", "required whole number from 1 to 5")
    order = review.get("order_id")
    return ReviewCreated(
        shop=_id(data, "shop"), review_id=_id(review, "id", "review."),
        order_id=None if order is None else _id(review, "order_id", "review."),
        rating=rating, text=_str(review, "text", "review.", default="", limit=MAX_TEXT_CHARS),
        buyer=BuyerRef(id=_id(buyer, "id", "review.buyer."),
                       nick=_str(buyer, "nick", "review.buyer.", default="", limit=200)),
    )


def _item(raw: Any, prefix: str) -> OrderItem:
    if not isinstance(raw, dict):
        raise MalformedEvent(prefix.rstrip("."), "must be an object {title, qty}")
    qty = raw.get("qty", 1)
    if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= 100_000:
        raise MalformedEvent(prefix + "qty", "must be a whole number from 1 to 100000")
    return OrderItem(title=_str(raw, "title", prefix, limit=200), qty=qty)


def _amount(data: dict[str, Any], name: str, prefix: str) -> Decimal:
    value = data.get(name)
    # A decimal string: a float would already have lost cents on the way here.
    if not isinstance(value, str):
        raise MalformedEvent(prefix + name, 'required decimal string, e.g. "199.00"')
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise MalformedEvent(prefix + name, f"not a decimal number: {value[:40]!r}") from None
    if not amount.is_finite() or not 0 <= amount < 10**10 or amount != amount.quantize(Decimal("0.01")):
        raise MalformedEvent(prefix + name, "must be a non-negative amount with at most 2 decimals")
    return amount


def _obj(data: dict[str, Any], name: str, prefix: str = "") -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise MalformedEvent(prefix + name, "required object")
    return value


def _str(data: dict[str, Any], name: str, prefix: str = "", *, default: str | None = None, limit: int) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise MalformedEvent(prefix + name, "required string")
    if len(value) > limit:
        raise MalformedEvent(prefix + name, f"longer than {limit} characters")
    return _storable(value, prefix + name)


def _storable(value: str, field: str) -> str:
    # JSON can carry what no database column takes: NUL characters and lone surrogates.
    if "\x00" in value:
        raise MalformedEvent(field, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedEvent(field, "contains an unpaired surrogate (not valid Unicode text)") from None
    return value


def _id(data: dict[str, Any], name: str, prefix: str = "") -> str:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # platforms often send numeric ids
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(prefix + name, "required non-empty string")
    if len(value) > MAX_ID_CHARS:
        raise MalformedEvent(prefix + name, f"longer than {MAX_ID_CHARS} characters")
    return _storable(value, prefix + name)


def _time(data: dict[str, Any], name: str, prefix: str = "") -> datetime | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedEvent(prefix + name, "must be an ISO 8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedEvent(prefix + name, "must be an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise MalformedEvent(prefix + name, "must carry a UTC offset, e.g. +08:00")
    return parsed
