"""Chatwoot Agent Bot end to end: replayed webhook fixtures -> pipeline -> a fake Chatwoot's received API calls.
The fake implements only the endpoints csbot calls; runs on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.ingest.connectors.chatwoot import sign
from csbot.keys import db_key
from csbot.library import LibrarySet
from csbot.match import Matcher
from csbot.store import repo
from tests.conftest import AUTH, make_settings, run_outbox_until_dead

Client = TestClient[Any, Any]
FIXTURES = Path(__file__).parent / "fixtures" / "chatwoot"
WEBHOOK_SECRET = "cw-bot-secret-2026"
OLD_SECRET = "cw-bot-secret-2025"
API_TOKEN = "cw-api-token"


def fixture(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data | changes


@dataclass
class FakeChatwoot:
    """Chatwoot's API as far as csbot uses it: create a message, toggle a conversation's status."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_always: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(10):
            while len(self.calls) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.calls

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("api_access_token") != API_TOKEN:
            return web.json_response({"error": "Invalid Access Token"}, status=401)
        if self.fail_always:
            return web.Response(status=503)
        self.calls.append({"path": request.path, "json": await request.json()})
        self.arrived.set()
        return web.json_response({"id": len(self.calls)})


@pytest.fixture
async def chatwoot(aiohttp_server: Callable[..., Any]) -> FakeChatwoot:
    fake = FakeChatwoot()
    app = web.Application()
    app.router.add_post("/api/v1/accounts/{account}/conversations/{conversation}/messages", fake.handle)
    app.router.add_post("/api/v1/accounts/{account}/conversations/{conversation}/toggle_status", fake.handle)
    server: TestServer = await aiohttp_server(app)
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def client(database_url: str, chatwoot: FakeChatwoot, clock: FrozenClock,
                 knowledge: tuple[LibrarySet, Matcher], aiohttp_client: Callable[..., Any]) -> Client:
    options = {"base_url": chatwoot.url, "account_id": 1, "api_token": API_TOKEN,
               "webhook_secrets": [WEBHOOK_SECRET, OLD_SECRET]}
    settings = make_settings(database_url, None, channels={"chatwoot": options})
    libraries, matcher = knowledge
    return await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))


def signed(event: dict[str, Any], clock: FrozenClock, *, secret: str = WEBHOOK_SECRET,
           timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event, ensure_ascii=False).encode()
    ts = str(int(clock.now().timestamp()) if timestamp is None else timestamp)
    return body, {"X-Chatwoot-Signature": sign(secret, ts, body), "X-Chatwoot-Timestamp": ts,
                  "X-Chatwoot-Delivery": f"dlv-{event.get('id')}-{time.monotonic_ns()}",
                  "content-type": "application/json"}


async def post(client: Client, clock: FrozenClock, event: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
    body, headers = signed(event, clock, **kw)
    resp = await client.post("/webhooks/chatwoot", data=body, headers=headers)
    return resp.status, await resp.json()


async def stored(client: Client, conversation: str = "10") -> int:
    async with client.app[db_key].read() as tx:
        return await repo.count_messages(tx, shop_id="demo", conversation_external_id=conversation)


async def test_incoming_message_is_answered_through_the_api_and_our_echo_is_ignored(
        client: Client, clock: FrozenClock, chatwoot: FakeChatwoot) -> None:
    status, answer = await post(client, clock, fixture("message_created_incoming.json"))
    assert status == 200
    assert (answer["conversation_id"], answer["message_id"], answer["action"]) == ("10", "118", "auto_sent")
    (call,) = await chatwoot.wait_for(1)
    assert call["path"] == "/api/v1/accounts/1/conversations/10/messages"
    assert call["json"] == {"content": answer["sent"][0]["text"], "message_type": "outgoing", "private": False}

    # Chatwoot stores our reply and sends it back to the bot as message_created: never answer ourselves.
    status, echo = await post(client, clock, fixture("message_created_outgoing_echo.json"))
    assert (status, echo) == (200, {"ignored": "outgoing message"})
    assert await stored(client) == 1
    await asyncio.sleep(0.1)
    assert len(chatwoot.calls) == 1


@pytest.mark.parametrize(("changes", "reason"), [
    ({"private": True}, "private note"),
    ({"message_type": "activity", "content": "Conversation was marked resolved by 客服A"}, "activity message"),
    ({"message_type": "template"}, "template message"),
    ({"sender": {"id": 1, "name": "客服A", "type": "user"}, "message_type": "incoming"}, "written by a user"),
    ({"event": "conversation_status_changed"}, "event conversation_status_changed"),
])
async def test_what_is_not_a_buyer_message_is_acknowledged_and_dropped(client: Client, clock: FrozenClock,
                                                                       changes: dict[str, Any], reason: str) -> None:
    status, answer = await post(client, clock, fixture("message_created_incoming.json", **changes))
    assert (status, answer) == (200, {"ignored": reason})
    assert await stored(client) == 0


async def test_suggest_mode_posts_a_private_note_and_the_agent_reply_goes_out(
        client: Client, clock: FrozenClock, chatwoot: FakeChatwoot) -> None:
    _, answer = await post(client, clock, fixture("message_created_incoming.json", id=120, content="能便宜点吗"))
    assert answer["action"] == "suggested" and answer["sent"] == []
    (note,) = await chatwoot.wait_for(1)
    assert note["json"] == {"content": answer["suggestions"][0]["text"], "message_type": "outgoing", "private": True}

    resp = await client.post(f"/api/suggestions/{answer['suggestions'][0]['id']}/accept", headers=AUTH,
                             json={"text": "亲，今天拍下给您少5元哦"})
    assert resp.status == 200
    calls = await chatwoot.wait_for(2)
    assert calls[1]["json"] == {"content": "亲，今天拍下给您少5元哦", "message_type": "outgoing", "private": False}


async def test_escalation_notes_the_suggestion_and_opens_the_conversation_for_humans(
        client: Client, clock: FrozenClock, chatwoot: FakeChatwoot) -> None:
    _, answer = await post(client, clock, fixture("message_created_incoming.json", id=121, content="转人工"))
    assert answer["action"] == "escalated"
    calls = await chatwoot.wait_for(2)
    assert sorted(c["path"].rsplit("/", 1)[1] for c in calls) == ["messages", "toggle_status"]
    assert next(c for c in calls if c["path"].endswith("toggle_status"))["json"] == {"status": "open"}
    assert next(c for c in calls if c["path"].endswith("messages"))["json"]["private"] is True


async def test_bad_signature_is_401_and_stores_nothing(client: Client, clock: FrozenClock) -> None:
    event = fixture("message_created_incoming.json")
    body, headers = signed(event, clock)
    cases = [
        {k: v for k, v in headers.items() if k != "X-Chatwoot-Signature"},
        headers | {"X-Chatwoot-Signature": "sha256=" + "0" * 64},
        signed(event, clock, secret="someone-else")[1],
        signed(event, clock, timestamp=int(clock.now().timestamp()) - 301)[1],
    ]
    for hdrs in cases:
        resp = await client.post("/webhooks/chatwoot", data=body, headers=hdrs)
        assert resp.status == 401 and (await resp.json())["error"] == "invalid_signature"
    tampered = body.replace("在吗".encode(), "在不".encode())
    assert (await client.post("/webhooks/chatwoot", data=tampered, headers=headers)).status == 401
    assert await stored(client) == 0


async def test_the_old_secret_still_works_during_rotation(client: Client, clock: FrozenClock) -> None:
    status, _ = await post(client, clock, fixture("message_created_incoming.json"), secret=OLD_SECRET)
    assert status == 200 and await stored(client) == 1


async def test_another_account_is_refused(client: Client, clock: FrozenClock) -> None:
    status, answer = await post(client, clock, fixture("message_created_incoming.json", account={"id": 2}))
    assert (status, answer["error"]) == (422, "unknown_shop")
    assert await stored(client) == 0


async def test_chatwoot_outage_retries_then_dead_letters_without_losing_the_reply(
        client: Client, clock: FrozenClock, chatwoot: FakeChatwoot) -> None:
    chatwoot.fail_always = True
    _, answer = await post(client, clock, fixture("message_created_incoming.json"))
    assert answer["action"] == "auto_sent"
    (row,) = await run_outbox_until_dead(client, clock)
    assert (row["status"], row["attempts"], row["payload"]["type"]) == ("dead", 3, "reply.created")
    assert row["payload"]["text"] == answer["sent"][0]["text"]
    assert "503" in row["last_error"]
    assert chatwoot.calls == []
