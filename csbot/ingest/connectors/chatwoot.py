"""Chatwoot channel: csbot as a Chatwoot Agent Bot.

In: Chatwoot's `message_created` webhook, `POST /webhooks/chatwoot`. Only incoming, public messages
from a contact go to the pipeline; outgoing (our own replies and agents'), private notes, activity and
template messages are acknowledged and dropped, so we never answer ourselves. Verified with Chatwoot's
`X-Chatwoot-Signature: sha256=<hex HMAC(secret, "<X-Chatwoot-Timestamp>.<body>")>`, or, for Chatwoot
versions that do not sign, a shared `?token=` in the webhook URL. The secret that verifies a request
tells which shop it is for; the payload's account id must then be that shop's.

Out (Chatwoot's application API, `api_access_token` header):
  reply.created      POST /api/v1/accounts/{account}/conversations/{conversation}/messages
  note.created       the same with "private": true (suggest mode: the agent sees the suggestion)
  handoff.requested  POST /api/v1/accounts/{account}/conversations/{conversation}/toggle_status {"status": "open"}
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from csbot.clock import Clock
from csbot.config import ConfigError, Settings
from csbot.errors import InvalidSignature, UnknownShop
from csbot.ingest.connectors.base import (
    Answer,
    HttpAnswer,
    HttpRequest,
    Payload,
    Received,
    no_unknown,
    opt_list,
    opt_str,
    opt_url,
    option_key,
    req_str,
)
from csbot.ingest.events import parse_event, parse_json
from csbot.outbox.delivery import DeliveryError, Sender
from csbot.store.models import OutboxItem

log = logging.getLogger(__name__)

NAME = "chatwoot"
SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DELIVERY_HEADER = "X-Chatwoot-Delivery"
# message_type as Chatwoot sends it: a string at the top of the webhook, an integer inside lists.
INCOMING = ("incoming", 0)


@dataclass(frozen=True)
class ChatwootOptions:
    base_url: str
    account_id: str
    api_token: str | None  # without it csbot reads but cannot answer
    webhook_secrets: tuple[str, ...]
    url_token: str | None
    inbox_ids: tuple[str, ...]


def check(key: str, options: Mapping[str, Any]) -> None:
    _options(key, options)


def _options(key: str, options: Mapping[str, Any]) -> ChatwootOptions:
    no_unknown(key, options, {"base_url", "account_id", "api_token", "webhook_secrets", "url_token", "inbox_ids"})
    secrets = opt_list(key, options, "webhook_secrets")
    url_token = opt_str(key, options, "url_token")
    if not secrets and url_token is None:
        raise ConfigError(f"{key}.webhook_secrets", "required: the agent bot's webhook secret (or url_token for a "
                                                    "Chatwoot that does not sign)")
    if len(secrets) > 2:
        raise ConfigError(f"{key}.webhook_secrets", "at most two (the current one and the one being rotated out)")
    inbox_ids = options.get("inbox_ids", [])
    if not isinstance(inbox_ids, list) or not all(isinstance(i, int | str) for i in inbox_ids):
        raise ConfigError(f"{key}.inbox_ids", "must be a list of inbox ids")
    return ChatwootOptions(
        base_url=opt_url(key, options, "base_url") or req_str(key, options, "base_url", "e.g. https://app.chatwoot.com"),
        account_id=req_str(key, options, "account_id", "the number in /app/accounts/<id>/ of Chatwoot's URL"),
        api_token=opt_str(key, options, "api_token"),
        webhook_secrets=secrets,
        url_token=url_token,
        inbox_ids=tuple(str(i) for i in inbox_ids),
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _ident(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def _obj(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _sent_at(value: Any) -> str | None:
    """Chatwoot sends ISO 8601 ("…Z"), "2020-03-03 13:05:57 UTC", or epoch seconds; unknown forms: None."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC).isoformat()
        if isinstance(value, str):
            return datetime.fromisoformat(value.replace(" UTC", "+00:00").replace("Z", "+00:00")).isoformat()
    except (ValueError, OverflowError, OSError):
        pass
    return None


class ChatwootConnector:
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._shops = {shop.id: _options(option_key(shop.id, NAME), shop.channels[NAME])
                       for shop in settings.shops.values() if NAME in shop.channels}

    def _shop_for(self, request: HttpRequest, now: datetime) -> str:
        signature = request.headers.get(SIGNATURE_HEADER, "").strip()
        if signature:
            timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
            if not timestamp.isdigit() or len(timestamp) > 12:
                raise InvalidSignature(f"{TIMESTAMP_HEADER} must be whole seconds since the epoch")
            if abs(now.timestamp() - int(timestamp)) > self._settings.timestamp_tolerance:
                raise InvalidSignature(f"{TIMESTAMP_HEADER} is outside the tolerance window")
            matches = [shop_id for shop_id, o in self._shops.items() for secret in o.webhook_secrets
                       if hmac.compare_digest(sign(secret, timestamp, request.body).encode(), signature.encode())]
        else:
            offered = request.query.get("token", "")
            matches = [shop_id for shop_id, o in self._shops.items()
                       if o.url_token and offered and hmac.compare_digest(o.url_token.encode(), offered.encode())]
        if not matches:
            raise InvalidSignature(f"no valid {SIGNATURE_HEADER} (or ?token=) for any shop using Chatwoot")
        return matches[0]

    async def receive(self, request: HttpRequest, now: datetime) -> Received:
        shop_id = self._shop_for(request, now)
        options = self._shops[shop_id]
        data = parse_json(request.body)
        message_id = _ident(data.get("id"))
        delivery = request.headers.get(DELIVERY_HEADER, "").strip()[:200] or f"{NAME}:{message_id}:{data.get('event')}"
        if data.get("event") != "message_created":
            return Received(delivery, None, f"event {str(data.get('event'))[:40]}")
        account = _ident(_obj(data, "account").get("id"))
        if account != options.account_id:
            raise UnknownShop({"account_id": account, "expected": options.account_id, "shop": shop_id})
        conversation, inbox = _obj(data, "conversation"), _obj(data, "inbox")
        inbox_id = _ident(inbox.get("id")) or _ident(conversation.get("inbox_id"))
        if options.inbox_ids and inbox_id not in options.inbox_ids:
            return Received(delivery, None, f"inbox {inbox_id} is not csbot's")
        sender = _obj(data, "sender")
        # Everything csbot or an agent writes comes back as message_created too: drop it here.
        if data.get("message_type") not in INCOMING:
            return Received(delivery, None, f"{data.get('message_type')} message")
        if data.get("private") is True:
            return Received(delivery, None, "private note")
        if sender.get("type") not in (None, "contact"):
            return Received(delivery, None, f"written by a {str(sender.get('type'))[:20]}")
        if data.get("content_type") not in (None, "text") or not isinstance(data.get("content"), str):
            return Received(delivery, None, "no text")
        contact_id = _ident(sender.get("id")) or _ident(_obj(conversation, "contact_inbox").get("contact_id"))
        event = parse_event({
            "type": "message.created", "shop": shop_id,
            "conversation_id": _ident(conversation.get("id")),
            "buyer": {"id": contact_id, "nick": sender.get("name") if isinstance(sender.get("name"), str) else ""},
            "message": {"id": message_id, "text": data["content"], "sent_at": _sent_at(data.get("created_at"))},
        })
        return Received(delivery, event)

    def respond(self, received: Received, answer: Answer | None) -> HttpAnswer:
        return HttpAnswer(json=answer if answer is not None else {"ignored": received.ignored})

    def after_decision(self, shop_id: str, conversation_id: str, answer: Answer) -> list[Payload]:
        """Suggest mode: the best suggestion as a private note; an escalation also opens the conversation
        for the human agents (an agent bot's conversations wait as "pending" until then)."""
        base = {"shop": shop_id, "conversation_id": conversation_id}
        payloads: list[Payload] = []
        pending = [s for s in answer.get("suggestions", []) if s.get("status") == "pending"]
        if answer.get("action") in ("suggested", "escalated") and pending:
            best = pending[0]
            payloads.append(base | {"type": "note.created", "suggestion_id": best["id"], "text": best["text"]})
        if answer.get("action") == "escalated":
            payloads.append(base | {"type": "handoff.requested", "reason": answer.get("reason")})
        return payloads

    def sender(self, session: aiohttp.ClientSession, clock: Clock, timeout: float) -> Sender | None:
        shops = {sid: o for sid, o in self._shops.items() if o.api_token}
        return ChatwootSender(session, shops, timeout) if shops else None


class ChatwootSender:
    def __init__(self, session: aiohttp.ClientSession, shops: Mapping[str, ChatwootOptions], timeout: float) -> None:
        self._session = session
        self._shops = shops
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, item: OutboxItem) -> None:
        options = self._shops.get(item.shop_id)
        if options is None or options.api_token is None:
            raise DeliveryError(f"no Chatwoot api_token for shop {item.shop_id!r}")
        payload = item.payload
        account = f"{options.base_url}/api/v1/accounts/{options.account_id}"
        conversation = f"{account}/conversations/{payload['conversation_id']}"
        kind = payload.get("type")
        if kind in ("reply.created", "note.created"):
            url, body = f"{conversation}/messages", {
                "content": payload["text"], "message_type": "outgoing", "private": kind == "note.created"}
        elif kind == "handoff.requested":
            url, body = f"{conversation}/toggle_status", {"status": "open"}
        else:
            raise DeliveryError(f"Chatwoot cannot deliver {kind!r}")
        try:
            async with self._session.post(url, json=body, headers={"api_access_token": options.api_token},
                                          timeout=self._timeout) as resp:
                if resp.status >= 300:
                    raise DeliveryError(f"HTTP {resp.status} from Chatwoot")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
