"""Web: inbound webhooks, `POST /webhooks/{channel}`. Check size and signature (the channel's connector)
before reading meaning into anything; then accept the event exactly once."""

from __future__ import annotations

import logging

from aiohttp import web

from csbot.errors import NotFound, PayloadTooLarge
from csbot.ingest.accept import accept
from csbot.ingest.connectors.base import Connector, HttpRequest
from csbot.ingest.connectors.wecom import WeComConnector
from csbot.keys import clock_key, connectors_key, db_key, deps_key, outbox_key, settings_key
from csbot.web.middlewares import json_response

log = logging.getLogger(__name__)


async def read_body(request: web.Request, limit: int) -> bytes:
    # Refuse on the declared length before reading a byte; a chunked body is cut off by the
    # application's client_max_size while it is read.
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge({"limit_bytes": limit})
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge({"limit_bytes": limit}) from None


def _connector(request: web.Request, channel: str) -> Connector:
    connectors = request.app[connectors_key]
    connector = connectors.get(channel)
    if connector is None:
        raise NotFound(f"no channel {channel[:40]!r} (configured: {', '.join(sorted(connectors))})")
    return connector


async def channel_webhook(request: web.Request) -> web.Response:
    connector = _connector(request, request.match_info["channel"])
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
        if not result.duplicate:  # a reply, a note or a handoff may be waiting in the outbox
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
