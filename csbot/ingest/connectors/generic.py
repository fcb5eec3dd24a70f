"""Generic channel: our own JSON events in, signed JSON replies out (Standard Webhooks, or GitHub-style).

Inbound: `POST /webhooks/generic`, signed with CSBOT_WEBHOOK_SECRET (any shop) or a shop's own secrets
from `[shops.<id>.channels.generic]`; a shop's secret only vouches for events of that shop. Two secrets
may be valid at once while one is rotated out. Outbound: replies are POSTed to the shop's
`outbound_url` (or CSBOT_OUTBOUND_URL), signed the same way, with the `reply_id` as delivery id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from csbot.clock import Clock
from csbot.config import ConfigError, Settings, decode_webhook_secret
from csbot.errors import InvalidSignature
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
)
from csbot.ingest.events import parse_event, parse_json
from csbot.ingest.signatures import HUB_HEADER, sign, sign_hub, signed_headers, verify, verify_hub
from csbot.outbox.delivery import DeliveryError, Sender, idempotency_headers
from csbot.store.models import OutboxItem

NAME = "generic"
SCHEMES = ("standard", "github")


@dataclass(frozen=True)
class GenericOptions:
    scheme: str = "standard"
    secrets: tuple[str, ...] = ()  # the first one signs outbound replies
    outbound_url: str | None = None


def check(key: str, options: Mapping[str, Any]) -> None:
    _options(key, options)


def _options(key: str, options: Mapping[str, Any]) -> GenericOptions:
    no_unknown(key, options, {"signature", "secrets", "outbound_url"})
    scheme = opt_str(key, options, "signature", "standard")
    if scheme not in SCHEMES:
        raise ConfigError(f"{key}.signature", f"must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    secrets = opt_list(key, options, "secrets")
    if len(secrets) > 2:
        raise ConfigError(f"{key}.secrets", "at most two secrets (the current one and the one being rotated out)")
    if scheme == "standard":
        for secret in secrets:
            try:
                decode_webhook_secret(secret)
            except ValueError as exc:
                raise ConfigError(f"{key}.secrets", str(exc)) from None
    return GenericOptions(scheme, secrets, opt_url(key, options, "outbound_url"))


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    secret: str


class GenericConnector:
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._shops = {
            shop.id: _options(option_key(shop.id, NAME), shop.channels[NAME])
            for shop in settings.shops.values() if NAME in shop.channels
        }

    async def receive(self, request: HttpRequest, now: datetime) -> Received:
        if request.headers.get(HUB_HEADER) and any(o.scheme == "github" for o in self._shops.values()):
            allowed, delivery_id = self._verify_hub(request)
        else:
            allowed, delivery_id = self._verify_standard(request, now)
        event = parse_event(parse_json(request.body))
        if allowed is not None and event.shop not in allowed:
            # A shop's own secret must not let its holder write events into another shop.
            raise InvalidSignature("signed with a secret that is not valid for this shop")
        return Received(delivery_id, event)

    def _verify_standard(self, request: HttpRequest, now: datetime) -> tuple[set[str] | None, str]:
        global_secrets = (self._settings.webhook_secret,) if self._settings.webhook_secret else ()
        per_shop = {sid: o.secrets for sid, o in self._shops.items() if o.scheme == "standard"}
        every = global_secrets + tuple(s for secrets in per_shop.values() for s in secrets)
        if not every:
            raise InvalidSignature("no webhook secret configured (CSBOT_WEBHOOK_SECRET): nothing can be verified")
        signed = verify(every, request.headers, request.body, now=now, tolerance=self._settings.timestamp_tolerance)
        # Verified: now find which secret it was, to know which shops it may speak for.
        offered = set(signed.signatures)
        if any(sign(s, signed.id, signed.timestamp, request.body) in offered for s in global_secrets):
            return None, signed.id
        return {sid for sid, secrets in per_shop.items()
                if any(sign(s, signed.id, signed.timestamp, request.body) in offered for s in secrets)}, signed.id

    def _verify_hub(self, request: HttpRequest) -> tuple[set[str] | None, str]:
        per_shop = {sid: o.secrets for sid, o in self._shops.items() if o.scheme == "github"}
        secret = verify_hub(tuple(s for secrets in per_shop.values() for s in secrets), request.headers, request.body)
        delivery = (request.headers.get("X-GitHub-Delivery") or request.headers.get("webhook-id")
                    or "sha256:" + hashlib.sha256(request.body).hexdigest())
        if len(delivery) > 200 or not (delivery.isascii() and delivery.isprintable()):
            raise InvalidSignature("delivery id must be at most 200 printable ASCII characters")
        return {sid for sid, secrets in per_shop.items() if secret in secrets}, delivery

    def respond(self, received: Received, answer: Answer | None) -> HttpAnswer:
        return HttpAnswer(json=answer if answer is not None else {"ignored": received.ignored})

    def after_decision(self, shop_id: str, conversation_id: str, answer: Answer) -> list[Payload]:
        return []  # the answer itself tells the caller what was decided

    def targets(self) -> tuple[dict[str, Target], Target | None]:
        s = self._settings
        default = Target(s.outbound_url, "standard", s.webhook_secret) if s.outbound_url and s.webhook_secret else None
        targets: dict[str, Target] = {}
        for shop_id, o in self._shops.items():
            url = o.outbound_url or s.outbound_url
            secret = o.secrets[0] if o.secrets else (s.webhook_secret if o.scheme == "standard" else None)
            if url and secret:
                targets[shop_id] = Target(url, o.scheme, secret)
        return targets, default

    def sender(self, session: aiohttp.ClientSession, clock: Clock, timeout: float) -> Sender | None:
        targets, default = self.targets()
        if not targets and default is None:
            return None
        return GenericSender(session, targets, default, clock, timeout)


class GenericSender:
    def __init__(self, session: aiohttp.ClientSession, targets: Mapping[str, Target], default: Target | None,
                 clock: Clock, timeout: float) -> None:
        self._session = session
        self._targets = targets
        self._default = default
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, item: OutboxItem) -> None:
        target = self._targets.get(item.shop_id, self._default)
        if target is None:
            raise DeliveryError(f"no outbound URL for shop {item.shop_id!r} (set CSBOT_OUTBOUND_URL)")
        body = json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")).encode()
        if target.scheme == "github":
            headers = {HUB_HEADER: sign_hub(target.secret, body), "X-GitHub-Delivery": item.reply_id}
        else:
            # The reply_id doubles as webhook-id: the receiver de-duplicates redeliveries with it.
            headers = signed_headers(target.secret, item.reply_id, int(self._clock.now().timestamp()), body)
        headers |= idempotency_headers(item) | {"content-type": "application/json"}
        try:
            async with self._session.post(target.url, data=body, headers=headers, timeout=self._timeout) as resp:
                if resp.status >= 300:
                    raise DeliveryError(f"HTTP {resp.status} from receiver")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
