"""Ingest: accept an event exactly once. The idempotency row and everything the event causes commit
in one transaction; a repeated delivery (same webhook-id, or same event id) gets the stored answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csbot.aftersales.repo_restock import handle_stock
from csbot.aftersales.repo_reviews import handle_review
from csbot.ingest.events import Event, MessageEvent, ReviewCreated, StockUpdated
from csbot.pipeline import PipelineDeps, handle_message
from csbot.reminders.orders import handle_order
from csbot.store import repo
from csbot.store.db import Database, Tx


@dataclass(frozen=True)
class Accepted:
    response: dict[str, Any]
    duplicate: bool
    enqueued: bool = False  # a reply, a note or a handoff is waiting in the outbox: wake its worker


async def accept(db: Database, deps: PipelineDeps, *, channel: str, delivery_id: str, event: Event) -> Accepted:
    """Store and act on the event in one write transaction (on SQLite, on the writer thread)."""
    return await db.write(_accept, deps, channel, delivery_id, event)


async def _accept(tx: Tx, deps: PipelineDeps, channel: str, delivery_id: str, event: Event) -> Accepted:
    event_id = await repo.claim_event(
        tx, channel=channel, delivery_id=delivery_id, dedupe_key=event.dedupe_key, type=event.type,
        now=deps.clock.now(),
    )
    if event_id is None:
        stored = await repo.stored_response(tx, channel=channel, delivery_id=delivery_id,
                                            dedupe_key=event.dedupe_key)
        return Accepted(stored or {}, duplicate=True)
    if isinstance(event, MessageEvent):
        response = await handle_message(tx, deps, event, channel=channel)
    elif isinstance(event, StockUpdated):
        response = await handle_stock(tx, deps, event)
    elif isinstance(event, ReviewCreated):
        response = await handle_review(tx, deps, event)
    else:
        response = await handle_order(tx, deps, event)
    await repo.save_response(tx, event_id, response)
    return Accepted(response, duplicate=False, enqueued=bool(tx.info.get(repo.ENQUEUED)))
