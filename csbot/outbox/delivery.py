"""Outbox stage: claim due rows -> send through the channel -> mark delivered, retry later, or dead.

Rows are claimed with a lease in their own short transaction (FOR UPDATE SKIP LOCKED on PostgreSQL, so
several instances take disjoint rows), sent outside any transaction (a slow receiver must not hold database
locks), then finished. A worker that dies mid-send leaves a lease that expires, and the row is sent again by
whichever instance claims it next: delivery is once in normal operation and at-least-once across crashes.
Every attempt of a row carries the same `reply_id` (as `webhook-id` and `Idempotency-Key` on HTTP channels):
the receiver's idempotency key, with which it drops a redelivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from csbot.clock import Clock
from csbot.config import OutboxSettings
from csbot.store import repo
from csbot.store.db import Database
from csbot.store.models import OutboxItem

log = logging.getLogger(__name__)


IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_headers(item: OutboxItem) -> dict[str, str]:
    """What an HTTP sender adds to every attempt of a row: the same key each time, whoever sends it."""
    return {IDEMPOTENCY_HEADER: item.reply_id}


class DeliveryError(Exception):
    """The receiver did not take the reply (network error, timeout, non-2xx)."""


class Sender(Protocol):
    async def send(self, item: OutboxItem) -> None:
        """Deliver one reply or raise DeliveryError."""
        ...


class ChannelSenders:
    """The senders of every configured channel, chosen by the item's channel (set from its conversation)."""

    def __init__(self, senders: Mapping[str, Sender]) -> None:
        self._senders = dict(senders)

    async def send(self, item: OutboxItem) -> None:
        sender = self._senders.get(item.channel)
        if sender is None:
            # Retried, then dead-lettered with this reason: visible in GET /api/outbox?status=dead.
            raise DeliveryError(f"no sender configured for channel {item.channel!r}")
        await sender.send(item)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits base * 2**(n-1), capped, times 0.5–1.0."""

    base: float
    cap: float

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        # Jitter spreads retries of many rows failing together (a receiver outage) over time.
        return ceiling * rng.uniform(0.5, 1.0)


class OutboxWorker:
    def __init__(self, db: Database, clock: Clock, settings: OutboxSettings, sender: Sender | None,
                 rng: random.Random | None = None, batch: int = 50) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._sender = sender
        self._rng = rng or random.Random()
        self._batch = batch
        self._backoff = Backoff(settings.base_delay, settings.max_delay)
        self._wake = asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        """Let `run()` finish the pass in flight and return. Cancelling it mid-transaction instead would
        leave the driver to tear the connection down behind our back while the app shuts down."""
        self._stopping = True
        self._wake.set()

    def wake(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim and process one batch of due rows; returns how many were claimed."""
        if self._sender is None:
            return 0
        now = self._clock.now()
        async with self._db.transaction() as tx:
            items = await repo.claim_outbox(
                tx, now=now, lease=timedelta(seconds=self._settings.lease_seconds), limit=self._batch
            )
        await asyncio.gather(*(self._deliver(item) for item in items))
        return len(items)

    async def _deliver(self, item: OutboxItem) -> None:
        assert self._sender is not None
        try:
            await self._sender.send(item)
        except DeliveryError as exc:
            await self._failed(item, str(exc))
            return
        async with self._db.transaction() as tx:
            await repo.finish_outbox(tx, item.id, attempt=item.attempts, status="delivered", now=self._clock.now())
        log.info("outbox %s delivered (attempt %d)", item.reply_id, item.attempts)

    async def _failed(self, item: OutboxItem, error: str) -> None:
        now = self._clock.now()
        async with self._db.transaction() as tx:
            if item.attempts >= self._settings.max_attempts:
                await repo.finish_outbox(tx, item.id, attempt=item.attempts, status="dead", now=now, error=error)
                log.warning("outbox %s dead after %d attempts: %s", item.reply_id, item.attempts, error)
                return
            retry_at = now + timedelta(seconds=self._backoff.delay(item.attempts, self._rng))
            await repo.finish_outbox(tx, item.id, attempt=item.attempts, status="pending", now=now, error=error,
                                     next_attempt_at=retry_at)
        log.info("outbox %s attempt %d failed (%s); retry at %s", item.reply_id, item.attempts, error,
                 retry_at.isoformat())

    async def run(self) -> None:
        """Forever: drain what is due, then sleep until woken or the poll interval passes."""
        if self._sender is None:
            log.warning("no channel can deliver: replies wait in the outbox (set CSBOT_OUTBOUND_URL or a channel)")
            return
        while not self._stopping:
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not kill delivery for good
                log.exception("outbox pass failed; retrying")
                claimed = 0
            if claimed or self._stopping:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._settings.poll_interval)
