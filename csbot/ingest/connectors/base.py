"""Connectors: the one small interface between a chat platform and csbot's pipeline.

A connector turns a platform's inbound HTTP request into our normalised events (verifying it the
platform's way), answers the request the way the platform expects, adds platform-only outbox items
after a decision (a private note, a handoff), and delivers outbox items the platform's way. It never
touches the database or the pipeline: `web/webhooks.py` runs the request through `ingest/accept.py`,
and the outbox worker hands it items to send.

Per-shop options live in `[shops.<id>.channels.<name>]`; each connector validates its own (`check`),
so a new platform is one module plus a line in `connectors/__init__.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from csbot.clock import Clock
from csbot.config import ConfigError, Settings
from csbot.ingest.events import Event
from csbot.outbox.delivery import Sender

Answer = dict[str, Any]  # the pipeline's answer for one event (see pipeline.answer)
Payload = dict[str, Any]  # an outbox item's payload


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an inbound request a connector may look at (it never sees aiohttp's request)."""

    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive in practice (aiohttp's CIMultiDictProxy)
    body: bytes


@dataclass(frozen=True)
class Received:
    """A verified request: the event for the pipeline, or why there is nothing to do."""

    delivery_id: str  # the platform's delivery id (idempotency with the event's own key)
    event: Event | None
    ignored: str | None = None  # e.g. "outgoing message": never answer ourselves


@dataclass(frozen=True)
class HttpAnswer:
    """What to send back to the platform."""

    status: int = 200
    json: Answer | None = None
    text: str = ""


class Connector(Protocol):
    name: str

    async def receive(self, request: HttpRequest, now: datetime) -> Received:
        """Verify (raise InvalidSignature) and parse (raise MalformedEvent) one inbound request."""
        ...

    def respond(self, received: Received, answer: Answer | None) -> HttpAnswer:
        """The HTTP answer the platform expects; `answer` is None when nothing was run."""
        ...

    def after_decision(self, shop_id: str, conversation_id: str, answer: Answer) -> list[Payload]:
        """Extra outbox payloads after the pipeline decided (stored in the same transaction). Pure."""
        ...

    def sender(self, session: aiohttp.ClientSession, clock: Clock, timeout: float) -> Sender | None:
        """Delivers this channel's outbox items; None when no shop configured a way out."""
        ...


@dataclass(frozen=True)
class ConnectorSpec:
    """A registry entry: validate one shop's options at load time, build the connector at start."""

    check: Callable[[str, Mapping[str, Any]], None]  # (config key prefix, options) -> raises ConfigError
    build: Callable[[Settings], Connector]


# --- option helpers: each error names the full key ----------------------------------------------------


def option_key(shop_id: str, channel: str, name: str = "") -> str:
    key = f"shops.{shop_id}.channels.{channel}"
    return f"{key}.{name}" if name else key


def no_unknown(key: str, options: Mapping[str, Any], allowed: set[str]) -> None:
    for name in options:
        if name not in allowed:
            raise ConfigError(f"{key}.{name}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def opt_str(key: str, options: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = options.get(name, default)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # ids written as numbers
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}.{name}", f"must be a non-empty string, got {value!r}")
    return value.strip()


def req_str(key: str, options: Mapping[str, Any], name: str, hint: str = "") -> str:
    value = opt_str(key, options, name)
    if value is None:
        raise ConfigError(f"{key}.{name}", "required" + (f" ({hint})" if hint else ""))
    return value


def opt_list(key: str, options: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """A list of strings; from the environment a string separated by spaces or commas (secret rotation)."""
    value = options.get(name, [])
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}.{name}", "must be a list of non-empty strings")
    return tuple(value)


def opt_url(key: str, options: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = opt_str(key, options, name, default)
    if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
        raise ConfigError(f"{key}.{name}", f"not an http(s) URL: {value!r}")
    return value.rstrip("/") if value is not None else None
