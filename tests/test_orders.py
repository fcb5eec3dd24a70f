"""Order events through the signed webhook: parsing, idempotency, forward-only state, out-of-order delivery.
Runs on a real SQLite file and on the local PostgreSQL server."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from csbot.keys import db_key
from csbot.store.models import Order
from tests.conftest import AUTH, Signer

Client = TestClient[Any, Any]


def order_created(order_id: str = "o-1", *, buyer_id: str = "b-1", created_at: str = "2026-11-23T10:00:00+08:00",
                  auto_close_at: str | None = "2026-11-24T10:00:00+08:00", amount: Any = "199.00",
                  **extra: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": order_id, "buyer": {"id": buyer_id, "nick": "小王"}, "amount": amount,
        "items": [{"title": "羊毛围巾", "qty": 1}], "created_at": created_at,
    }
    if auto_close_at is not None:
        order["auto_close_at"] = auto_close_at
    return {"type": "order.created", "shop": "demo", "order": order} | extra


def order_event(kind: str, order_id: str = "o-1", at: str | None = "2026-11-23T11:00:00+08:00") -> dict[str, Any]:
    order: dict[str, Any] = {"id": order_id}
    if at is not None:
        order["at"] = at
    return {"type": f"order.{kind}", "shop": "demo", "order": order}


async def post(client: Client, sign: Signer, event: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
    body, headers = sign(event, **kw)
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    return resp.status, await resp.json()


async def test_order_created_plans_the_payment_reminders(client: Client, sign: Signer) -> None:
    status, answer = await post(client, sign, order_created())
    assert status == 200
    assert (answer["order_id"], answer["type"], answer["status"]) == ("o-1", "order.created", "created")
    assert [(r["kind"], r["stage"], r["status"], r["due_at"]) for r in answer["reminders"]] == [
        ("payment", 1, "pending", "2026-11-23T02:20:00+00:00"),
        ("payment", 2, "pending", "2026-11-23T05:00:00+00:00"),
        ("payment", 3, "pending", "2026-11-24T00:30:00+00:00"),
    ]
    listed = (await (await client.get("/api/reminders?order_id=o-1", headers=AUTH)).json())["reminders"]
    assert [(r["order_id"], r["buyer_id"], r["template"]) for r in listed] == [
        ("o-1", "b-1", "reminder_payment_1"), ("o-1", "b-1", "reminder_payment_2"),
        ("o-1", "b-1", "reminder_payment_last")]


async def test_repeated_order_events_change_nothing(client: Client, sign: Signer) -> None:
    event = order_created()
    _, first = await post(client, sign, event, webhook_id="msg_1")
    _, again = await post(client, sign, event, webhook_id="msg_1")
    _, resent = await post(client, sign, event, webhook_id="msg_2")  # platform retry with fresh headers
    assert first == again == resent
    _, paid = await post(client, sign, order_event("paid"))
    _, paid_again = await post(client, sign, order_event("paid", at="2026-11-23T12:00:00+08:00"))
    assert paid == paid_again  # same order, same milestone: the same event
    listed = (await (await client.get("/api/reminders?order_id=o-1", headers=AUTH)).json())["reminders"]
    assert [(r["stage"], r["status"], r["reason"]) for r in listed] == [
        (1, "cancelled", "order_paid"), (2, "cancelled", "order_paid"), (3, "cancelled", "order_paid")]
    async with client.app[db_key].read() as tx:
        order = await tx.get_one(Order, 1)
        assert order.paid_at is not None and order.paid_at.isoformat() == "2026-11-23T03:00:00+00:00"


@pytest.mark.parametrize(
    ("sequence", "status"),
    [
        (["paid", "created"], "paid"),  # a late order.created does not make it unpaid again
        (["created", "delivered", "shipped", "paid"], "delivered"),
        (["created", "paid", "closed", "shipped"], "closed"),
        (["shipped", "created", "delivered", "refund_requested", "delivered"], "refund_requested"),
    ],
)
async def test_order_state_only_moves_forward(client: Client, sign: Signer, sequence: list[str],
                                              status: str) -> None:
    for kind in sequence:
        got, _ = await post(client, sign, order_created() if kind == "created" else order_event(kind))
        assert got == 200
    async with client.app[db_key].read() as tx:
        order = (await tx.execute(select(Order).where(Order.external_id == "o-1"))).scalar_one()
    assert order.status == status
    listed = (await (await client.get("/api/reminders?kind=payment", headers=AUTH)).json())["reminders"]
    assert all(r["status"] == "cancelled" for r in listed), listed  # never unpaid again, never reminded


async def test_paid_before_created_plans_no_reminder(client: Client, sign: Signer) -> None:
    await post(client, sign, order_event("paid"))
    _, answer = await post(client, sign, order_created())
    assert answer["status"] == "paid" and answer["reminders"] == []
    async with client.app[db_key].read() as tx:
        order = await tx.get_one(Order, 1)
    assert (order.amount, order.items, order.buyer_id is not None) == ("199.00", [{"title": "羊毛围巾", "qty": 1}],
                                                                        True)


async def test_delivery_plans_the_closing_message_and_a_refund_cancels_it(client: Client, sign: Signer) -> None:
    await post(client, sign, order_created())
    await post(client, sign, order_event("paid"))
    await post(client, sign, order_event("shipped"))
    _, delivered = await post(client, sign, order_event("delivered", at="2026-11-23T12:00:00+08:00"))
    closing = [r for r in delivered["reminders"] if r["kind"] == "after_delivery"]
    assert [(r["status"], r["due_at"]) for r in closing] == [("pending", "2026-11-24T04:00:00+00:00")]
    _, refund = await post(client, sign, order_event("refund_requested"))
    assert [(r["status"], r["reason"]) for r in refund["reminders"] if r["kind"] == "after_delivery"] == [
        ("cancelled", "order_refund_requested")]


async def test_delivered_before_created_still_gets_its_closing_message(client: Client, sign: Signer) -> None:
    await post(client, sign, order_event("delivered"))
    _, answer = await post(client, sign, order_created())
    assert answer["status"] == "delivered"
    assert [(r["kind"], r["status"]) for r in answer["reminders"]] == [("after_delivery", "pending")]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (order_created() | {"order": None}, "order"),
        ({**order_created(), "order": {**order_created()["order"], "id": ""}}, "order.id"),
        (order_created(amount=199.0), "order.amount"),
        (order_created(amount="12.345"), "order.amount"),
        (order_created(amount="-1"), "order.amount"),
        (order_created(created_at="yesterday"), "order.created_at"),
        (order_created(auto_close_at="2026-11-23T09:00:00+08:00"), "order.auto_close_at"),
        ({**order_created(), "order": {**order_created()["order"], "buyer": {"nick": "x"}}}, "order.buyer.id"),
        ({**order_created(), "order": {**order_created()["order"], "items": [{"title": "x", "qty": 0}]}},
         "order.items[0].qty"),
        (order_event("paid") | {"order": {"at": "2026-11-23T10:00:00+08:00"}}, "order.id"),
        (order_event("paid", at="10:00"), "order.at"),
    ],
)
async def test_bad_order_events_name_the_field(client: Client, sign: Signer, event: dict[str, Any],
                                               field: str) -> None:
    status, answer = await post(client, sign, event)
    assert (status, answer["error"], answer["detail"]["field"]) == (400, "malformed_event", field)
    assert (await (await client.get("/api/reminders", headers=AUTH)).json())["reminders"] == []


async def test_unknown_order_event_type_and_shop(client: Client, sign: Signer) -> None:
    status, answer = await post(client, sign, order_event("teleported"))
    assert (status, answer["error"]) == (422, "unknown_event_type")
    assert "order.paid" in answer["detail"]["known"]
    status, answer = await post(client, sign, order_created() | {"shop": "nobody"})
    assert (status, answer["error"]) == (422, "unknown_shop")
