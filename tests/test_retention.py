"""Retention: `csbot purge` and `csbot forget-buyer` on data made through the real app (webhooks, agents' API,
outbox worker), on SQLite and PostgreSQL; the CLI runs against the same database file/server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from csbot.app import make_app
from csbot.cli import main
from csbot.clock import FrozenClock
from csbot.config import TickerSettings
from csbot.keys import db_key, outbox_key
from csbot.library import LibrarySet
from csbot.match import Matcher
from csbot.store.models import (
    Buyer,
    Conversation,
    InboundEvent,
    Message,
    Order,
    OutboxItem,
    Remark,
    Reminder,
    Suggestion,
)
from tests.conftest import AUTH, Receiver, Signer, make_settings, message_event

Client = TestClient[Any, Any]
TABLES = {"conversations": Conversation, "messages": Message, "suggestions": Suggestion, "outbox": OutboxItem,
          "inbound_events": InboundEvent, "reminders": Reminder, "remarks": Remark, "orders": Order, "buyers": Buyer}


@pytest.fixture
async def app_client(aiohttp_client: Callable[..., Any], database_url: str, clock: FrozenClock, receiver: Receiver,
                     knowledge: tuple[LibrarySet, Matcher], tmp_cwd: Path,
                     monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv("CSBOT_DB", database_url)  # the CLI reads the same database
    libraries, matcher = knowledge
    # Reminders are ticked by hand here (the beat would fire them at its own pace); the outbox likewise.
    settings = replace(make_settings(database_url, receiver.url), ticker=TickerSettings(interval=3600))
    client: Client = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    client.app[outbox_key].stop()
    await asyncio.sleep(0.1)
    return client


async def post(client: Client, sign: Signer, event: dict[str, Any]) -> dict[str, Any]:
    body, headers = sign(event)
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


def order_created(order_id: str, buyer_id: str, conversation_id: str) -> dict[str, Any]:
    return {"type": "order.created", "shop": "demo", "conversation_id": conversation_id,
            "order": {"id": order_id, "buyer": {"id": buyer_id, "nick": "小李"}, "amount": "199.00",
                      "items": [{"title": "羊毛围巾", "qty": 1}], "created_at": "2026-11-23T10:00:00+08:00",
                      "auto_close_at": "2026-11-24T10:00:00+08:00"}}


async def counts(client: Client) -> dict[str, int]:
    async with client.app[db_key].read() as tx:
        return {name: (await tx.execute(select(func.count()).select_from(model))).scalar_one()
                for name, model in TABLES.items()}


async def per_conversation(client: Client) -> dict[str, dict[str, int]]:
    """Rows hanging off each conversation, by its external id."""
    out: dict[str, dict[str, int]] = {}
    async with client.app[db_key].read() as tx:
        for conv_id, ext in (await tx.execute(select(Conversation.id, Conversation.external_id))).all():
            out[ext] = {name: (await tx.execute(select(func.count()).select_from(model).where(
                model.conversation_id == conv_id))).scalar_one()
                for name, model in TABLES.items() if name in ("messages", "suggestions", "outbox", "remarks")}
    return out


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = await asyncio.to_thread(main, list(argv))
    return code, capsys.readouterr().out


async def make_history(client: Client, sign: Signer, clock: FrozenClock, receiver: Receiver) -> None:
    """Old conversations (200 days back) of every kind, then one recent."""
    await post(client, sign, message_event("在吗", conversation_id="c-done", buyer_id="b-a"))  # auto-sent, delivered
    await client.app[outbox_key].run_once()
    escalated = await post(client, sign, message_event("转人工", conversation_id="c-human", buyer_id="b-b"))
    assert escalated["action"] == "escalated"
    conv_id = (await (await client.get("/api/conversations", headers=AUTH)).json())["conversations"][0]["id"]
    assert (await client.post(f"/api/conversations/{conv_id}/remarks", json={"text": "已电话联系"},
                              headers=AUTH)).status == 200
    receiver.fail_next = 1  # this reply is still waiting in the outbox: its conversation stays
    await post(client, sign, message_event("在吗", conversation_id="c-stuck", buyer_id="b-c"))
    await client.app[outbox_key].run_once()
    await post(client, sign, message_event("在吗", conversation_id="c-unpaid", buyer_id="b-d"))
    await post(client, sign, order_created("o-unpaid", "b-d", "c-unpaid"))  # unpaid: its data stays
    await post(client, sign, message_event("在吗", conversation_id="c-paid", buyer_id="b-e"))
    await post(client, sign, order_created("o-paid", "b-e", "c-paid"))
    await post(client, sign, {"type": "order.paid", "shop": "demo",
                              "order": {"id": "o-paid", "at": "2026-11-23T10:05:00+08:00"}})
    await client.app[outbox_key].run_once()  # delivers the replies to c-unpaid and c-paid; c-stuck's is not due
    clock.advance(timedelta(days=200))
    await post(client, sign, message_event("在吗", conversation_id="c-new", buyer_id="b-a",
                                           sent_at=clock.now().isoformat()))


async def test_purge_deletes_old_finished_data_and_keeps_what_is_open(
        app_client: Client, sign: Signer, clock: FrozenClock, receiver: Receiver,
        capsys: pytest.CaptureFixture[str]) -> None:
    await make_history(app_client, sign, clock, receiver)
    before, rows = await counts(app_client), await per_conversation(app_client)
    assert rows["c-done"]["outbox"] == 1 and rows["c-human"]["remarks"] == 1 and rows["c-stuck"]["outbox"] == 1
    purged, kept = ("c-done", "c-human", "c-paid"), ("c-stuck", "c-unpaid", "c-new")
    async with app_client.app[db_key].read() as tx:
        paid_reminders = (await tx.execute(select(func.count()).select_from(Reminder).join(Order).where(
            Order.external_id == "o-paid"))).scalar_one()
    assert paid_reminders > 0  # cancelled when it was paid: finished, old

    code, out = await cli(capsys, "purge", "--older-than", "180d", "--dry-run", "--at", clock.now().isoformat())
    assert code == 0 and out.startswith("would delete")
    assert await counts(app_client) == before  # a dry run changes nothing

    code, out = await cli(capsys, "purge", "--older-than", "180d", "--at", clock.now().isoformat())
    assert code == 0 and out.startswith("deleted")
    after = await counts(app_client)
    assert after["conversations"] == 3
    assert sorted(await per_conversation(app_client)) == sorted(kept)
    for table in ("messages", "suggestions", "remarks"):
        assert after[table] == sum(rows[c][table] for c in kept), table
        assert before[table] - after[table] == sum(rows[c][table] for c in purged), table
    assert after["remarks"] == 0
    # Delivered replies older than the cutoff go even where the conversation stays (c-unpaid's).
    assert (before["outbox"], after["outbox"]) == (5, 2)
    assert after["inbound_events"] == 1  # only the recent message's; old deliveries are past their tolerance
    assert after["orders"] == 2 and after["buyers"] == before["buyers"]  # accounting records and buyers stay
    assert after["reminders"] == before["reminders"] - paid_reminders  # the unpaid order's 催付 stay
    async with app_client.app[db_key].read() as tx:
        links = dict((await tx.execute(select(Order.external_id, Order.conversation_id))).all())
        statuses = set((await tx.execute(select(OutboxItem.status))).scalars())
    assert links["o-paid"] is None and links["o-unpaid"] is not None
    assert statuses == {"pending"}  # the stuck reply and the recent one
    # The printed summary names what went, with the same numbers.
    assert f"{before['messages'] - after['messages']} messages" in out
    assert f"{before['conversations'] - after['conversations']} conversations" in out

    code, out = await cli(capsys, "purge", "--older-than", "180d", "--at", clock.now().isoformat())
    assert (code, out.split(": ", 1)[1].strip()) == (0, "nothing")  # idempotent


async def test_forget_buyer_erases_them_and_keeps_anonymised_orders(
        app_client: Client, sign: Signer, clock: FrozenClock, receiver: Receiver,
        capsys: pytest.CaptureFixture[str]) -> None:
    await make_history(app_client, sign, clock, receiver)
    before, rows = await counts(app_client), await per_conversation(app_client)

    code, out = await cli(capsys, "forget-buyer", "b-e")
    assert code == 0 and "1 order(s) kept" in out
    after = await counts(app_client)
    assert sorted(await per_conversation(app_client)) == sorted(set(rows) - {"c-paid"})
    assert after["buyers"] == before["buyers"] - 1 and after["orders"] == before["orders"]
    for table in ("messages", "suggestions", "outbox"):
        assert before[table] - after[table] == rows["c-paid"][table], table
    assert after["inbound_events"] == before["inbound_events"] - 1  # the idempotency row of their one message
    async with app_client.app[db_key].read() as tx:
        order = (await tx.execute(select(Order).where(Order.external_id == "o-paid"))).scalar_one()
        reminders = (await tx.execute(select(func.count()).select_from(Reminder).where(
            Reminder.order_id == order.id))).scalar_one()
        texts = list((await tx.execute(select(Message.text))).scalars())
    assert (order.buyer_id, order.conversation_id, order.amount, order.status) == (None, None, "199.00", "paid")
    assert reminders == 0
    assert len(texts) == after["messages"]

    # A buyer with several conversations and a pending reply: everything goes, pending outbox rows too.
    code, out = await cli(capsys, "forget-buyer", "b-a", "--shop", "demo")
    assert code == 0
    assert sorted(await per_conversation(app_client)) == ["c-human", "c-stuck", "c-unpaid"]
    assert (await cli(capsys, "forget-buyer", "b-a"))[0] == 1  # no such buyer any more
