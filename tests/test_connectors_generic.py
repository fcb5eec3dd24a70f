"""The generic channel as a connector: GitHub-style signatures, per-shop secrets and rotation, per-shop
outbound URLs, and the channel options in csbot.toml with credentials from the environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.config import ConfigError, ShopSettings, load_settings
from csbot.errors import InvalidSignature
from csbot.ingest.signatures import sign_hub, verify_hub
from csbot.keys import db_key, outbox_key
from csbot.library import LibrarySet
from csbot.match import Matcher
from csbot.store import repo
from tests.conftest import SECRET, Receiver, Signer, make_settings, message_event

Client = TestClient[Any, Any]

# GitHub's documented example ("Validating webhook deliveries").
HUB_SECRET = "It's a Secret to Everybody"
HUB_BODY = b"Hello, World!"
HUB_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
NEW_HUB_SECRET = "rotated-secret-2026"
SHOP_SECRET = "whsec_" + "c2hvcC1vd24tc2VjcmV0LWtleS0xMjM0NTY="


def test_github_vector() -> None:
    assert sign_hub(HUB_SECRET, HUB_BODY) == HUB_SIG
    assert verify_hub((NEW_HUB_SECRET, HUB_SECRET), {"X-Hub-Signature-256": HUB_SIG}, HUB_BODY) == HUB_SECRET
    for headers in ({}, {"X-Hub-Signature-256": "sha1=abc"}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}):
        with pytest.raises(InvalidSignature):
            verify_hub((HUB_SECRET,), headers, HUB_BODY)


@pytest.fixture
async def client(database_url: str, receiver: Receiver, clock: FrozenClock, knowledge: tuple[LibrarySet, Matcher],
                 aiohttp_client: Callable[..., Any]) -> Client:
    settings = make_settings(database_url, receiver.url)
    hub = ShopSettings("hub", "GitHub风格小店", channels={
        "generic": {"signature": "github", "secrets": [NEW_HUB_SECRET, HUB_SECRET]}})
    own = ShopSettings("own", "自有密钥小店", channels={"generic": {"secrets": [SHOP_SECRET]}})
    settings = replace(settings, shops={**settings.shops, "hub": hub, "own": own})
    libraries, matcher = knowledge
    return await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))


async def stored(client: Client, shop: str, conversation: str = "c-1") -> int:
    async with client.app[db_key].read() as tx:
        return await repo.count_messages(tx, shop_id=shop, conversation_external_id=conversation)


def hub_post(event: dict[str, Any], secret: str = HUB_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event, ensure_ascii=False).encode()
    return body, {"X-Hub-Signature-256": sign_hub(secret, body), "X-GitHub-Delivery": "d-" + event["message"]["id"],
                  "content-type": "application/json"}


async def test_github_style_signatures_with_two_secrets_during_rotation(client: Client, receiver: Receiver) -> None:
    for i, secret in enumerate((HUB_SECRET, NEW_HUB_SECRET)):
        body, headers = hub_post(message_event("能便宜点吗", shop="hub", message_id=f"m-{i}"), secret)
        resp = await client.post("/webhooks/generic", data=body, headers=headers)
        assert resp.status == 200 and (await resp.json())["intent"] == "bargain"
    body, headers = hub_post(message_event("在吗", shop="hub", message_id="m-x"), "retired-long-ago")
    assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 401
    assert await stored(client, "hub") == 2


async def test_a_shop_secret_speaks_only_for_its_shop(client: Client, sign: Signer) -> None:
    body, headers = hub_post(message_event("在吗", shop="demo", message_id="m-1"))
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_signature"
    body, headers = sign(message_event("在吗", shop="demo"), secret=SHOP_SECRET)
    assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 401
    body, headers = sign(message_event("在吗", shop="own"), secret=SHOP_SECRET)
    assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200
    body, headers = sign(message_event("在吗", shop="own", conversation_id="c-2"), secret=SECRET)  # the global one
    assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200
    assert (await stored(client, "demo"), await stored(client, "own"), await stored(client, "own", "c-2")) == (0, 1, 1)


async def test_unknown_channel_is_404(client: Client, sign: Signer) -> None:
    body, headers = sign(message_event("在吗"))
    resp = await client.post("/webhooks/telegram", data=body, headers=headers)
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    assert (await client.get("/webhooks/wecom")).status == 404  # no shop uses WeCom


async def test_replies_of_a_github_style_shop_go_to_its_own_url_signed_its_way(
        database_url: str, clock: FrozenClock, knowledge: tuple[LibrarySet, Matcher],
        aiohttp_server: Callable[..., Any], aiohttp_client: Callable[..., Any]) -> None:
    got: list[tuple[str, dict[str, Any]]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        verify_hub((NEW_HUB_SECRET,), request.headers, body)
        got.append((request.headers["X-GitHub-Delivery"], json.loads(body)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/in", handle)
    server: TestServer = await aiohttp_server(app)
    shop = {"generic": {"signature": "github", "secrets": [NEW_HUB_SECRET, HUB_SECRET],
                        "outbound_url": str(server.make_url("/in"))}}
    settings = make_settings(database_url, None, channels=shop)
    libraries, matcher = knowledge
    client = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    body, headers = hub_post(message_event("在吗", shop="demo", message_id="m-1"))
    answer = await (await client.post("/webhooks/generic", data=body, headers=headers)).json()
    assert answer["action"] == "auto_sent"
    worker = client.app[outbox_key]
    for _ in range(50):
        await worker.run_once()
        if got:
            break
    ((delivery, reply),) = got
    assert delivery == reply["reply_id"] == answer["sent"][0]["reply_id"]


# --- configuration ----------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "csbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_channel_options_with_credentials_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, """
[shops.demo.channels.chatwoot]
base_url = "https://chat.example.com"
account_id = 3

[shops.demo.channels.wecom]
corp_id = "wx5823bf96d3bd56c7"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
open_kfid = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"
""")
    env = {"CSBOT_SHOP_DEMO_CHATWOOT_API_TOKEN": "tok", "CSBOT_SHOP_DEMO_CHATWOOT_WEBHOOK_SECRETS": "new old",
           "CSBOT_SHOP_DEMO_WECOM_TOKEN": "QDG6eK", "CSBOT_SHOP_DEMO_WECOM_SECRET": "s"}
    channels = load_settings(path, env).shops["demo"].channels
    assert channels["chatwoot"] == {"base_url": "https://chat.example.com", "account_id": 3, "api_token": "tok",
                                    "webhook_secrets": "new old"}
    assert channels["wecom"]["token"] == "QDG6eK" and channels["wecom"]["secret"] == "s"


@pytest.mark.parametrize(("toml", "key"), [
    ('[shops.demo.channels.telegram]\ntoken = "x"', "shops.demo.channels.telegram"),
    ('[shops.demo.channels.generic]\nsignature = "md5"', "shops.demo.channels.generic.signature"),
    ('[shops.demo.channels.generic]\nsecrets = ["not-whsec"]', "shops.demo.channels.generic.secrets"),
    ('[shops.demo.channels.generic]\nsecret = "typo"', "shops.demo.channels.generic.secret"),
    ('[shops.demo.channels.chatwoot]\nbase_url = "https://c.example"\naccount_id = 1',
     "shops.demo.channels.chatwoot.webhook_secrets"),
    ('[shops.demo.channels.chatwoot]\nbase_url = "ftp://c"\naccount_id = 1\nurl_token = "t"',
     "shops.demo.channels.chatwoot.base_url"),
    ('[shops.demo.channels.wecom]\ncorp_id = "wx"\ntoken = "t"\nencoding_aes_key = "short"',
     "shops.demo.channels.wecom.encoding_aes_key"),
    ('[shops.demo.channels.wecom]\ntoken = "t"\nencoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"',
     "shops.demo.channels.wecom.corp_id"),
])
def test_bad_channel_options_name_the_key(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, toml), {})
    assert refused.value.key == key
