"""Restock notices end to end: a buyer's stock question -> an agent's waiting-list entry -> `stock.updated` events
-> one notice per waiting buyer through the reminder rows and the outbox. Real SQLite file and PostgreSQL; time
only moves when told (`clock.set` + `ticker.tick()`)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from csbot.aftersales import restock
from csbot.clock import FrozenClock
from csbot.config import Settings, TickerSettings
from csbot.keys import reminders_key
from tests.conftest import AUTH, SHANGHAI, Receiver, Signer, make_settings, message_event
from tests.test_orders import post

Client = TestClient[Any, Any]
TITLE = "羊毛围巾 白色 M"


@pytest.fixture
def settings(database_url: str, receiver: Receiver) -> Settings:
    # The tests tick the reminders by hand; the background beat stays out of the way.
    return replace(make_settings(database_url, receiver.url), ticker=TickerSettings(interval=3600.0, batch=50))


def local(text: str) -> datetime:
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def stock(available: int, sku: str = "sku-wm", title: str = TITLE, at: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": sku, "title": title, "available": available}
    if at is not None:
        body["at"] = at
    return {"type": "stock.updated", "shop": "demo", "sku": body}


async def asked(client: Client, sign: Signer, conversation: str, buyer: str, text: str = "白色M还有吗") -> int:
    """A buyer asks about stock; returns the conversation's id for the agents' API."""
    _, answer = await post(client, sign, message_event(text, conversation_id=conversation, buyer_id=buyer))
    assert answer["intent"] == "stock"
    rows = (await (await client.get("/api/conversations", headers=AUTH)).json())["conversations"]
    return next(int(c["id"]) for c in rows if c["external_id"] == conversation)


async def wait_for(client: Client, conversation_id: int, sku: str = "sku-wm") -> tuple[int, dict[str, Any]]:
    resp = await client.post("/api/restock/waitlist", json={"conversation_id": conversation_id, "sku_id": sku},
                             headers=AUTH)
    return resp.status, await resp.json()


async def notices(client: Client) -> list[dict[str, Any]]:
    resp = await client.get("/api/reminders?kind=restock", headers=AUTH)
    assert resp.status == 200
    rows: list[dict[str, Any]] = (await resp.json())["reminders"]
    return rows


async def delivered(receiver: Receiver, reply_ids: set[str]) -> list[dict[str, Any]]:
    """The outbound messages with these reply ids, once they all arrived (and a moment for any extra)."""
    async with asyncio.timeout(10):
        while len({r["reply_id"] for r in receiver.received} & reply_ids) < len(reply_ids):
            receiver.arrived.clear()
            await receiver.arrived.wait()
    await asyncio.sleep(0.2)
    return [r for r in receiver.received if "到货" in r["text"]]


async def test_each_waiting_buyer_is_notified_once(client: Client, sign: Signer, clock: FrozenClock,
                                                   receiver: Receiver) -> None:
    c1 = await asked(client, sign, "c-1", "b-1")
    c2 = await asked(client, sign, "c-2", "b-2", "白色M码有货吗")
    await post(client, sign, stock(0))
    assert (await wait_for(client, c1))[0] == 201
    status, entry = await wait_for(client, c1)  # the agent pressed W twice
    assert (status, entry["created"], entry["status"]) == (200, False, "waiting")
    assert (await wait_for(client, c2))[0] == 201

    _, answer = await post(client, sign, stock(3))
    assert (answer["change"], answer["notices"]) == ("restocked", 2)
    # The platform repeats itself, the count moves within stock, sells out and comes back: nobody is armed twice.
    same = stock(3)
    assert (await post(client, sign, same, webhook_id="wh-same"))[1]["change"] == "none"
    assert (await post(client, sign, same, webhook_id="wh-same"))[1]["change"] == "none"
    assert (await post(client, sign, stock(5)))[1]["notices"] == 0
    assert (await client.app[reminders_key].tick()).sent == 2
    assert (await post(client, sign, stock(0)))[1]["notices"] == 0  # both sent: nothing left to cancel
    assert (await post(client, sign, stock(4)))[1]["notices"] == 0
    clock.set(local("11-24 10:00"))
    await client.app[reminders_key].tick()

    rows = await notices(client)
    assert sorted((r["conversation_id"], r["status"]) for r in rows) == [("c-1", "sent"), ("c-2", "sent")]
    sent = await delivered(receiver, {r["reply_id"] for r in rows})
    assert sorted((r["conversation_id"], r["buyer_id"]) for r in sent) == [("c-1", "b-1"), ("c-2", "b-2")]
    assert all(TITLE in r["text"] for r in sent)
    listed = (await (await client.get("/api/restock/waitlist?sku_id=sku-wm", headers=AUTH)).json())["waits"]
    assert sorted((w["conversation"], w["status"], w["notice"]["status"]) for w in listed) == [
        ("c-1", "armed", "sent"), ("c-2", "armed", "sent")]


async def test_notice_waits_for_the_morning_and_a_second_sellout(client: Client, sign: Signer, clock: FrozenClock,
                                                                  receiver: Receiver) -> None:
    conv = await asked(client, sign, "c-1", "b-1")
    await post(client, sign, stock(0))
    await wait_for(client, conv)
    clock.set(local("11-23 23:30"))  # quiet hours 22:00-08:00 (shop time)
    await post(client, sign, stock(2))
    [row] = await notices(client)
    assert (row["status"], datetime.fromisoformat(row["due_at"])) == ("pending", local("11-24 08:00"))
    for moment in ("11-23 23:31", "11-24 03:00", "11-24 07:59"):
        clock.set(local(moment))
        assert (await client.app[reminders_key].tick()).sent == 0
    clock.set(local("11-24 05:00"))
    await post(client, sign, stock(0))  # sold out again before the notice went out: it is held back
    [row] = await notices(client)
    assert (row["status"], row["reason"]) == ("cancelled", restock.SOLD_OUT_AGAIN)
    clock.set(local("11-24 07:00"))
    await post(client, sign, stock(6))
    clock.set(local("11-24 08:00"))
    assert (await client.app[reminders_key].tick()).sent == 1
    clock.set(local("11-25 09:00"))
    await post(client, sign, stock(0))
    await post(client, sign, stock(1))
    assert (await client.app[reminders_key].tick()).sent == 0
    [row] = await notices(client)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    sent = await delivered(receiver, {row["reply_id"]})
    assert [r["conversation_id"] for r in sent] == ["c-1"]


async def test_opted_out_and_blacklisted_buyers_get_no_notice(client: Client, sign: Signer,
                                                              receiver: Receiver) -> None:
    convs = [await asked(client, sign, f"c-{i}", f"b-{i}") for i in (1, 2, 3)]
    await post(client, sign, stock(0))
    for conv in convs:
        await wait_for(client, conv)
    _, answer = await post(client, sign, message_event("别发了", conversation_id="c-1", buyer_id="b-1"))
    assert answer["intent"] == "opt_out"
    resp = await client.post("/api/shops/demo/buyers/b-2/blacklist", json={"reason": "恶意拍单"}, headers=AUTH)
    assert resp.status == 200
    await post(client, sign, stock(9))
    result = await client.app[reminders_key].tick()
    assert (result.sent, result.skipped) == (1, 2)
    rows = {r["conversation_id"]: r for r in await notices(client)}
    assert {c: (r["status"], r["reason"]) for c, r in rows.items()} == {
        "c-1": ("skipped", "buyer_opted_out"), "c-2": ("skipped", "buyer_blacklisted"), "c-3": ("sent", None)}
    sent = await delivered(receiver, {rows["c-3"]["reply_id"]})
    assert [r["buyer_id"] for r in sent] == ["b-3"]


async def test_agent_is_offered_the_fitting_skus(client: Client, sign: Signer) -> None:
    conv = await asked(client, sign, "c-1", "b-1")
    await post(client, sign, stock(0, "sku-wm"))
    await post(client, sign, stock(0, "sku-bl", "羊毛围巾 黑色 L"))
    await post(client, sign, stock(0, "sku-cap", "棒球帽 红色"))
    await post(client, sign, stock(7, "sku-hat", "白色 M 帽子"))
    resp = await client.get(f"/api/restock/proposals?conversation_id={conv}", headers=AUTH)
    skus = [s["sku_id"] for s in (await resp.json())["skus"]]
    assert skus[0] == "sku-wm" and "sku-hat" not in skus and set(skus) == {"sku-wm", "sku-bl", "sku-cap"}

    status, body = await wait_for(client, conv, "sku-hat")
    assert (status, body["error"]) == (409, "conflict")  # in stock: the agent answers instead
    status, body = await wait_for(client, conv, "sku-new")  # a SKU the platform never counted may be waited for
    assert (status, body["sku_id"], body["available"]) == (201, "sku-new", None)
    resp = await client.post("/api/restock/waitlist", json={"conversation_id": 999999, "sku_id": "x"}, headers=AUTH)
    assert resp.status == 404
    resp = await client.post("/api/restock/waitlist", json={"conversation_id": conv}, headers=AUTH)
    assert (resp.status, (await resp.json())["detail"]["field"]) == (400, "sku_id")
    resp = await client.post("/api/restock/waitlist", json={"conversation_id": conv, "sku_id": "x"})
    assert resp.status == 401


async def test_stock_events_are_validated_and_stale_counts_ignored(client: Client, sign: Signer) -> None:
    status, body = await post(client, sign, stock(-1))
    assert (status, body["detail"]["field"]) == (400, "sku.available")
    status, body = await post(client, sign, {"type": "stock.updated", "shop": "demo", "sku": {"available": 1}})
    assert (status, body["detail"]["field"]) == (400, "sku.id")
    assert (await post(client, sign, stock(0, at="2026-11-23T10:05:00+08:00")))[1]["change"] == "sold_out"
    _, late = await post(client, sign, stock(8, at="2026-11-23T10:01:00+08:00"))  # counted before the 0
    assert (late["change"], late["available"]) == ("stale", 0)
    _, again = await post(client, sign, stock(0, at="2026-11-23T10:05:00+08:00"))  # the same count redelivered
    assert again == (await post(client, sign, stock(0, at="2026-11-23T10:05:00+08:00")))[1]


@pytest.mark.parametrize(("previous", "available", "change"), [
    (None, 3, "restocked"), (0, 1, "restocked"), (2, 5, "none"), (5, 0, "sold_out"), (None, 0, "sold_out"),
])
def test_stock_change(previous: int | None, available: int, change: str) -> None:
    assert restock.stock_change(previous, available) == change
