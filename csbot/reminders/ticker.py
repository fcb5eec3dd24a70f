"""Reminder stage: claim due rows -> re-check the order and the buyer -> render -> outbox (or a suggestion
for agents) and mark the row, all in one transaction per batch.

APScheduler only provides the beat: an interval job in a memory job store calls `Ticker.tick()`. Nothing
about a reminder lives in the scheduler, so nothing is pickled and a restart loses nothing. The rows are
claimed with UPDATE … RETURNING (and FOR UPDATE SKIP LOCKED on PostgreSQL) inside the same transaction
that writes the outbox row and marks the reminder sent: if the process dies before the commit, nothing
happened and the rows are due again; after it, they are sent and never claimed again. A row whose firing
raised stays `claimed` with a lease and is retried when the lease runs out, `max_attempts` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import cast

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from csbot.aftersales import repo_restock
from csbot.config import TickerSettings
from csbot.pipeline import PipelineDeps, send_reply, variables_for
from csbot.reminders import plans
from csbot.reminders import repo as reminders_repo
from csbot.reminders.orders import reminder_variables
from csbot.store import repo
from csbot.store.db import Database, Tx
from csbot.store.models import Buyer, Conversation, Order, Reminder, Suggestion

log = logging.getLogger(__name__)

STOP_GRACE = 10.0  # seconds a tick in flight may take to finish its batch when the app stops
SQLITE_PAUSE = 0.12  # seconds between full batches; SQLite's busy handler retries at most every 100 ms


@dataclass
class TickResult:
    claimed: int = 0
    sent: int = 0  # messages to buyers, now in the outbox
    suggested: int = 0  # follow-ups left for agents
    skipped: int = 0
    cancelled: int = 0
    deferred: int = 0  # moved out of quiet hours
    failed: int = 0  # raised; retried after the lease

    def add(self, other: TickResult) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class Ticker:
    def __init__(self, db: Database, deps: PipelineDeps, settings: TickerSettings,
                 on_sent: Callable[[], None] | None = None) -> None:
        self._db = db
        self._deps = deps
        self._settings = settings
        self._on_sent = on_sent or (lambda: None)
        self._lock = asyncio.Lock()  # one tick at a time per process; other processes are kept apart by the claim
        self._stopping = False

    def stop(self) -> None:
        """End the tick in flight after its current batch (each batch is one transaction)."""
        self._stopping = True

    async def tick(self) -> TickResult:
        """Fire everything due now, batch by batch; wake the outbox when something was sent."""
        total = TickResult()
        async with self._lock:
            while True:
                result = await self._batch(self._deps.clock.now())
                total.add(result)
                if result.claimed < self._settings.batch or self._stopping:
                    break
                if self._db.dialect == "sqlite":
                    # SQLite's busy handler is not fair: a writer that re-takes the lock at once starves the
                    # webhooks waiting for it. A pause longer than their longest back-off lets them in.
                    await asyncio.sleep(SQLITE_PAUSE)
        if total.sent:
            self._on_sent()
        if total.claimed:
            log.info("reminders tick: %s", total)
        return total

    async def _batch(self, now: datetime) -> TickResult:
        result = TickResult()
        lease = timedelta(seconds=self._settings.lease_seconds)
        async with self._db.transaction() as tx:
            rows = await reminders_repo.claim_due(tx, now=now, lease=lease, limit=self._settings.batch)
            result.claimed = len(rows)
            if not rows:
                return result
            window = max(shop.reminders.buyer_window for shop in self._deps.settings.shops.values())
            facts = await reminders_repo.batch_facts(tx, rows, now=now, window=timedelta(seconds=window))
            for row in rows:
                try:
                    async with tx.begin_nested():  # one bad row (a broken template) must not sink the batch
                        outcome = await fire(tx, self._deps, row, now, facts)
                except Exception as exc:
                    # The savepoint's rollback expired what fire() had set on the row: reload it before reading
                    # it (an expired attribute would load lazily, which async code cannot, and sink the batch).
                    await tx.refresh(row)
                    log.exception("reminder %s (%s stage %d) failed on attempt %d", row.id, row.kind, row.stage,
                                  row.attempts)
                    if row.attempts >= self._settings.max_attempts:
                        _finish(row, "skipped", f"error: {type(exc).__name__}", now)
                        outcome = "skipped"
                    else:
                        outcome = "failed"
                setattr(result, outcome, getattr(result, outcome) + 1)
        return result


def _finish(row: Reminder, status: str, reason: str | None, now: datetime) -> None:
    row.status, row.reason, row.lease_until, row.updated_at = status, reason, None, now


async def fire(tx: Tx, deps: PipelineDeps, row: Reminder, now: datetime, batch: reminders_repo.BatchFacts) -> str:
    """Decide and act on one claimed reminder; returns the TickResult field it counts under."""
    shop = deps.settings.shop(row.shop_id)
    if shop is None:
        _finish(row, "skipped", "unknown_shop", now)
        return "skipped"
    policy, zone = shop.reminders, shop.hours.zone
    kind = cast(plans.Kind, row.kind)  # only plans.KINDS are ever written
    buyer = await tx.get_one(Buyer, row.buyer_id)
    order = None if row.order_id is None else await tx.get_one(Order, row.order_id)
    facts = plans.FireFacts(
        kind=kind, now=now,
        order_status=None if order is None else order.status,
        auto_close_at=None if order is None else order.auto_close_at,
        blacklisted=buyer.blacklisted_at is not None,
        opted_out=buyer.opted_out_at is not None,
        sent_for_order=0 if order is None else batch.sent_for_order.get((order.id, kind), 0),
        sent_to_buyer=sum(1 for t in batch.sent_to_buyer.get(buyer.id, [])
                          if t > now - timedelta(seconds=policy.buyer_window)),
        later_stage_due=order is not None and batch.latest_due_stage.get((order.id, kind), 0) > row.stage,
        ordered_since=kind == plans.CONSULT and await reminders_repo.buyer_has_order(tx, buyer.id),
    )
    verdict = plans.verdict(facts, policy, zone)
    if isinstance(verdict, plans.Drop):
        _finish(row, verdict.status, verdict.reason, now)
        return verdict.status
    if isinstance(verdict, plans.Defer):
        _finish(row, "pending", verdict.reason, now)
        row.due_at = verdict.until
        return "deferred"

    conv = await _conversation(tx, row, order, buyer, now)
    locale = shop.locale
    reminder = reminder_variables(row.kind, order, shop, locale, now)
    if kind == plans.RESTOCK:  # no order: the item is the SKU the buyer waited for
        title = await repo_restock.title_for_notice(tx, row.id)
        reminder |= {"items": [{"title": title, "qty": 1}], "items_text": title}
    variables = variables_for(shop, buyer, locale, now) | {"intent": row.kind, "reminder": reminder}
    reply = deps.renderer.render(locale, row.template, variables)
    row.conversation_id = row.conversation_id if row.order_id is None else conv.id
    row.sent_at = now
    if verdict.to_agents:
        suggestion = Suggestion(message_id=None, conversation_id=conv.id, rank=1, intent=row.kind, score=None,
                                trigger=None, template=reply.template, text=reply.text, status="pending",
                                reason=f"follow-up {row.kind}, due {row.due_at.isoformat()}", created_at=now)
        tx.add(suggestion)
        await tx.flush()
        row.suggestion_id = suggestion.id
        conv.status = "waiting"
        _finish(row, "sent", "suggested_to_agents", now)
        return "suggested"
    row.reply_id = await send_reply(tx, conv, buyer, reply.text, in_reply_to=None, author="bot", now=now)
    _finish(row, "sent", None, now)
    batch.sent_to_buyer.setdefault(buyer.id, []).append(now)
    if order is not None:
        batch.sent_for_order[(order.id, kind)] = batch.sent_for_order.get((order.id, kind), 0) + 1
    return "sent"


async def _conversation(tx: Tx, row: Reminder, order: Order | None, buyer: Buyer, now: datetime) -> Conversation:
    """Where the message goes: the reminder's conversation, the one the order named, the buyer's latest
    chat, or else a conversation opened for the buyer (the platform routes by buyer id)."""
    for conv_id in (row.conversation_id if row.order_id is None else None,
                    None if order is None else order.conversation_id):
        if conv_id is not None:
            return await tx.get_one(Conversation, conv_id)
    latest = await reminders_repo.latest_conversation(tx, buyer.id)
    if latest is not None:
        return latest
    return await repo.upsert_conversation(tx, shop_id=buyer.shop_id, external_id=f"buyer:{buyer.external_id}",
                                          buyer_id=buyer.id, channel="generic", now=now)


class _BeatWhileTicking(logging.Filter):
    """APScheduler warns at every beat that comes while a tick still runs ("skipped: maximum number of running
    instances reached"): once a second for as long as a backlog takes. That skip is the design (max_instances=1,
    coalesce), not a fault, so the warning is dropped; the tick logs what it did."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in str(record.msg)


BEAT_WHILE_TICKING = _BeatWhileTicking()


class ReminderClock:
    """APScheduler 3 as the beat: one interval job (memory job store) that calls `Ticker.tick()`."""

    def __init__(self, ticker: Ticker, interval: float) -> None:
        self._ticker = ticker
        self._interval = interval
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[object]] = set()
        self._stopping = False

    def start(self) -> None:
        # Every beat would log "Running job …" twice at INFO; our tick logs what it did instead.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        logging.getLogger("apscheduler.scheduler").addFilter(BEAT_WHILE_TICKING)  # once: addFilter is idempotent
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        # max_instances=1 + coalesce: a slow tick is never overlapped by the next, missed beats merge.
        # The first beat runs at once, so reminders that came due while csbot was down go out on start.
        self._scheduler.add_job(self._beat, "interval", seconds=self._interval, id="reminders-tick",
                                max_instances=1, coalesce=True, misfire_grace_time=None,
                                next_run_time=datetime.now(UTC))
        self._scheduler.start()

    async def _beat(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await self._ticker.tick()
        except asyncio.CancelledError:
            if self._stopping:  # cancelled by stop() after STOP_GRACE: nothing is lost either way
                log.warning("reminders tick still running at stop: cancelled; its batch, unless its commit was "
                            "already under way, rolled back and stays due")
                return
            raise
        except Exception:  # a database hiccup must not stop the beat for good
            log.exception("reminders tick failed; the next beat retries")
        finally:
            if task is not None:
                self._running.discard(task)

    async def stop(self) -> None:
        """Stop the beat. A tick in flight finishes its current batch (bounded wait); only one that does not
        is cancelled, rolling its batch back so the rows stay due for the next start."""
        self._ticker.stop()
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.remove_all_jobs()  # no new beats
        if self._running:
            await asyncio.wait(list(self._running), timeout=STOP_GRACE)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for task in list(self._running):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
