"""Ingest: the normalised inbound events, and parsing the generic channel's JSON into them. Pure: no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csbot.errors import MalformedEvent, UnknownEventType

MAX_TEXT_CHARS = 4000
MAX_ID_CHARS = 128


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


Event = MessageEvent
EVENT_TYPES = ("message.created",)


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
    return data


def parse_event(data: dict[str, Any]) -> Event:
    kind = data.get("type")
    if not isinstance(kind, str):
        raise MalformedEvent("type", "required string")
    if kind == "message.created":
        return _message(data)
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
