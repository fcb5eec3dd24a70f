"""Hostile and broken input at the public routes: compressed bombs, foreign encodings and content types, deep
JSON, broken forms, and a property-based sweep (hypothesis) of arbitrary bodies and headers at every route that
answers without credentials: never a 500, never a row left behind by a refused request."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import string
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.ingest.connectors.chatwoot import sign as chatwoot_sign
from csbot.ingest.events import MAX_JSON_DEPTH
from csbot.ingest.signatures import sign_hub, signed_headers
from csbot.keys import db_key
from csbot.library import LibrarySet
from csbot.match import Matcher
from csbot.store.models import Base
from csbot.web.middlewares import needs_auth
from tests.conftest import MONDAY_10AM, SECRET, Signer, make_settings, message_event

Client = TestClient[Any, Any]

CHATWOOT_SECRET = "cw-hostile-secret"
HUB_SECRET = "hub-hostile-secret"
CHANNELS = {
    "chatwoot": {"base_url": "http://127.0.0.1:9", "account_id": 1, "webhook_secrets": [CHATWOOT_SECRET]},
    "wecom": {"corp_id": "wx5823bf96d3bd56c7", "token": "QDG6eK",
              "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"},
}


async def row_counts(client: Client) -> dict[str, int]:
    tables = Base.metadata.sorted_tables
    query = select(*[select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables])
    async with client.app[db_key].read() as tx:
        return dict((await tx.execute(query)).one()._mapping)


async def post_raw(client: Client, raw: bytes, clock: FrozenClock, *, webhook_id: str,
                   extra: dict[str, str] | None = None, signed_over: bytes | None = None) -> tuple[int, Any]:
    headers = signed_headers(SECRET, webhook_id, int(clock.now().timestamp()), raw if signed_over is None
                             else signed_over) | (extra or {})
    resp = await client.post("/webhooks/generic", data=io.BytesIO(raw), headers=headers)
    text = await resp.text()
    return resp.status, json.loads(text) if text.startswith("{") else text


async def test_gzip_and_deflate_bodies_are_inflated_and_bombs_refused(client: Client, clock: FrozenClock) -> None:
    event = json.dumps(message_event("在吗", message_id="m-gz")).encode()
    status, answer = await post_raw(client, gzip.compress(event), clock, webhook_id="msg_gz",
                                    extra={"Content-Encoding": "gzip"}, signed_over=event)
    assert status == 200 and answer["message_id"] == "m-gz"
    event = json.dumps(message_event("在吗", message_id="m-deflate")).encode()
    status, answer = await post_raw(client, zlib.compress(event), clock, webhook_id="msg_deflate",
                                    extra={"Content-Encoding": "deflate"}, signed_over=event)
    assert status == 200 and answer["message_id"] == "m-deflate"
    before = await row_counts(client)
    # 50 KB on the wire, 64 MiB inflated: refused at 1 MiB of inflated bytes, never held whole in memory
    bomb = gzip.compress(b'{"type": "message.created", "pad": "' + b"0" * (64 * 1024 * 1024) + b'"}', 9)
    assert len(bomb) < 100_000
    status, answer = await post_raw(client, bomb, clock, webhook_id="msg_bomb", extra={"Content-Encoding": "gzip"})
    assert (status, answer["error"], answer["detail"]) == (413, "payload_too_large", {"limit_bytes": 1024 * 1024})
    status, answer = await post_raw(client, zlib.compress(b"[" * (8 * 1024 * 1024)), clock, webhook_id="msg_bomb2",
                                    extra={"Content-Encoding": "deflate"})
    assert status == 413
    status, answer = await post_raw(client, b"\x1f\x8b not gzip at all", clock, webhook_id="msg_badgz",
                                    extra={"Content-Encoding": "gzip"})
    assert (status, answer["error"], answer["detail"]["field"]) == (400, "malformed_event", "body")
    assert await row_counts(client) == before


@pytest.mark.parametrize(("header", "value", "field"), [
    ("Content-Encoding", "compress", "content-encoding"),
    ("Content-Encoding", "gzip, identity", "content-encoding"),
    ("Content-Type", "application/x-www-form-urlencoded", "content-type"),
    ("Content-Type", "multipart/form-data; boundary=x", "content-type"),
    ("Content-Type", "text/html", "content-type"),
    ("Content-Type", "text/xml", "content-type"),
])
async def test_foreign_encodings_and_content_types_are_415_naming_the_header(
        client: Client, clock: FrozenClock, header: str, value: str, field: str) -> None:
    raw = json.dumps(message_event("在吗")).encode()
    status, answer = await post_raw(client, raw, clock, webhook_id="msg_media", extra={header: value})
    assert (status, answer["error"], answer["detail"]["field"]) == (415, "unsupported_media_type", field)
    assert value.split(";")[0].split(",")[0] in answer["detail"]["problem"]
    assert await row_counts(client) == await row_counts(client) and (await row_counts(client))["messages"] == 0


async def test_json_labels_and_unlabelled_bodies_are_taken(client: Client, clock: FrozenClock) -> None:
    for i, content_type in enumerate(["application/json; charset=utf-8", "application/cloudevents+json",
                                      "application/octet-stream", "text/json"]):
        raw = json.dumps(message_event("在吗", message_id=f"m-ct-{i}")).encode()
        status, _ = await post_raw(client, raw, clock, webhook_id=f"msg_ct_{i}", extra={"Content-Type": content_type})
        assert status == 200, content_type


def nested(depth: int) -> Any:
    """`depth` lists inside one another."""
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


async def test_deep_and_huge_json_is_refused(client: Client, clock: FrozenClock) -> None:
    ok = message_event("在吗", message_id="m-deep-ok") | {"extra": nested(MAX_JSON_DEPTH - 1)}
    status, _ = await post_raw(client, json.dumps(ok).encode(), clock, webhook_id="msg_deep_ok")
    assert status == 200
    for i, raw in enumerate([
        json.dumps(message_event("在吗") | {"extra": nested(MAX_JSON_DEPTH)}).encode(),
        b'{"a": ' * 5000 + b"1" + b"}" * 5000,
        b'{"type": "message.created", "n": ' + b"9" * 5000 + b"}",  # an integer too long to convert
    ]):
        status, answer = await post_raw(client, raw, clock, webhook_id=f"msg_deep_{i}")
        assert (status, answer["error"], answer["detail"]["field"]) == (400, "malformed_event", "body"), answer
    huge = json.dumps(message_event("在吗") | {"pad": ["x" * 1000] * 1100}).encode()
    status, answer = await post_raw(client, huge, clock, webhook_id="msg_huge")
    assert (status, answer["error"]) == (413, "payload_too_large")


async def test_broken_forms_are_400_not_500(client: Client) -> None:
    for body, content_type in [(b"\xff\xfe=\xff", "application/x-www-form-urlencoded"),
                               (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
                               (b"--x\r\nbroken", "multipart/form-data")]:
        resp = await client.post("/console/login", data=body, headers={"Content-Type": content_type})
        assert resp.status == 400, (content_type, await resp.text())
        assert (await resp.json())["detail"]["field"] == "body"


# --- the property: arbitrary requests at every public route ------------------------------------------------

PLACEHOLDERS = {"channel": ["generic", "chatwoot", "wecom", "nope"]}
HEADER_NAMES = ["webhook-id", "webhook-timestamp", "webhook-signature", "Content-Type", "Content-Encoding",
                "X-Chatwoot-Signature", "X-Chatwoot-Timestamp", "X-Hub-Signature-256", "X-GitHub-Delivery",
                "Authorization", "Cookie", "Accept", "X-CSRF-Token", "Origin"]
HEADER_TEXT = st.text(alphabet=string.printable.strip("\r\n\x0b\x0c") + "中é", max_size=60).map(str.strip)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def public_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, concrete path) for every route that answers without credentials, from the router itself."""
    found = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD":
            continue
        paths = [canonical]
        for name, values in PLACEHOLDERS.items():
            paths = [p.replace("{" + name + "}", v) for p in paths for v in values] if "{" + name + "}" in canonical \
                else paths
        if isinstance(route.resource, web.StaticResource):
            paths = [canonical + "/console.js", canonical + "/../../csbot.db", canonical + "/%2e%2e/app.py"]
        found += [(route.method, p) for p in paths if not needs_auth(p, metrics_public=True)]
    return found


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A message or order event with some fields replaced by arbitrary JSON."""
    event: dict[str, Any] = draw(st.sampled_from([
        message_event("在吗 能便宜点吗", message_id="m-h"),
        {"type": "order.created", "shop": "demo", "conversation_id": "c-1",
         "order": {"id": "o-h", "buyer": {"id": "b-1", "nick": "小王"}, "amount": "199.00",
                   "items": [{"title": "围巾", "qty": 1}], "created_at": "2026-11-23T10:00:00+08:00"}},
        {"type": "order.paid", "shop": "demo", "order": {"id": "o-h", "at": "2026-11-23T10:40:00+08:00"}},
    ]))
    event = json.loads(json.dumps(event))
    for _ in range(draw(st.integers(0, 3))):
        target = event
        path = draw(st.lists(st.sampled_from(["type", "shop", "conversation_id", "buyer", "message", "order", "id",
                                              "text", "nick", "sent_at", "amount", "items", "qty", "at"]),
                             min_size=1, max_size=3))
        for key in path[:-1]:
            nxt = target.get(key) if isinstance(target, dict) else None
            if not isinstance(nxt, dict):
                break
            target = nxt
        if isinstance(target, dict):
            target[path[-1]] = draw(JSON)
    return event


@st.composite
def requests(draw: st.DrawFn, routes: list[tuple[str, str]]) -> tuple[str, str, dict[str, str], bytes, str]:
    method, path = draw(st.sampled_from(routes))
    body_kind = draw(st.sampled_from(["event", "json", "bytes", "empty"]))
    if body_kind == "event":
        body = json.dumps(draw(events()), ensure_ascii=draw(st.booleans())).encode()
    elif body_kind == "json":
        body = json.dumps(draw(JSON)).encode()
    elif body_kind == "bytes":
        body = draw(st.binary(max_size=300))
    else:
        body = b""
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_TEXT, max_size=5))
    signing = draw(st.sampled_from(["none", "standard", "chatwoot", "hub"]))
    return method, path, headers, body, signing


def sign_for(signing: str, body: bytes, headers: dict[str, str], n: int) -> dict[str, str]:
    ts = int(MONDAY_10AM.timestamp())
    if signing == "standard":
        return headers | signed_headers(SECRET, f"msg_h{n}", ts, body)
    if signing == "chatwoot":
        return headers | {"X-Chatwoot-Signature": chatwoot_sign(CHATWOOT_SECRET, str(ts), body),
                          "X-Chatwoot-Timestamp": str(ts)}
    if signing == "hub":
        return headers | {"X-Hub-Signature-256": sign_hub(HUB_SECRET, body)}
    return headers


def test_arbitrary_requests_at_public_routes_never_500_and_leave_no_half_event(
        tmp_path: Path, knowledge: tuple[LibrarySet, Matcher]) -> None:
    """One app, one event loop, driven by hypothesis example after example (the @given function takes no
    pytest fixture, so hypothesis' function-scoped-fixture health check has nothing to object to: the app is
    shared on purpose, and each example checks its own effect on the database)."""
    libraries, matcher = knowledge
    settings_ = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'csbot.db'}", None, channels=CHANNELS | {
        "generic": {"signature": "github", "secrets": [HUB_SECRET]}})
    clock = FrozenClock(MONDAY_10AM)

    async def start() -> Client:
        client: Client = TestClient(TestServer(make_app(settings_, clock=clock, libraries=libraries, matcher=matcher)))
        await client.start_server()
        return client

    with asyncio.Runner() as runner:
        client = runner.run(start())
        routes = public_routes(client.app)
        assert {"/healthz", "/metrics", "/console/login", "/webhooks/generic", "/webhooks/chatwoot",
                "/webhooks/wecom", "/webhooks/nope", "/console/static/console.js"} <= {p for _, p in routes}
        seen: dict[int, int] = {}

        async def one(method: str, path: str, headers: dict[str, str], body: bytes, signing: str) -> None:
            before = await row_counts(client)
            n = sum(seen.values())
            resp = await client.request(method, path, headers=sign_for(signing, body, headers, n), data=body,
                                        allow_redirects=False)
            await resp.read()
            seen[resp.status] = seen.get(resp.status, 0) + 1
            assert resp.status < 500, (method, path, resp.status, await resp.text())
            after = await row_counts(client)
            if resp.status >= 300 or not path.startswith("/webhooks/"):
                assert after == before, (method, path, resp.status)

        @settings(max_examples=120, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(request=requests(routes))
        def example(request: tuple[str, str, dict[str, str], bytes, str]) -> None:
            runner.run(one(*request))

        try:
            example()
        finally:
            runner.run(client.close())
    # the sweep reached the pipeline and the refusals alike (it is not all 401s)
    assert seen.get(200, 0) > 10 and sum(v for k, v in seen.items() if 400 <= k < 500) > 50, seen


async def test_signed_but_mangled_events_store_nothing(client: Client, sign: Signer) -> None:
    """The deterministic half of the property above: a correctly signed event with a bad field is a 4xx with
    the field named, and no table gains a row."""
    before = await row_counts(client)
    for mangle in [lambda e: e["message"].update(id=["m"]), lambda e: e["buyer"].update(nick="x" * 201),
                   lambda e: e.update(conversation_id="c" * 129), lambda e: e["message"].update(sent_at=12)]:
        event = message_event("在吗")
        mangle(event)
        body, headers = sign(event)
        resp = await client.post("/webhooks/generic", data=body, headers=headers)
        assert resp.status == 400 and "field" in (await resp.json())["detail"]
    assert await row_counts(client) == before
