"""End to end through HTTP: signed event -> stored message -> decision -> suggestion/outbox -> receiver.
Runs on a real SQLite file and on the local PostgreSQL server."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from csbot.clock import FrozenClock
from csbot.ingest.signatures import signed_headers
from csbot.keys import db_key, outbox_key
from csbot.store import repo
from tests.conftest import AUTH, SECRET, SHANGHAI, Receiver, Signer, message_event

Client = TestClient[Any, Any]


async def post_event(client: Client, sign: Signer, event: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
    body, headers = sign(event, **kw)
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    return resp.status, await resp.json()


async def inbound_count(client: Client, conversation_id: str = "c-1") -> int:
    async with client.app[db_key].read() as tx:
        return await repo.count_messages(tx, shop_id="demo", conversation_external_id=conversation_id)


async def outbox_rows(client: Client, status: str | None = None) -> list[dict[str, Any]]:
    resp = await client.get("/api/outbox" + (f"?status={status}" if status else ""), headers=AUTH)
    assert resp.status == 200
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


async def test_suggestion_accepted_by_agent_reaches_the_receiver(client: Client, sign: Signer,
                                                                   receiver: Receiver) -> None:
    status, answer = await post_event(client, sign, message_event("亲 在吗？能便宜点吗", message_id="m-1"))
    assert status == 200
    assert answer["conversation_id"] == "c-1" and answer["message_id"] == "m-1"
    assert answer["action"] == "suggested" and answer["intent"] == "bargain"
    assert 1 <= len(answer["suggestions"]) <= 3
    best = answer["suggestions"][0]
    assert best["intent"] == "bargain" and best["text"] and best["status"] == "pending"

    convs = (await (await client.get("/api/conversations", headers=AUTH)).json())["conversations"]
    assert [(c["external_id"], c["status"], c["buyer"]["nick"]) for c in convs] == [("c-1", "waiting", "小王")]
    detail = await (await client.get(f"/api/conversations/{convs[0]['id']}", headers=AUTH)).json()
    assert [m["text"] for m in detail["messages"]] == ["亲 在吗？能便宜点吗"]
    assert [s["id"] for s in detail["suggestions"]] == [s["id"] for s in answer["suggestions"]]

    resp = await client.post(f"/api/suggestions/{best['id']}/accept", headers=AUTH)
    assert resp.status == 200
    accepted = await resp.json()
    assert accepted["status"] == "accepted"

    (delivered,) = await receiver.wait_for(1)
    assert delivered["type"] == "reply.created"
    assert delivered["text"] == best["text"]
    assert delivered["reply_id"] == accepted["reply_id"] == delivered["_webhook_id"]
    assert (delivered["shop"], delivered["conversation_id"], delivered["buyer_id"], delivered["in_reply_to"]) == (
        "demo", "c-1", "b-1", "m-1")
    for _ in range(100):  # the worker marks the row right after the receiver answered
        if [r["status"] for r in await outbox_rows(client)] == ["delivered"]:
            break
        await asyncio.sleep(0.02)
    assert [r["status"] for r in await outbox_rows(client)] == ["delivered"]
    detail = await (await client.get(f"/api/conversations/{convs[0]['id']}", headers=AUTH)).json()
    assert detail["suggestions"] == []  # the alternatives were closed
    assert [m["author"] for m in detail["messages"]] == ["buyer", "agent"]


async def test_edited_and_rejected_suggestions(client: Client, sign: Signer, receiver: Receiver) -> None:
    _, first = await post_event(client, sign, message_event("能便宜点吗"))
    edit_id = first["suggestions"][0]["id"]
    resp = await client.post(f"/api/suggestions/{edit_id}/accept", json={"text": "给您少5元，今天拍下就改价"},
                             headers=AUTH)
    assert resp.status == 200 and (await resp.json())["status"] == "edited"
    assert (await receiver.wait_for(1))[0]["text"] == "给您少5元，今天拍下就改价"

    _, second = await post_event(client, sign, message_event("还能再便宜吗"))
    reject_id = second["suggestions"][0]["id"]
    resp = await client.post(f"/api/suggestions/{reject_id}/reject", json={"reason": "语气太生硬"}, headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["reason"] == "语气太生硬"
    again = await client.post(f"/api/suggestions/{reject_id}/accept", headers=AUTH)
    assert again.status == 409 and (await again.json())["error"] == "conflict"
    missing = await client.post("/api/suggestions/999999/accept", headers=AUTH)
    assert missing.status == 404


async def test_same_delivery_twice_stores_one_message(client: Client, sign: Signer) -> None:
    event = message_event("包邮吗", message_id="m-dup")
    body, headers = sign(event, webhook_id="msg_same")
    answers = []
    for _ in range(2):
        resp = await client.post("/webhooks/generic", data=body, headers=headers)
        assert resp.status == 200
        answers.append(await resp.json())
    assert answers[0] == answers[1]
    # The same message under a new webhook-id (a platform retry with fresh headers) is the same event too.
    status, third = await post_event(client, sign, event, webhook_id="msg_other")
    assert status == 200 and third == answers[0]
    assert await inbound_count(client) == 1


async def test_concurrent_duplicates_store_one_message(client: Client, sign: Signer) -> None:
    body, headers = sign(message_event("什么时候发货", message_id="m-race"), webhook_id="msg_race")
    responses = await asyncio.gather(*(client.post("/webhooks/generic", data=body, headers=headers)
                                       for _ in range(8)))
    assert [r.status for r in responses] == [200] * 8
    answers = [await r.json() for r in responses]
    assert all(a == answers[0] for a in answers)
    assert await inbound_count(client) == 1


@pytest.mark.parametrize(
    ("mutate", "status", "error", "field"),
    [
        (lambda e: e.pop("message"), 400, "malformed_event", "message"),
        (lambda e: e["message"].pop("text"), 400, "malformed_event", "message.text"),
        (lambda e: e["message"].update(text=42), 400, "malformed_event", "message.text"),
        (lambda e: e["buyer"].pop("id"), 400, "malformed_event", "buyer.id"),
        (lambda e: e.update(conversation_id=""), 400, "malformed_event", "conversation_id"),
        (lambda e: e["message"].update(sent_at="yesterday"), 400, "malformed_event", "message.sent_at"),
        (lambda e: e["message"].update(text="a\x00b"), 400, "malformed_event", "message.text"),
        (lambda e: e["buyer"].update(nick=["小王"]), 400, "malformed_event", "buyer.nick"),
        (lambda e: e.update(type="order.teleported"), 422, "unknown_event_type", None),
        (lambda e: e.update(shop="nobody"), 422, "unknown_shop", None),
    ],
)
async def test_bad_events_are_4xx_naming_the_field(client: Client, sign: Signer, mutate: Any, status: int,
                                                     error: str, field: str | None) -> None:
    event = message_event("在吗")
    mutate(event)
    got, answer = await post_event(client, sign, event)
    assert (got, answer["error"]) == (status, error)
    if field:
        assert answer["detail"]["field"] == field
    assert await inbound_count(client) == 0


async def test_unsigned_forged_or_stale_requests_are_401_and_store_nothing(client: Client, sign: Signer,
                                                                            clock: FrozenClock) -> None:
    event = message_event("在吗")
    body, headers = sign(event)
    cases = [
        {k: v for k, v in headers.items() if k != "webhook-signature"},
        headers | {"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
        sign(event, secret="whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")[1],
        sign(event, timestamp=int(clock.now().timestamp()) - 301)[1],
    ]
    for hdrs in cases:
        resp = await client.post("/webhooks/generic", data=body, headers=hdrs)
        assert resp.status == 401
        assert (await resp.json())["error"] == "invalid_signature"
    tampered = body.replace("在吗".encode(), "在不".encode())
    assert (await client.post("/webhooks/generic", data=tampered, headers=headers)).status == 401
    assert await inbound_count(client) == 0


async def test_body_limits_and_garbage(client: Client, sign: Signer, clock: FrozenClock) -> None:
    big = b'{"type": "message.created", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    _, headers = sign({})  # the size is checked before the signature
    resp = await client.post("/webhooks/generic", data=io.BytesIO(big), headers=headers)
    assert resp.status == 413 and (await resp.json())["error"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut off while reading
        for _ in range(20):
            yield b"x" * 65536

    resp = await client.post("/webhooks/generic", data=chunks(), headers=headers)
    assert resp.status == 413 and (await resp.json())["error"] == "payload_too_large"
    lone_surrogate = json.dumps(message_event("\ud800")).encode()  # valid JSON, not storable text
    garbage = [b"not json", b"\xff\xfe\x00", b"[1, 2]", b"[" * 100_000 + b"]" * 100_000, lone_surrogate]
    for i, raw in enumerate(garbage):
        hdrs = signed_headers(SECRET, f"msg_raw_{i}", int(clock.now().timestamp()), raw)
        resp = await client.post("/webhooks/generic", data=raw, headers=hdrs)
        assert resp.status == 400, raw[:20]
        assert (await resp.json())["error"] == "malformed_event"


async def test_offline_reply_once_per_off_period(client: Client, sign: Signer, clock: FrozenClock,
                                                 receiver: Receiver) -> None:
    clock.set(datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI))  # the demo shop closes at 23:00
    _, first = await post_event(client, sign, message_event("在吗"))
    assert first["action"] == "auto_sent"
    assert [s["intent"] for s in first["sent"]] == ["offline"]
    assert "08:30" in first["sent"][0]["text"]  # tells the buyer when an agent is back
    assert first["intent"] == "greeting"
    assert any(s["status"] == "pending" and s["intent"] == "greeting" for s in first["suggestions"])

    clock.advance(timedelta(hours=3))  # 02:30, same night
    _, second = await post_event(client, sign, message_event("包邮吗"))
    assert second["action"] == "suggested" and second["sent"] == []

    clock.set(datetime(2026, 11, 24, 23, 15, tzinfo=SHANGHAI))  # the next night is a new off period
    _, third = await post_event(client, sign, message_event("有人吗"))
    assert [s["intent"] for s in third["sent"]] == ["offline"]
    received = await receiver.wait_for(2)
    assert [r["text"] for r in received] == [first["sent"][0]["text"], third["sent"][0]["text"]]


async def test_blacklisted_buyer_is_stored_but_not_answered(client: Client, sign: Signer) -> None:
    resp = await client.post("/api/shops/demo/buyers/b-9/blacklist", json={"reason": "恶意差评"}, headers=AUTH)
    assert resp.status == 200 and (await resp.json())["blacklisted"] is True
    _, answer = await post_event(client, sign, message_event("在吗", buyer_id="b-9", conversation_id="c-9"))
    assert (answer["action"], answer["suggestions"], answer["sent"]) == ("ignored", [], [])
    assert await inbound_count(client, "c-9") == 1
    await client.delete("/api/shops/demo/buyers/b-9/blacklist", headers=AUTH)
    _, later = await post_event(client, sign, message_event("在吗", buyer_id="b-9", conversation_id="c-9"))
    assert later["action"] != "ignored"


@pytest.mark.parametrize(("text", "intent"), [("转人工", "human_agent"), ("我要投诉你们", "complaint")])
async def test_escalating_intents_go_to_a_human_with_an_acknowledgement(client: Client, sign: Signer, text: str,
                                                                         intent: str) -> None:
    _, answer = await post_event(client, sign, message_event(text))
    assert (answer["action"], answer["intent"]) == ("escalated", intent)
    assert answer["sent"] == []  # in business hours nothing goes out without an agent
    assert answer["suggestions"] and answer["suggestions"][0]["intent"] == intent
    convs = (await (await client.get("/api/conversations?status=escalated", headers=AUTH)).json())["conversations"]
    assert [c["external_id"] for c in convs] == ["c-1"]


async def test_bargain_beyond_the_ceiling_escalates(client: Client, sign: Signer) -> None:
    _, small = await post_event(client, sign, message_event("便宜5块吧", conversation_id="c-s"))
    _, big = await post_event(client, sign, message_event("便宜五十块吧", conversation_id="c-b"))
    assert (small["intent"], small["action"]) == ("bargain", "suggested")
    assert (big["intent"], big["action"]) == ("bargain", "escalated")
    assert "50" in big["reason"]
    assert big["suggestions"][0]["intent"] == "handoff"


async def test_auto_send_never_repeats_the_same_text_in_a_row(client: Client, sign: Signer,
                                                               receiver: Receiver) -> None:
    texts = []
    for _ in range(3):
        _, answer = await post_event(client, sign, message_event("在吗"))
        assert answer["action"] in ("auto_sent", "suggested")
        texts += [s["text"] for s in answer["sent"]]
    assert texts, "greeting is an auto-send intent in the bundled library"
    assert all(a != b for a, b in zip(texts, texts[1:], strict=False))


async def test_failing_receiver_retries_with_backoff_then_dead_letters(client: Client, sign: Signer,
                                                                        clock: FrozenClock,
                                                                        receiver: Receiver) -> None:
    receiver.fail_always = True
    _, answer = await post_event(client, sign, message_event("能便宜点吗"))
    await client.post(f"/api/suggestions/{answer['suggestions'][0]['id']}/accept", headers=AUTH)
    worker = client.app[outbox_key]
    seen_attempts = []
    for _ in range(200):
        await worker.run_once()
        (row,) = await outbox_rows(client)
        if not seen_attempts or seen_attempts[-1] != row["attempts"]:
            seen_attempts.append(row["attempts"])
        if row["status"] == "dead":
            break
        clock.advance(0.3)  # less than the shortest backoff: retries wait, they do not spin
        await asyncio.sleep(0.01)
    assert row["status"] == "dead" and row["attempts"] == 3
    assert seen_attempts[-3:] == [1, 2, 3]
    assert "503" in row["last_error"]
    dead = await outbox_rows(client, "dead")
    assert [d["reply_id"] for d in dead] == [row["reply_id"]]
    assert receiver.received == []


async def test_api_needs_the_token(client: Client) -> None:
    for path in ("/api/conversations", "/api/outbox", "/api/conversations/1"):
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.post("/api/suggestions/1/accept")).status == 401
    assert (await client.get("/healthz")).status == 200
