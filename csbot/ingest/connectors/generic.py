"""Generic channel: replies are POSTed as signed JSON (Standard Webhooks) to the shop's outbound URL."""

from __future__ import annotations

import json

import aiohttp

from csbot.clock import Clock
from csbot.ingest.signatures import signed_headers
from csbot.outbox.delivery import DeliveryError
from csbot.store.models import OutboxItem


class GenericSender:
    def __init__(self, session: aiohttp.ClientSession, url: str, secret: str, clock: Clock,
                 timeout: float) -> None:
        self._session = session
        self._url = url
        self._secret = secret
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, item: OutboxItem) -> None:
        body = json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")).encode()
        # The reply_id doubles as webhook-id: the receiver de-duplicates redeliveries with it.
        headers = signed_headers(self._secret, item.reply_id, int(self._clock.now().timestamp()), body)
        headers["content-type"] = "application/json"
        try:
            async with self._session.post(self._url, data=body, headers=headers, timeout=self._timeout) as resp:
                if resp.status >= 300:
                    raise DeliveryError(f"HTTP {resp.status} from receiver")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
