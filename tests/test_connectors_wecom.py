"""WeCom (企业微信 / 微信客服): the official WXBizMsgCrypt vectors, then callbacks end to end through the
pipeline to a fake WeCom API (gettoken, kf/send_msg, kf/service_state/trans)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.errors import InvalidSignature, MalformedEvent
from csbot.ingest.connectors.wecom import decrypt, encrypt, msg_signature, parse_xml
from csbot.keys import db_key, outbox_key
from csbot.library import LibrarySet
from csbot.match import Matcher
from csbot.store import repo
from tests.conftest import make_settings, run_outbox_until_dead

Client = TestClient[Any, Any]

# WeCom's published sample (WXBizMsgCrypt, every language): see tests/fixtures/README.md.
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
URL_CHECK = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
             "nonce": "263014780",
             "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}
MESSAGE_QUERY = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
                 "nonce": "1372623149"}
SAMPLE_POST = (Path(__file__).parent / "fixtures" / "wecom" / "sample_post.xml").read_bytes()
SAMPLE_ENCRYPT = parse_xml(SAMPLE_POST, "body")["Encrypt"]
OPEN_KFID = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"
CORP_SECRET = "kf-secret"


# --- the official vectors ------------------------------------------------------------------------------


def test_url_check_vector() -> None:
    q = URL_CHECK
    assert msg_signature(TOKEN, q["timestamp"], q["nonce"], q["echostr"]) == q["msg_signature"]
    assert decrypt(AES_KEY, q["echostr"], CORP_ID) == "1616140317555161061"


def test_message_vector() -> None:
    q = MESSAGE_QUERY
    assert msg_signature(TOKEN, q["timestamp"], q["nonce"], SAMPLE_ENCRYPT) == q["msg_signature"]
    msg = parse_xml(decrypt(AES_KEY, SAMPLE_ENCRYPT, CORP_ID), "Encrypt")
    assert (msg["MsgType"], msg["Content"], msg["MsgId"]) == ("text", "hello", "4561255354251345929")
    assert (msg["ToUserName"], msg["FromUserName"]) == (CORP_ID, "mycreate")


def test_encrypt_round_trips_and_pads_to_32_byte_blocks() -> None:
    for text in ("", "a", "x" * 11, "亲 在吗？" * 40):
        ciphertext = encrypt(AES_KEY, text, CORP_ID)
        assert len(base64.b64decode(ciphertext)) % 32 == 0
        assert decrypt(AES_KEY, ciphertext, CORP_ID) == text


@pytest.mark.parametrize(("ciphertext", "receive_id"), [
    (SAMPLE_ENCRYPT, "wx_another_corp"),  # sent to another corp
    (SAMPLE_ENCRYPT[:-8] + "AAAAAAA=", CORP_ID),  # tampered
    ("not base64!", CORP_ID),
    ("QUJD", CORP_ID),  # not whole blocks
])
def test_refused_ciphertexts(ciphertext: str, receive_id: str) -> None:
    with pytest.raises(InvalidSignature):
        decrypt(AES_KEY, ciphertext, receive_id)


def test_the_xml_parser_refuses_entities() -> None:
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>'
    with pytest.raises(MalformedEvent) as refused:
        parse_xml(bomb, "body")
    assert "entities" in refused.value.detail["problem"]


# --- end to end ------------------------------------------------------------------------------------------


@dataclass
class FakeWeCom:
    """WeCom's API as far as csbot uses it. Tokens expire after `expires_in` (by the test's clock)."""

    clock: FrozenClock
    url: str = ""
    token_fetches: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    fail_always: bool = False
    revoke_token: bool = False  # the next send finds its token expired (errcode 42001)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _tokens: dict[str, datetime] = field(default_factory=dict)

    async def wait_for(self, count: int, box: str = "sent") -> list[dict[str, Any]]:
        async with asyncio.timeout(10):
            while len(getattr(self, box)) < count:
                self.arrived.clear()
                await self.arrived.wait()
        result: list[dict[str, Any]] = getattr(self, box)
        return result

    async def gettoken(self, request: web.Request) -> web.Response:
        if (request.query.get("corpid"), request.query.get("corpsecret")) != (CORP_ID, CORP_SECRET):
            return web.json_response({"errcode": 40013, "errmsg": "invalid corpid"})
        self.token_fetches += 1
        token = f"T{self.token_fetches}-{uuid.uuid4().hex[:6]}"
        self._tokens[token] = self.clock.now() + timedelta(seconds=7200)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    def _token_ok(self, request: web.Request) -> bool:
        expires = self._tokens.get(request.query.get("access_token", ""))
        if self.revoke_token:
            self.revoke_token = False
            return False
        return expires is not None and self.clock.now() < expires

    async def send_msg(self, request: web.Request) -> web.Response:
        if self.fail_always:
            return web.Response(status=503)
        if not self._token_ok(request):
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        self.sent.append(await request.json())
        self.arrived.set()
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": "MSG"})

    async def trans(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        self.handoffs.append(await request.json())
        self.arrived.set()
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@pytest.fixture
async def wecom(aiohttp_server: Callable[..., Any], clock: FrozenClock) -> FakeWeCom:
    fake = FakeWeCom(clock)
    app = web.Application()
    app.router.add_get("/cgi-bin/gettoken", fake.gettoken)
    app.router.add_post("/cgi-bin/kf/send_msg", fake.send_msg)
    app.router.add_post("/cgi-bin/kf/service_state/trans", fake.trans)
    server: TestServer = await aiohttp_server(app)
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def client(database_url: str, wecom: FakeWeCom, clock: FrozenClock, knowledge: tuple[LibrarySet, Matcher],
                 aiohttp_client: Callable[..., Any]) -> Client:
    options = {"corp_id": CORP_ID, "token": TOKEN, "encoding_aes_key": AES_KEY, "secret": CORP_SECRET,
               "open_kfid": OPEN_KFID, "api_base": wecom.url}
    settings = make_settings(database_url, None, channels={"wecom": options})
    libraries, matcher = knowledge
    return await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))


def callback(clock: FrozenClock, *, content: str, sender: str = "wmBuyer01", msg_id: str | None = None,
             token: str = TOKEN, receive_id: str = CORP_ID) -> tuple[str, bytes]:
    """A callback as WeCom would send it now: the message encrypted and signed, the query string."""
    ts = str(int(clock.now().timestamp()))
    inner = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
             f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
             f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or uuid.uuid4().int % 10**19}</MsgId></xml>")
    ciphertext = encrypt(AES_KEY, inner, receive_id)
    nonce = uuid.uuid4().hex[:10]
    query = urlencode({"msg_signature": msg_signature(token, ts, nonce, ciphertext), "timestamp": ts, "nonce": nonce})
    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{ciphertext}]]></Encrypt></xml>"
    return query, body.encode()


async def post(client: Client, query: str, body: bytes) -> ClientResponse:
    return await client.post(f"/webhooks/wecom?{query}", data=body, headers={"content-type": "text/xml"})


async def stored(client: Client, conversation: str) -> int:
    async with client.app[db_key].read() as tx:
        return await repo.count_messages(tx, shop_id="demo", conversation_external_id=conversation)


async def test_url_check_answers_the_decrypted_echostr(client: Client) -> None:
    resp = await client.get(f"/webhooks/wecom?{urlencode(URL_CHECK)}")
    assert (resp.status, await resp.text()) == (200, "1616140317555161061")
    forged = URL_CHECK | {"msg_signature": "0" * 40}
    assert (await client.get(f"/webhooks/wecom?{urlencode(forged)}")).status == 401


async def test_the_official_sample_callback_is_answered_through_send_msg(client: Client, clock: FrozenClock,
                                                                        wecom: FakeWeCom) -> None:
    clock.set(datetime.fromtimestamp(1409659813, UTC))  # when WeCom signed the sample (a Tuesday, 20:10 in Shanghai)
    resp = await post(client, urlencode(MESSAGE_QUERY), SAMPLE_POST)
    assert (resp.status, await resp.text()) == (200, "")
    (sent,) = await wecom.wait_for(1)
    assert (sent["touser"], sent["open_kfid"], sent["msgtype"]) == ("mycreate", OPEN_KFID, "text")
    assert "小美" in sent["text"]["content"]  # the English greeting of the demo shop's agent
    assert len(sent["msgid"]) <= 32
    assert await stored(client, "mycreate") == 1
    # WeCom retries a callback it thinks went unanswered: the same MsgId is one message.
    assert (await post(client, urlencode(MESSAGE_QUERY), SAMPLE_POST)).status == 200
    assert await stored(client, "mycreate") == 1


async def test_our_own_message_echoed_back_is_ignored(client: Client, clock: FrozenClock) -> None:
    query, body = callback(clock, content="亲亲好，我是示例小店的客服小美", sender=OPEN_KFID)
    resp = await post(client, query, body)
    assert resp.status == 200
    assert await stored(client, OPEN_KFID) == 0


async def test_wrong_signature_key_or_corp_is_401_and_stores_nothing(client: Client, clock: FrozenClock) -> None:
    query, body = callback(clock, content="在吗", token="not-the-token")
    assert (await post(client, query, body)).status == 401
    query, body = callback(clock, content="在吗", receive_id="wx_another_corp")
    assert (await post(client, query, body)).status == 401
    query, body = callback(clock, content="在吗")
    assert (await post(client, query, body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[A"))).status == 401
    stale = clock.now() - timedelta(seconds=301)
    query, body = callback(FrozenClock(stale), content="在吗")
    assert (await post(client, query, body)).status == 401
    assert (await post(client, query.split("&")[0], body)).status == 401  # timestamp and nonce missing
    assert await stored(client, "wmBuyer01") == 0


async def test_the_access_token_is_cached_until_it_expires(client: Client, clock: FrozenClock,
                                                          wecom: FakeWeCom) -> None:
    for i, text in enumerate(["在吗", "hello"]):
        query, body = callback(clock, content=text, sender=f"wmBuyer{i}")
        assert (await post(client, query, body)).status == 200
    await wecom.wait_for(2)
    assert wecom.token_fetches == 1

    clock.advance(timedelta(hours=2))  # past expires_in: fetched again before the next send
    query, body = callback(clock, content="在吗", sender="wmBuyer9")
    assert (await post(client, query, body)).status == 200
    await wecom.wait_for(3)
    assert wecom.token_fetches == 2

    wecom.revoke_token = True  # revoked early (errcode 42001): dropped, fetched afresh on the retry
    query, body = callback(clock, content="hello", sender="wmBuyer10")
    assert (await post(client, query, body)).status == 200
    for _ in range(100):
        await client.app[outbox_key].run_once()
        if len(wecom.sent) == 4:
            break
        clock.advance(5)
        await asyncio.sleep(0.01)
    assert len(wecom.sent) == 4 and wecom.token_fetches == 3


async def test_escalation_hands_the_session_to_the_human_queue(client: Client, clock: FrozenClock,
                                                              wecom: FakeWeCom) -> None:
    query, body = callback(clock, content="转人工", sender="wmBuyer01")
    assert (await post(client, query, body)).status == 200
    (handoff,) = await wecom.wait_for(1, "handoffs")
    assert handoff == {"open_kfid": OPEN_KFID, "external_userid": "wmBuyer01", "service_state": 2}


async def test_wecom_outage_retries_then_dead_letters_without_losing_the_reply(client: Client, clock: FrozenClock,
                                                                              wecom: FakeWeCom) -> None:
    wecom.fail_always = True
    query, body = callback(clock, content="在吗", sender="wmBuyer01")
    assert (await post(client, query, body)).status == 200
    (row,) = await run_outbox_until_dead(client, clock)
    assert (row["status"], row["attempts"], row["payload"]["buyer_id"]) == ("dead", 3, "wmBuyer01")
    assert "503" in row["last_error"]
    assert wecom.sent == [] and json.dumps(row["payload"], ensure_ascii=False)
