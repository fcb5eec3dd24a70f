"""The webhook's prebuilt statements (store/repo.py, reminders/repo.py), on SQLite and PostgreSQL: rows come back
as the session's objects without a second query and stay in step with what the Core statements wrote, so the
ORM code that runs after them in the same transaction sees the truth and has nothing stale to flush."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from csbot.reminders import plans
from csbot.reminders import repo as reminders_repo
from csbot.store import repo
from csbot.store.db import Database, Tx
from csbot.store.models import Buyer, Conversation, Message, Reminder

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url)
    async with database.transaction() as tx:
        await repo.sync_shops(tx, {"demo": "Demo"})
    yield database
    await database.close()


async def _buyer_and_conversation(tx: Tx, nick: str = "小王") -> tuple[Buyer, Conversation]:
    buyer = await repo.upsert_buyer(tx, shop_id="demo", external_id="b-1", nick=nick, now=NOW)
    conv = await repo.upsert_conversation(tx, shop_id="demo", external_id="c-1", buyer_id=buyer.id,
                                          channel="generic", now=NOW)
    return buyer, conv


async def test_upserts_return_the_sessions_objects_and_keep_a_known_nick(db: Database) -> None:
    async with db.transaction() as tx:
        buyer, conv = await _buyer_and_conversation(tx)
        assert (buyer.nick, conv.status, conv.buyer_id) == ("小王", "open", buyer.id)
        assert buyer in tx and conv in tx and not tx.dirty
        loaded = (await tx.execute(select(Buyer).where(Buyer.id == buyer.id))).scalar_one()
        assert loaded is buyer  # one object per row: what the ORM loads later is the same object
    async with db.transaction() as tx:
        again, conv_again = await _buyer_and_conversation(tx, nick="")  # an empty nick keeps the known one
        assert (again.id, again.nick, conv_again.id) == (buyer.id, "小王", conv.id)
        renamed = await repo.upsert_buyer(tx, shop_id="demo", external_id="b-1", nick="老王", now=NOW)
        assert renamed is again and renamed.nick == "老王"  # the held object is refreshed, not duplicated


async def test_changes_to_a_returned_object_are_written(db: Database) -> None:
    async with db.transaction() as tx:
        buyer, _ = await _buyer_and_conversation(tx)
        buyer.opted_out_at = NOW
    async with db.transaction() as tx:
        blacklisted = await repo.set_blacklist(tx, shop_id="demo", external_id="b-1", reason="恶意差评", by="agent-1",
                                               now=NOW)
        assert blacklisted.opted_out_at == NOW
    async with db.read() as tx:
        stored = (await tx.execute(select(Buyer).where(Buyer.id == buyer.id))).scalar_one()
        assert (stored.opted_out_at, stored.blacklist_reason, stored.blacklisted_by) == (NOW, "恶意差评", "agent-1")


async def test_record_turn_writes_the_row_and_leaves_the_object_in_step(db: Database) -> None:
    async with db.transaction() as tx:
        _, conv = await _buyer_and_conversation(tx)
        await repo.record_turn(tx, conv, last_buyer_at=NOW, last_intent="bargain", last_score=91.5,
                               offline_notice_for=None, status="waiting")
        assert (conv.status, conv.last_intent) == ("waiting", "bargain") and not tx.dirty
        conv_id = conv.id
    async with db.read() as tx:
        stored = await tx.get_one(Conversation, conv_id)
        assert (stored.last_buyer_at, stored.last_intent, stored.last_score, stored.status) == (
            NOW, "bargain", 91.5, "waiting")


async def test_add_message_keeps_every_field(db: Database) -> None:
    async with db.transaction() as tx:
        _, conv = await _buyer_and_conversation(tx)
        msg = await repo.add_message(tx, conv, direction="in", author="buyer", external_id="m-1", text="包邮吗",
                                     sent_at=NOW, now=NOW, intent="shipping", score=88.0, action="suggested")
        reply = await repo.add_message(tx, conv, direction="out", author="bot", external_id="r-1", text="亲，包邮哦",
                                       sent_at=NOW, now=NOW)
        assert msg.id < reply.id and msg in tx
    async with db.read() as tx:
        rows = (await tx.execute(select(Message).order_by(Message.id))).scalars().all()
        assert [(m.direction, m.author, m.text, m.intent, m.score, m.action, m.sent_at) for m in rows] == [
            ("in", "buyer", "包邮吗", "shipping", 88.0, "suggested", NOW),
            ("out", "bot", "亲，包邮哦", None, None, None, NOW)]


def _plan(due_at: datetime) -> plans.Planned:
    return plans.Planned(plans.CONSULT, 1, due_at, plans.template_for(plans.CONSULT, 1))


async def _followups(db: Database) -> list[tuple[int, str, datetime]]:
    async with db.read() as tx:
        rows = (await tx.execute(select(Reminder).order_by(Reminder.id))).scalars().all()
        return [(r.stage, r.status, r.due_at) for r in rows]


async def test_a_followup_is_armed_once_rearmed_after_a_cancel_and_staged_after_a_send(db: Database) -> None:
    later, latest = NOW + timedelta(hours=2), NOW + timedelta(hours=5)
    async with db.transaction() as tx:
        buyer, conv = await _buyer_and_conversation(tx)
        ids = {"shop_id": "demo", "conversation_id": conv.id, "buyer_id": buyer.id}
        first = await reminders_repo.arm_followup(tx, **ids, plan=_plan(later), now=NOW)
        assert await reminders_repo.arm_followup(tx, **ids, plan=_plan(latest), now=NOW) == first  # still live
    assert await _followups(db) == [(1, "pending", later)]

    async with db.transaction() as tx:
        held = await tx.get_one(Reminder, first)  # an object the session holds while the Core statements run
        assert await reminders_repo.cancel_followups(tx, conv.id, reason="buyer_wrote_again", now=NOW) == 1
        assert await reminders_repo.arm_followup(tx, **ids, plan=_plan(latest), now=NOW) == first  # re-armed
        assert (held.status, held.due_at, held.reason) == ("pending", latest, None)
    assert await _followups(db) == [(1, "pending", latest)]

    async with db.transaction() as tx:
        (await tx.get_one(Reminder, first)).status = "sent"  # unflushed: arm_followup must see it
        second = await reminders_repo.arm_followup(tx, **ids, plan=_plan(later), now=NOW)
        assert second != first
    assert await _followups(db) == [(1, "sent", latest), (2, "pending", later)]


async def test_cancel_followups_keeps_the_kinds_asked_for(db: Database) -> None:
    async with db.transaction() as tx:
        buyer, conv = await _buyer_and_conversation(tx)
        ids = {"shop_id": "demo", "conversation_id": conv.id, "buyer_id": buyer.id}
        await reminders_repo.arm_followup(tx, **ids, plan=_plan(NOW), now=NOW)
        await reminders_repo.arm_followup(tx, **ids, now=NOW, plan=plans.Planned(
            plans.AFTERSALES, 1, NOW, plans.template_for(plans.AFTERSALES, 1)))
        cancelled = await reminders_repo.cancel_followups(tx, conv.id, reason="buyer_wrote_again", now=NOW,
                                                          keep=(plans.AFTERSALES,))
        assert cancelled == 1
    async with db.read() as tx:
        rows = (await tx.execute(select(Reminder.kind, Reminder.status, Reminder.reason))).all()
        assert sorted(rows) == [(plans.AFTERSALES, "pending", None), (plans.CONSULT, "cancelled", "buyer_wrote_again")]
