"""The console's live queue: a signed webhook reaches open consoles over the WebSocket; queue and actions."""

from __future__ import annotations

import asyncio

from csbot.clock import FrozenClock
from tests.conftest import Receiver, Signer, message_event
from tests.console_support import Client, add_user, login


async def test_webhook_is_pushed_to_open_consoles_and_queue_lists_it(client: Client, sign: Signer,
                                                                      clock: FrozenClock) -> None:
    await add_user(client, "xiaomei")
    await login(client, "xiaomei")
    async with client.ws_connect("/console/ws") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        body, headers = sign(message_event("亲 在吗？能便宜点吗", nick="小王",
                                           sent_at=clock.now().isoformat()))
        assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200
        assert await ws.receive_json(timeout=5) == {"type": "changed", "source": "webhook"}
    queue = await (await client.get("/api/queue")).json()
    (conv,) = queue["conversations"]
    assert conv["buyer"]["nick"] == "小王" and conv["status"] == "waiting"
    assert conv["last_intent"] == "bargain" and conv["last_score"] > 0
    assert [m["text"] for m in conv["last_messages"]] == ["亲 在吗？能便宜点吗"]
    assert queue["now"] == clock.now().isoformat()


async def test_cross_site_websocket_is_refused(client: Client) -> None:
    await add_user(client, "xiaomei")
    await login(client, "xiaomei")
    resp = await client.get("/console/ws", headers={"Origin": "https://evil.example", "Connection": "Upgrade",
                                                     "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 403


async def test_free_reply_escalation_remarks_and_queue_order(client: Client, sign: Signer, receiver: Receiver,
                                                            clock: FrozenClock) -> None:
    await add_user(client, "xiaomei")
    csrf = await login(client, "xiaomei")
    h = {"X-CSRF-Token": csrf}
    for conv_id, text in (("c-old", "什么时候发货"), ("c-new", "质量太差了我要投诉")):
        body, headers = sign(message_event(text, conversation_id=conv_id, sent_at=clock.now().isoformat()))
        assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200
        clock.advance(5)
    queue = (await (await client.get("/api/queue")).json())["conversations"]
    assert [c["external_id"] for c in queue] == ["c-new", "c-old"]  # newest buyer message first
    old = queue[1]["id"]
    resp = await client.post(f"/api/conversations/{old}/reply", json={"text": "今天下午就发哦"}, headers=h)
    assert resp.status == 200
    async with asyncio.timeout(10):  # the escalated complaint may have been acknowledged automatically too
        while "今天下午就发哦" not in [r["text"] for r in receiver.received]:
            receiver.arrived.clear()
            await receiver.arrived.wait()
    resp = await client.post(f"/api/conversations/{old}/escalate", json={"reason": "砍价超过上限"}, headers=h)
    body = await resp.json()
    assert body["status"] == "escalated" and body["remark"]["by"] == "xiaomei"
    assert body["remark"]["line"].startswith("砍价超过上限（xiaomei 2026-11-23")
    escalated = (await (await client.get("/api/queue?status=escalated")).json())["conversations"]
    assert [c["id"] for c in escalated] == [old]
    resp = await client.post(f"/api/conversations/{old}/remarks", json={"text": "顺丰发货"}, headers=h)
    assert resp.status == 200
    panel = await (await client.get(f"/api/conversations/{old}/orders")).json()
    assert [r["text"] for r in panel["remarks"]] == ["砍价超过上限", "顺丰发货"] and panel["orders"] == []
