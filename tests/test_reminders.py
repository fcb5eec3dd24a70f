"""催付 and follow-ups end to end: webhook events -> reminder rows -> `clock.advance` + `ticker.tick()` -> the
fake platform. Runs on a real SQLite file and on the local PostgreSQL server; time only moves when told."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import event, text

from csbot.cli import main
from csbot.clock import FrozenClock
from csbot.config import Settings, TickerSettings
from csbot.keys import db_key, deps_key, reminders_key, settings_key
from csbot.reminders.ticker import ReminderClock, Ticker, TickResult
from csbot.store.db import Database
from tests.conftest import AUTH, SHANGHAI, Receiver, Signer, make_settings, message_event
from tests.test_orders import order_created, order_event, post

Client = TestClient[Any, Any]


@pytest.fixture
def settings(database_url: str, receiver: Receiver) -> Settings:
    # The background beat would tick on its own once a second; the tests tick by hand instead.
    return replace(make_settings(database_url, receiver.url), ticker=TickerSettings(interval=3600.0, batch=50))


async def tick(client: Client) -> TickResult:
    return await client.app[reminders_key].tick()


async def reminders(client: Client, query: str = "") -> list[dict[str, Any]]:
    resp = await client.get(f"/api/reminders{query}", headers=AUTH)
    assert resp.status == 200
    rows: list[dict[str, Any]] = (await resp.json())["reminders"]
    return rows


def local(text: str) -> datetime:
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


async def settle(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    """Wait for `count` deliveries, then a moment more to catch any extra one."""
    received = await receiver.wait_for(count)
    await asyncio.sleep(0.2)
    assert len(received) == count, [r["text"] for r in received]
    return received


async def test_full_payment_cycle(client: Client, sign: Signer, clock: FrozenClock, receiver: Receiver) -> None:
    await post(client, sign, order_created())
    clock.set(local("11-23 10:19"))
    assert (await tick(client)).claimed == 0
    clock.set(local("11-23 10:20"))
    assert (await tick(client)).sent == 1
    clock.set(local("11-23 13:00"))
    assert (await tick(client)).sent == 1
    clock.set(local("11-24 08:30"))
    assert (await tick(client)).sent == 1
    clock.set(local("11-24 12:00"))
    assert (await tick(client)).claimed == 0

    received = await settle(receiver, 3)
    assert "羊毛围巾" in received[0]["text"] and "付款" in received[0]["text"]
    assert "o-1" in received[1]["text"] and "199.00" in received[1]["text"]
    assert "今天 10:00" in received[2]["text"]  # the last call names the auto-close time in shop time
    assert {r["buyer_id"] for r in received} == {"b-1"}
    assert len({r["_webhook_id"] for r in received}) == 3
    rows = await reminders(client, "?order_id=o-1")
    assert [(r["status"], r["reply_id"] is not None, r["attempts"]) for r in rows] == [("sent", True, 1)] * 3
    assert [r["reply_id"] for r in rows] == [r["_webhook_id"] for r in received]

    await post(client, sign, order_event("paid", at="2026-11-24T09:00:00+08:00"))
    stats = await (await client.get("/api/reminders/stats", headers=AUTH)).json()
    assert stats["sent"] == {"payment": 3}
    assert stats["payment"] == {"reminded_orders": 1, "paid_after_reminder": 1, "recovery_rate": 1.0}


async def test_paid_between_stages_stops_the_rest(client: Client, sign: Signer, clock: FrozenClock,
                                                  receiver: Receiver) -> None:
    await post(client, sign, order_created())
    clock.set(local("11-23 10:20"))
    await tick(client)
    _, answer = await post(client, sign, order_event("paid", at="2026-11-23T10:40:00+08:00"))
    assert [(r["status"], r["reason"]) for r in answer["reminders"]] == [
        ("sent", None), ("cancelled", "order_paid"), ("cancelled", "order_paid")]
    clock.set(local("11-24 09:00"))
    assert (await tick(client)).claimed == 0
    await settle(receiver, 1)
    stats = await (await client.get("/api/reminders/stats", headers=AUTH)).json()
    assert stats["cancelled"] == {"order_paid": 2}
    assert stats["payment"]["paid_after_reminder"] == 1


async def test_closed_order_gets_nothing(client: Client, sign: Signer, clock: FrozenClock,
                                         receiver: Receiver) -> None:
    await post(client, sign, order_created())
    await post(client, sign, order_event("closed", at="2026-11-23T10:05:00+08:00"))
    clock.set(local("11-25 10:00"))
    assert (await tick(client)).claimed == 0
    assert {r["reason"] for r in await reminders(client)} == {"order_closed"}
    assert receiver.received == []


async def test_quiet_hours_move_and_skip(client: Client, sign: Signer, clock: FrozenClock,
                                         receiver: Receiver) -> None:
    clock.set(local("11-23 21:00"))
    await post(client, sign, order_created("o-night", created_at="2026-11-23T21:00:00+08:00",
                                           auto_close_at="2026-11-24T21:00:00+08:00"))
    await post(client, sign, order_created("o-short", buyer_id="b-2", created_at="2026-11-23T21:00:00+08:00",
                                           auto_close_at="2026-11-23T23:30:00+08:00"))
    night = await reminders(client, "?order_id=o-night")
    assert [(r["stage"], r["due_at"]) for r in night] == [
        (1, "2026-11-23T13:20:00+00:00"), (2, "2026-11-24T00:00:00+00:00"), (3, "2026-11-24T11:30:00+00:00")]
    short = await reminders(client, "?order_id=o-short")
    assert sorted((r["stage"], r["status"], r["reason"]) for r in short) == [
        (1, "pending", None), (2, "skipped", "past_auto_close"), (3, "skipped", "quiet_hours_until_auto_close")]

    # The bot was down from 21:10 to 22:30: stage 1 of both orders is overdue and now in quiet hours.
    clock.set(local("11-23 22:30"))
    result = await tick(client)
    assert (result.deferred, result.skipped, result.sent) == (1, 1, 0)
    short = await reminders(client, "?order_id=o-short")
    assert {(r["stage"], r["status"], r["reason"]) for r in short} >= {(1, "skipped", "quiet_hours_until_auto_close")}
    night = await reminders(client, "?order_id=o-night")
    assert (night[0]["status"], night[0]["due_at"], night[0]["reason"]) == (
        "pending", "2026-11-24T00:00:00+00:00", "quiet_hours")

    clock.set(local("11-24 03:00"))
    assert (await tick(client)).claimed == 0
    clock.set(local("11-24 08:00"))  # deferred stage 1 and stage 2 are both due: only the later one goes out
    result = await tick(client)
    assert (result.sent, result.skipped) == (1, 1)
    night = await reminders(client, "?order_id=o-night")
    assert [(r["stage"], r["status"], r["reason"]) for r in night] == [
        (1, "skipped", "superseded_by_later_stage"), (2, "sent", None), (3, "pending", None)]
    (received,) = await settle(receiver, 1)
    assert received["reply_id"] == night[1]["reply_id"]


async def test_buyer_cap_per_day(client: Client, sign: Signer, clock: FrozenClock, receiver: Receiver) -> None:
    for n in range(3):
        await post(client, sign, order_created(f"o-{n}"))
    await post(client, sign, order_created("o-other", buyer_id="b-2"))
    clock.set(local("11-23 10:20"))
    assert (await tick(client)).sent == 4
    await receiver.wait_for(4)  # delivered (signed and checked) before the clock jumps
    clock.set(local("11-23 13:00"))
    result = await tick(client)
    assert (result.sent, result.skipped) == (1, 3)  # b-1 had three today; b-2 one
    skipped = await reminders(client, "?status=skipped")
    assert sorted((r["order_id"], r["reason"]) for r in skipped) == [
        ("o-0", "buyer_cap"), ("o-1", "buyer_cap"), ("o-2", "buyer_cap")]
    await receiver.wait_for(5)
    clock.set(local("11-24 08:30"))  # 22 h later: still within b-1's 24 h window
    result = await tick(client)
    assert (result.sent, result.skipped) == (1, 3)
    await settle(receiver, 6)
    stats = await (await client.get("/api/reminders/stats", headers=AUTH)).json()
    assert stats["skipped"] == {"buyer_cap": 6}


async def test_opt_out_stops_every_automated_message(client: Client, sign: Signer, clock: FrozenClock,
                                                     receiver: Receiver) -> None:
    await post(client, sign, order_created())
    await post(client, sign, order_created("o-2"))
    clock.set(local("11-23 10:20"))
    assert (await tick(client)).sent == 2
    _, answer = await post(client, sign, message_event("别发了", sent_at="2026-11-23T10:30:00+08:00"))
    assert answer["intent"] == "opt_out"
    pending = await reminders(client, "?status=pending")
    assert pending == []
    assert {(r["stage"], r["reason"]) for r in await reminders(client, "?status=cancelled")} == {
        (2, "buyer_opted_out"), (3, "buyer_opted_out")}
    clock.set(local("11-24 09:00"))
    assert (await tick(client)).claimed == 0
    # The next order of the same buyer is planned, but nothing goes out when due.
    await post(client, sign, order_created("o-3", created_at="2026-11-24T09:00:00+08:00",
                                           auto_close_at="2026-11-25T09:00:00+08:00"))
    clock.set(local("11-24 09:20"))
    result = await tick(client)
    assert (result.sent, result.skipped) == (0, 1)
    texts = [r["text"] for r in await settle(receiver, 3)]  # two stage-1 reminders and the opt-out reply
    assert sum("羊毛围巾" in t for t in texts) == 2


async def test_blacklisted_buyer_gets_none(client: Client, sign: Signer, clock: FrozenClock,
                                           receiver: Receiver) -> None:
    await post(client, sign, order_created())
    resp = await client.post("/api/shops/demo/buyers/b-1/blacklist", json={"reason": "恶意拍单"}, headers=AUTH)
    assert resp.status == 200
    clock.set(local("11-23 10:20"))
    result = await tick(client)
    assert (result.sent, result.skipped) == (0, 1)
    assert (await reminders(client, "?status=skipped"))[0]["reason"] == "buyer_blacklisted"
    assert receiver.received == []


async def test_cancel_through_the_api(client: Client, sign: Signer, clock: FrozenClock) -> None:
    await post(client, sign, order_created())
    resp = await client.post("/api/orders/o-1/reminders/cancel", headers=AUTH)
    assert resp.status == 200 and await resp.json() == {"order_id": "o-1", "cancelled": 3}
    assert {r["reason"] for r in await reminders(client, "?order_id=o-1")} == {"cancelled_by_api"}
    assert (await client.post("/api/orders/o-404/reminders/cancel", headers=AUTH)).status == 404
    assert (await client.get("/api/reminders?status=lost", headers=AUTH)).status == 400
    assert (await client.get("/api/reminders")).status == 401
    clock.set(local("11-25 10:00"))
    assert (await tick(client)).claimed == 0


async def test_reminder_goes_to_the_buyers_conversation(client: Client, sign: Signer, clock: FrozenClock,
                                                        receiver: Receiver) -> None:
    await post(client, sign, message_event("能便宜点吗", conversation_id="c-chat"))
    await post(client, sign, order_created())
    await post(client, sign, order_created("o-2", buyer_id="b-new"))
    await post(client, sign, order_created("o-3", buyer_id="b-3", conversation_id="c-named"))
    clock.set(local("11-23 10:20"))
    assert (await tick(client)).sent == 3
    received = await settle(receiver, 3)
    assert {(r["buyer_id"], r["conversation_id"]) for r in received} == {
        ("b-1", "c-chat"), ("b-new", "buyer:b-new"), ("b-3", "c-named")}
    assert all(r["in_reply_to"] is None for r in received)


async def test_two_tickers_on_one_database_send_each_reminder_once(client: Client, sign: Signer,
                                                                   clock: FrozenClock, receiver: Receiver) -> None:
    for n in range(120):
        await post(client, sign, order_created(f"o-{n}", buyer_id=f"b-{n}"))
    clock.set(local("11-23 10:20"))
    app = client.app
    other_db = await Database.open(app[settings_key].database_url)
    try:
        other = Ticker(other_db, app[deps_key], TickerSettings(batch=7))
        results = await asyncio.gather(tick(client), other.tick(), tick(client), other.tick())
    finally:
        await other_db.close()
    assert sum(r.sent for r in results) == 120
    received = await receiver.wait_for(120)
    await asyncio.sleep(0.2)
    assert len(received) == len({r["_webhook_id"] for r in received}) == 120


async def test_a_batch_reads_its_buyers_and_orders_once(client: Client, sign: Signer, clock: FrozenClock,
                                                        receiver: Receiver) -> None:
    """A batch loads its buyers and orders in one query each, and each reminder finds them there: the statements
    a tick runs on those tables do not grow with the batch (they were read again for every reminder)."""
    for n in range(12):
        await post(client, sign, order_created(f"o-{n}", buyer_id=f"b-{n}"))
    clock.set(local("11-23 10:20"))
    selects: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        head = " ".join(statement.split())
        if head.startswith("SELECT") and any(f"FROM {table} " in f"{head} " for table in ("buyers", "orders")):
            selects.append(head)

    engine = client.app[db_key].engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        result = await tick(client)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert result.sent == 12
    assert len(await settle(receiver, 12)) == 12
    assert len(selects) == 2, selects  # one for the buyers, one for the orders


async def test_beats_during_a_long_tick_are_skipped_without_a_warning_each(
        client: Client, sign: Signer, clock: FrozenClock, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    """A beat every 50 ms while another connection holds the reminders for half a second: the running tick
    waits, APScheduler skips the beats that come meanwhile (max_instances=1) and does not warn for each."""
    await post(client, sign, order_created("o-1", buyer_id="b-1"))
    clock.set(local("11-23 10:20"))
    caplog.set_level(logging.WARNING, logger="apscheduler")
    other = await Database.open(client.app[settings_key].database_url)
    beat = ReminderClock(client.app[reminders_key], 0.05)
    try:
        async with other.transaction() as tx:
            # SQLite: the transaction's BEGIN IMMEDIATE holds the write lock once it runs a statement.
            await tx.execute(text("LOCK TABLE reminders IN EXCLUSIVE MODE" if other.dialect == "postgresql"
                                  else "SELECT 1"))
            beat.start()
            await asyncio.sleep(0.5)
            assert receiver.received == []  # the tick is held: the beats in these 500 ms found it running
        await receiver.wait_for(1)
    finally:
        await beat.stop()
        await other.close()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")] == []


# The database refuses the outbox row of one buyer's reminder: a real error from inside the firing, after the
# reminder row was already changed (its savepoint's rollback undoes that), as a full disk or a broken
# connection would raise. A trigger in the test's database, not a patch of our code.
REFUSE_SQL = {
    "sqlite": ["CREATE TRIGGER refuse_b_poison BEFORE INSERT ON outbox WHEN NEW.payload LIKE '%b-poison%' "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
    "postgresql": ["CREATE FUNCTION refuse_b_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF NEW.payload::text LIKE '%b-poison%' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
                   "RETURN NEW; END $$",
                   "CREATE TRIGGER refuse_b_poison BEFORE INSERT ON outbox FOR EACH ROW "
                   "EXECUTE FUNCTION refuse_b_poison()"],
}


async def test_a_reminder_that_fails_to_fire_holds_back_no_other(client: Client, sign: Signer, clock: FrozenClock,
                                                                 receiver: Receiver) -> None:
    db = client.app[db_key]
    async with db.transaction() as tx:
        for statement in REFUSE_SQL[db.dialect]:
            await tx.execute(text(statement))
    for n, buyer in enumerate(("b-1", "b-poison", "b-3")):
        await post(client, sign, order_created(f"o-{n}", buyer_id=buyer))
    clock.set(local("11-23 10:20"))
    first = await tick(client)
    assert (first.claimed, first.sent, first.failed) == (3, 2, 1)
    assert {r["buyer_id"] for r in await settle(receiver, 2)} == {"b-1", "b-3"}

    # Claimed, retried once its lease has run out, and skipped with the error after max_attempts.
    lease = client.app[settings_key].ticker.lease_seconds
    max_attempts = client.app[settings_key].ticker.max_attempts
    for attempt in range(2, max_attempts + 1):
        clock.advance(timedelta(seconds=lease + 1))
        result = await tick(client)
        assert (result.claimed, result.sent) == (1, 0)
        assert (result.failed, result.skipped) == ((0, 1) if attempt == max_attempts else (1, 0))
    rows = await reminders(client, "?order_id=o-1")
    stage_1 = next(r for r in rows if r["stage"] == 1)
    assert stage_1["status"] == "skipped" and stage_1["reason"].startswith("error: ")
    assert len(receiver.received) == 2


async def test_reminders_survive_a_restart(settings: Settings, clock: FrozenClock, sign: Signer,
                                           receiver: Receiver, knowledge: Any, aiohttp_client: Any) -> None:
    from csbot.app import make_app

    libraries, matcher = knowledge
    first = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    await post(first, sign, order_created())
    await first.close()
    clock.set(local("11-23 13:30"))  # down over stage 1 and stage 2
    second = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    result = await tick(second)  # (the beat's own first tick at start may have done it already)
    result2 = await tick(second)
    assert result.sent + result2.sent <= 1
    (received,) = await settle(receiver, 1)
    rows = await reminders(second, "?order_id=o-1")
    assert [(r["stage"], r["status"], r["reason"]) for r in rows] == [
        (1, "skipped", "superseded_by_later_stage"), (2, "sent", None), (3, "pending", None)]
    assert received["reply_id"] == rows[1]["reply_id"]


# --- follow-ups ------------------------------------------------------------------------------------


async def conversation(client: Client, external_id: str = "c-1") -> dict[str, Any]:
    convs = (await (await client.get("/api/conversations", headers=AUTH)).json())["conversations"]
    (conv,) = [c for c in convs if c["external_id"] == external_id]
    detail: dict[str, Any] = await (await client.get(f"/api/conversations/{conv['id']}", headers=AUTH)).json()
    return detail


async def test_consulted_not_ordered_becomes_a_suggestion_for_the_next_shift(
        client: Client, sign: Signer, clock: FrozenClock, receiver: Receiver) -> None:
    _, answer = await post(client, sign, message_event("这款还有货吗"))
    assert answer["intent"] == "stock"
    assert (await conversation(client))["follow_ups"] == [
        {"kind": "consult_followup", "due_at": "2026-11-23T06:00:00+00:00"}]
    for s in answer["suggestions"]:  # the agent leaves it for now
        await client.post(f"/api/suggestions/{s['id']}/reject", headers=AUTH)
    clock.advance(timedelta(hours=4))
    result = await tick(client)
    assert (result.suggested, result.sent) == (1, 0)
    detail = await conversation(client)
    assert detail["status"] == "waiting"
    (follow_up,) = detail["suggestions"]
    assert (follow_up["intent"], follow_up["message_id"]) == ("consult_followup", None)
    assert "咨询" in follow_up["text"]
    resp = await client.post(f"/api/suggestions/{follow_up['id']}/accept", headers=AUTH)
    assert resp.status == 200
    (delivered,) = await settle(receiver, 1)
    assert (delivered["text"], delivered["in_reply_to"]) == (follow_up["text"], None)
    (row,) = await reminders(client, "?kind=consult_followup")
    assert (row["status"], row["reason"], row["suggestion_id"]) == ("sent", "suggested_to_agents", follow_up["id"])


async def test_buyer_or_agent_moving_the_conversation_cancels_follow_ups(client: Client, sign: Signer,
                                                                          clock: FrozenClock) -> None:
    await post(client, sign, message_event("这款还有货吗"))
    await post(client, sign, message_event("谢谢"))
    (row,) = await reminders(client, "?kind=consult_followup")
    assert (row["status"], row["reason"]) == ("cancelled", "buyer_wrote_again")
    _, again = await post(client, sign, message_event("这款还有货吗"))
    (row,) = await reminders(client, "?kind=consult_followup")
    assert row["status"] == "pending"  # armed again, same row
    await client.post(f"/api/suggestions/{again['suggestions'][0]['id']}/accept", headers=AUTH)
    (row,) = await reminders(client, "?kind=consult_followup")
    assert (row["status"], row["reason"]) == ("cancelled", "agent_replied")
    clock.advance(timedelta(days=3))
    assert (await tick(client)).claimed == 0


async def test_no_consult_follow_up_once_the_buyer_ordered(client: Client, sign: Signer,
                                                           clock: FrozenClock) -> None:
    await post(client, sign, message_event("这款还有货吗"))
    await post(client, sign, order_created())  # ordered after asking
    await post(client, sign, order_event("paid"))
    clock.advance(timedelta(hours=4))
    await tick(client)
    (row,) = await reminders(client, "?kind=consult_followup")
    assert (row["status"], row["reason"]) == ("cancelled", "buyer_ordered")
    await post(client, sign, message_event("这款还有货吗", conversation_id="c-2"))  # has an order now
    assert await reminders(client, "?kind=consult_followup&status=pending") == []


async def test_aftersales_unresolved_for_48_hours_raises_a_task(client: Client, sign: Signer,
                                                                clock: FrozenClock) -> None:
    _, answer = await post(client, sign, message_event("快递怎么还没到"))
    assert answer["intent"] == "logistics"
    deadline = [{"kind": "aftersales_followup", "due_at": "2026-11-25T02:00:00+00:00"}]
    assert (await conversation(client))["follow_ups"] == deadline  # the 48 h resolve deadline
    clock.advance(timedelta(hours=20))
    await post(client, sign, message_event("快递怎么还没到 都三天了"))  # the same case: deadline unchanged
    assert (await conversation(client))["follow_ups"] == deadline
    clock.set(local("11-25 09:59"))
    assert (await tick(client)).claimed == 0
    clock.set(local("11-25 10:00"))
    assert (await tick(client)).suggested == 1
    tasks = [s for s in (await conversation(client))["suggestions"] if s["intent"] == "aftersales_followup"]
    assert len(tasks) == 1 and "跟进" in tasks[0]["text"]


async def test_after_delivery_closing_message_once(client: Client, sign: Signer, clock: FrozenClock,
                                                   receiver: Receiver) -> None:
    await post(client, sign, order_created())
    await post(client, sign, order_event("paid", at="2026-11-23T10:05:00+08:00"))
    await post(client, sign, order_event("delivered", at="2026-11-23T12:00:00+08:00"))
    await post(client, sign, order_event("delivered", at="2026-11-23T12:30:00+08:00"))
    clock.set(local("11-24 12:00"))
    assert (await tick(client)).sent == 1
    clock.advance(timedelta(days=2))
    assert (await tick(client)).claimed == 0
    (closing,) = await settle(receiver, 1)
    assert "好评" in closing["text"]


# --- command line ----------------------------------------------------------------------------------


def test_cli_lists_and_cancels(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               knowledge: Any) -> None:
    from csbot.app import make_app

    url = f"sqlite+aiosqlite:///{tmp_path / 'csbot.db'}"
    settings = replace(make_settings(url), ticker=TickerSettings(interval=3600.0))
    clock = FrozenClock(local("11-23 10:00"))

    async def seed() -> None:
        from aiohttp.test_utils import TestServer

        libraries, matcher = knowledge
        from csbot.ingest.signatures import signed_headers
        from tests.conftest import SECRET

        async with TestClient(TestServer(make_app(settings, clock=clock, libraries=libraries,
                                                  matcher=matcher))) as client:
            body = json.dumps(order_created(), ensure_ascii=False).encode()
            headers = signed_headers(SECRET, "msg_cli", int(clock.now().timestamp()), body)
            assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200

    asyncio.run(seed())
    config = tmp_path / "csbot.toml"
    config.write_text(f'database = "{url}"\n', encoding="utf-8")
    assert main(["--config", str(config), "reminders", "list", "--order", "o-1"]) == 0
    out = capsys.readouterr().out
    assert out.count("pending") == 3 and "order o-1" in out and "2026-11-23T02:20:00+00:00" in out
    assert main(["--config", str(config), "reminders", "cancel", "o-1"]) == 0
    assert "3 pending reminder(s) cancelled" in capsys.readouterr().out
    assert main(["--config", str(config), "reminders", "list", "--status", "cancelled", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["stage"], r["reason"]) for r in rows] == [(1, "cancelled_by_cli"), (2, "cancelled_by_cli"),
                                                         (3, "cancelled_by_cli")]
    assert main(["--config", str(config), "reminders", "cancel", "o-404"]) == 1
