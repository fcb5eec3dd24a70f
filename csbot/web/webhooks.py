"""Web: inbound webhooks, `POST /webhooks/{channel}`. Check size and signature (the channel's connector)
before reading meaning into anything; then accept the event exactly once."""

from __future__ import annotations

import logging

from aiohttp import web

from csbot.errors import MalformedEvent, NotFound, PayloadTooLarge, UnsupportedMediaType
from csbot.ingest.accept import accept
from csbot.ingest.connectors.base import Connector, HttpRequest
from csbot.ingest.connectors.wecom import WeComConnector
from csbot.keys import clock_key, connectors_key, db_key, deps_key, outbox_key, settings_key
from csbot.web.middlewares import json_response

log = logging.getLogger(__name__)


# What a webhook body may be declared as. Undeclared and application/octet-stream pass (some senders do
# not label their bodies; the signature, not the label, vouches for them); forms, multipart, HTML and the
# like are refused, so a browser form posted cross-site never reaches a parser.
JSON_TYPES = ("application/json", "text/json")
XML_TYPES = ("text/xml", "application/xml")
UNLABELLED = ("", "application/octet-stream")
# gzip and deflate are inflated by aiohttp in bounded pieces while we read, so the size cap below applies
# to the inflated body and a compression bomb is cut off at 1 MiB; other encodings are refused.
ENCODINGS = ("", "identity", "gzip", "x-gzip", "deflate")


def check_media(request: web.Request, channel: str) -> None:
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ENCODINGS:
        raise UnsupportedMediaType("content-encoding", f"{encoding[:40]!r} is not accepted: send identity, gzip "
                                                       "or deflate")
    kind = request.content_type.lower() if "Content-Type" in request.headers else ""
    accepted = XML_TYPES if channel == "wecom" else JSON_TYPES
    if kind in UNLABELLED or kind in accepted or (channel != "wecom" and kind.endswith("+json")):
        return
    raise UnsupportedMediaType("content-type", f"{kind[:80]!r} is not accepted here: send {accepted[0]}")


async def read_body(request: web.Request, limit: int) -> bytes:
    # Refuse on the declared length before reading a byte; a chunked (or compressed) body is cut off by
    # the application's client_max_size while it is read, counting inflated bytes.
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge({"limit_bytes": limit})
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge({"limit_bytes": limit}) from None
    except web.RequestPayloadError as exc:  # a truncated chunk, or gzip/deflate data that does not inflate
        raise MalformedEvent("body", f"could not read the body: {str(exc).strip()[:120]}") from None


def _connector(request: web.Request, channel: str) -> Connector:
    connectors = request.app[connectors_key]
    connector = connectors.get(channel)
    if connector is None:
        raise NotFound(f"no channel {channel[:40]!r} (configured: {', '.join(sorted(connectors))})")
    return connector


async def channel_webhook(request: web.Request) -> web.Response:
    connector = _connector(request, request.match_info["channel"])
    check_media(request, connector.name)
    body = await read_body(request, request.app[settings_key].max_body_bytes)
    received = await connector.receive(HttpRequest(request.method, request.query, request.headers, body),
                                       request.app[clock_key].now())
    response = None
    if received.event is None:
        log.info("%s delivery %s ignored: %s", connector.name, received.delivery_id, received.ignored)
    else:
        result = await accept(request.app[db_key], request.app[deps_key], channel=connector.name,
                              delivery_id=received.delivery_id, event=received.event)
        response = result.response
        if result.enqueued:  # a reply, a note or a handoff is waiting in the outbox
            request.app[outbox_key].wake()
    out = connector.respond(received, response)
    if out.json is not None:
        return json_response(out.json, status=out.status)
    return web.Response(text=out.text, status=out.status)


async def wecom_url_check(request: web.Request) -> web.Response:
    """WeCom's callback URL check: GET with msg_signature, timestamp, nonce, echostr."""
    connector = _connector(request, "wecom")
    assert isinstance(connector, WeComConnector)
    return web.Response(text=connector.check_url(request.query))
