"""Several instances on one PostgreSQL database: a webhook handled by one reaches consoles on the other
(LISTEN/NOTIFY), once, and the listener comes back after its connection is killed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from sqlalchemy import text

from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.console.live import CHANNEL, LISTENER_NAME
from csbot.keys import db_key, hub_key
from csbot.library import LibrarySet
from csbot.match import Matcher
from tests.conftest import AUTH, Receiver, Signer, make_settings, message_event
from tests.console_support import Client, add_user, login

pytestmark = pytest.mark.postgresql

WEBHOOK = {"type": "changed", "source": "webhook"}


@pytest.fixture
async def pair(postgres_url: str, receiver: Receiver, clock: FrozenClock, knowledge: tuple[LibrarySet, Matcher],
               aiohttp_client: Callable[..., Any]) -> tuple[Client, Client]:
    """Two csbot instances (two servers, two pools) on the same database, as behind a load balancer."""
    libraries, matcher = knowledge
    settings = make_settings(postgres_url, receiver.url)
    a = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    b = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    await add_user(a, "xiaomei")
    return a, b


async def post_webhook(client: Client, sign: Signer, clock: FrozenClock, text_: str = "亲 在吗？能便宜点吗") -> None:
    body, headers = sign(message_event(text_, sent_at=clock.now().isoformat()))
    assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200


async def hello(ws: ClientWebSocketResponse) -> None:
    assert (await ws.receive_json(timeout=5))["type"] == "hello"


async def test_webhook_on_one_instance_reaches_consoles_on_both_once(pair: tuple[Client, Client], sign: Signer,
                                                                      clock: FrozenClock) -> None:
    a, b = pair
    await login(a, "xiaomei")
    await login(b, "xiaomei")
    async with a.ws_connect("/console/ws") as ws_a, b.ws_connect("/console/ws") as ws_b:
        await hello(ws_a)
        await hello(ws_b)
        await post_webhook(a, sign, clock)
        assert await ws_b.receive_json(timeout=5) == WEBHOOK  # B heard about A's webhook through PostgreSQL
        assert await ws_a.receive_json(timeout=5) == WEBHOOK  # A's own console, delivered in-process
        # An API write on B afterwards: A's own NOTIFY was sent before B's, and PostgreSQL delivers in commit
        # order, so had A not dropped its own NOTIFY, a second webhook event would arrive before this one.
        (conv,) = (await (await b.get("/api/queue", headers=AUTH)).json())["conversations"]
        resp = await b.post(f"/api/conversations/{conv['id']}/remarks", json={"text": "顺丰发货"}, headers=AUTH)
        assert resp.status == 200
        assert await ws_a.receive_json(timeout=5) == {"type": "changed", "source": "api"}
        assert await ws_b.receive_json(timeout=5) == {"type": "changed", "source": "api"}
    assert a.app[hub_key].relay is not None and b.app[hub_key].relay is not None
    assert a.app[hub_key].relay.instance != b.app[hub_key].relay.instance


async def test_listener_reconnects_after_its_backend_is_terminated(pair: tuple[Client, Client], sign: Signer,
                                                                  clock: FrozenClock) -> None:
    a, b = pair
    await login(b, "xiaomei")
    async with b.ws_connect("/console/ws") as ws_b:
        await hello(ws_b)
        async with a.app[db_key].transaction() as tx:
            killed = (await tx.execute(text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()"), {"name": LISTENER_NAME})).scalar()
        assert killed == 2  # both instances' listeners
        # B's listener comes back and tells its consoles to refetch what they may have missed meanwhile.
        assert await ws_b.receive_json(timeout=10) == {"type": "changed", "source": "resync"}
        await post_webhook(a, sign, clock)
        assert await ws_b.receive_json(timeout=5) == WEBHOOK
    relay = b.app[hub_key].relay
    assert relay is not None and relay.reconnects == 1


async def test_foreign_notifications_on_the_channel_are_ignored(pair: tuple[Client, Client], sign: Signer,
                                                                clock: FrozenClock) -> None:
    a, b = pair
    await login(b, "xiaomei")
    async with b.ws_connect("/console/ws") as ws_b:
        await hello(ws_b)
        async with a.app[db_key].transaction() as tx:
            for payload in ("not json", '{"event": "changed"}', '["changed"]'):
                await tx.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})
        await post_webhook(a, sign, clock)
        assert await ws_b.receive_json(timeout=5) == WEBHOOK  # the junk before it reached no console
