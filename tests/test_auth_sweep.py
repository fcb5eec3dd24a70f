"""Every route, from the app's own router: the public ones are exactly the listed ones, every other one refuses a
caller without credentials; replays outside the window are refused; secrets are compared in constant time and
never reach a log line or an error body."""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import csbot
from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.config import decode_webhook_secret
from csbot.ingest.connectors.chatwoot import sign as chatwoot_sign
from csbot.ingest.connectors.wecom import encrypt, msg_signature
from csbot.ingest.signatures import sign as standard_sign
from csbot.library import LibrarySet
from csbot.match import Matcher
from csbot.web.middlewares import AccessLogger, needs_auth
from tests.conftest import SECRET, TOKEN, Signer, make_settings, message_event

Client = TestClient[Any, Any]

CHATWOOT_SECRET = "cw-sweep-secret-7f3a9c"
CHATWOOT_URL_TOKEN = "cw-url-token-b81e44d0"
WECOM_TOKEN = "wecomSweepToken9"
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_CORP = "wx5823bf96d3bd56c7"
CHANNELS = {
    "chatwoot": {"base_url": "http://127.0.0.1:9", "account_id": 1, "webhook_secrets": [CHATWOOT_SECRET],
                 "url_token": CHATWOOT_URL_TOKEN},
    "wecom": {"corp_id": WECOM_CORP, "token": WECOM_TOKEN, "encoding_aes_key": WECOM_AES_KEY},
}

# (method, route as registered) that answer without credentials. A new route lands here only on purpose.
PUBLIC = {
    ("GET", "/healthz"),
    ("POST", "/webhooks/{channel}"),  # the signature is the authentication
    ("GET", "/webhooks/wecom"),  # WeCom's signed URL check
    ("GET", "/metrics"),  # [console] metrics_public = true (the default)
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("GET", "/console/static"),
}
PLACEHOLDERS = {"id": "1", "shop": "demo", "buyer": "b-1", "channel": "generic"}


@pytest.fixture
async def client(database_url: str, clock: FrozenClock, knowledge: tuple[LibrarySet, Matcher],
                 aiohttp_client: Callable[..., Any]) -> Client:
    libraries, matcher = knowledge
    settings = make_settings(database_url, None, channels=CHANNELS)
    app = make_app(settings, clock=clock, libraries=libraries, matcher=matcher)
    # The access logger csbot serve uses, so its lines are part of what the leak test reads.
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)
    return await aiohttp_client(server)


def routes(app: web.Application) -> list[tuple[str, str, str]]:
    """(method, route as registered, a concrete path for it) for every route of the app."""
    found = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        canonical = route.resource.canonical if route.resource is not None else ""
        path = re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS[m.group(1)], canonical)
        if isinstance(route.resource, web.StaticResource):
            path += "/console.js"
        found.append((route.method, canonical, path))
    return found


async def test_public_routes_are_exactly_the_listed_ones(client: Client) -> None:
    table = routes(client.app)
    assert len(table) > 30
    public = {(method, canonical) for method, canonical, path in table if not needs_auth(path, metrics_public=True)}
    assert public == PUBLIC, "a route without authentication was added or removed: review it, then update PUBLIC"


async def test_every_other_route_refuses_a_caller_without_credentials(client: Client) -> None:
    guarded = [(m, c, p) for m, c, p in routes(client.app) if (m, c) not in PUBLIC]
    assert guarded
    anonymous: list[dict[str, str]] = [
        {}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic YXBpOnRlc3Q="},
        {"Authorization": "Bearer "}, {"Cookie": "csbot_session=forged-session-cookie"},
    ]
    for method, _, path in guarded:
        for headers in anonymous:
            resp = await client.request(method, path, headers=headers, allow_redirects=False, json={})
            assert resp.status in (401, 403), (method, path, headers, resp.status)
            assert (await resp.json())["error"] in ("unauthorized", "forbidden")
        # A browser asking for a console page is sent to the login form instead.
        page = await client.request(method, path, headers={"Accept": "text/html"}, allow_redirects=False)
        if method == "GET" and path.startswith("/console"):
            assert page.status == 302 and page.headers["Location"].startswith("/console/login?next="), path
        else:
            assert page.status in (401, 403), (method, path)
    # and the token does open them (the sweep is not passing because every route is broken)
    ok = await client.get("/api/conversations", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200


async def test_metrics_needs_a_login_when_not_public(database_url: str, clock: FrozenClock,
                                                     knowledge: tuple[LibrarySet, Matcher],
                                                     aiohttp_client: Callable[..., Any]) -> None:
    libraries, matcher = knowledge
    settings = make_settings(database_url)
    settings = replace(settings, console=replace(settings.console, metrics_public=False))
    client: Client = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200


def chatwoot_event(clock: FrozenClock, message_id: int) -> dict[str, Any]:
    return {"event": "message_created", "id": message_id, "message_type": "incoming", "content": "在吗",
            "account": {"id": 1}, "conversation": {"id": 7}, "sender": {"id": 3, "type": "contact", "name": "小王"},
            "created_at": clock.now().isoformat()}


async def test_replays_outside_the_window_are_refused_on_every_signed_channel(client: Client, clock: FrozenClock,
                                                                             sign: Signer) -> None:
    body, headers = sign(message_event("在吗", message_id="m-replay"))
    cw_body = json.dumps(chatwoot_event(clock, 901)).encode()
    ts = str(int(clock.now().timestamp()))
    cw_headers = {"X-Chatwoot-Signature": chatwoot_sign(CHATWOOT_SECRET, ts, cw_body), "X-Chatwoot-Timestamp": ts,
                  "content-type": "application/json"}
    inner = (f"<xml><ToUserName>{WECOM_CORP}</ToUserName><FromUserName>wmBuyer</FromUserName>"
             f"<CreateTime>{ts}</CreateTime><MsgType>text</MsgType><Content>在吗</Content><MsgId>77</MsgId></xml>")
    ciphertext = encrypt(WECOM_AES_KEY, inner, WECOM_CORP)
    wecom_query = {"msg_signature": msg_signature(WECOM_TOKEN, ts, "n1", ciphertext), "timestamp": ts, "nonce": "n1"}
    wecom_body = f"<xml><Encrypt>{ciphertext}</Encrypt></xml>".encode()

    async def deliver() -> list[int]:
        return [
            (await client.post("/webhooks/generic", data=body, headers=headers)).status,
            (await client.post("/webhooks/chatwoot", data=cw_body, headers=cw_headers)).status,
            (await client.post("/webhooks/wecom", params=wecom_query, data=wecom_body,
                               headers={"content-type": "text/xml"})).status,
        ]

    assert await deliver() == [200, 200, 200]
    clock.advance(timedelta(seconds=301))  # the tolerance is 300 s
    assert await deliver() == [401, 401, 401]


def _compared_names(node: ast.expr) -> set[str]:
    # Class names (ApiToken.user_id == User.id joins tables) are not values; variables and attributes are.
    return {n.id.lower() for n in ast.walk(node) if isinstance(n, ast.Name) and not n.id[:1].isupper()} | {
        n.attr.lower() for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def test_secrets_are_never_compared_with_equality_operators() -> None:
    """`==` on a secret leaks through timing how much of a guess was right: hmac.compare_digest only."""
    secretish = re.compile(r"secret|token|signature|csrf|password|digest|expected|offered")
    offenders = []
    for path in sorted(Path(csbot.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                sides = [node.left, *node.comparators]
                if any(isinstance(side, ast.Constant) for side in sides):
                    continue  # comparing with a literal (a kind, a scheme name) is not comparing a secret
                names = set().union(*(_compared_names(side) for side in sides))
                # Looking a token up by its SHA-256 (an indexed SQL equality) is fine: timing can tell about
                # the hash of a guess, never about the token.
                if any(secretish.search(name) for name in names) and not any("hash" in name for name in names):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


async def test_no_secret_or_token_in_logs_or_error_bodies(client: Client, clock: FrozenClock, sign: Signer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    guessed_token = "Bearer sk-guessed-9d8c7b6a5f4e3d2c1b0a"
    event = message_event("在吗", message_id="m-leak")
    body, headers = sign(event)
    expected_signature = standard_sign(SECRET, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    forged = headers | {"webhook-signature": "v1," + "A" * 43 + "="}
    cw_body = json.dumps(chatwoot_event(clock, 902)).encode()
    ts = str(int(clock.now().timestamp()))
    answers = [
        await client.get("/api/conversations", headers={"Authorization": guessed_token}),
        await client.post("/api/suggestions/1/accept", headers={"Authorization": guessed_token}),
        await client.post("/webhooks/generic", data=body, headers=forged),
        await client.post("/webhooks/generic", data=body, headers=sign(event, secret="whsec_" + "QUJD" * 8)[1]),
        await client.post("/webhooks/generic", data=body,
                          headers=sign(event, timestamp=int(clock.now().timestamp()) - 3600)[1]),
        await client.post("/webhooks/chatwoot", data=cw_body, headers={
            "X-Chatwoot-Signature": chatwoot_sign("wrong-secret", ts, cw_body), "X-Chatwoot-Timestamp": ts}),
        await client.post(f"/webhooks/chatwoot?token={CHATWOOT_URL_TOKEN}x", data=cw_body),
        await client.get("/webhooks/wecom", params={"msg_signature": "0" * 40, "timestamp": ts, "nonce": "n",
                                                    "echostr": "QUJD"}),
        await client.post("/console/login", data={"name": "nobody", "password": "hunter2-password-guess",
                                                  "csrf_token": "forged"}),
    ]
    # a good delivery with the URL token, so its (query-string) secret certainly passed through the access log
    assert (await client.post(f"/webhooks/chatwoot?token={CHATWOOT_URL_TOKEN}", data=cw_body)).status == 200
    statuses = [a.status for a in answers]
    assert statuses == [401, 401, 401, 401, 401, 401, 401, 401, 403]
    texts = [await a.text() for a in answers]
    logged = "\n".join(r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "") for r in caplog.records)
    assert "/webhooks/chatwoot" in logged  # the access log did write those requests
    secrets_ = [SECRET, SECRET.removeprefix("whsec_"), decode_webhook_secret(SECRET).hex(), TOKEN,
                guessed_token.removeprefix("Bearer "), expected_signature, expected_signature.removeprefix("v1,"),
                CHATWOOT_SECRET, CHATWOOT_URL_TOKEN, WECOM_TOKEN, WECOM_AES_KEY, "hunter2-password-guess"]
    for secret in secrets_:
        assert all(secret not in text for text in texts), secret
        assert secret not in logged, secret
