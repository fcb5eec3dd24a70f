"""Web: inbound webhooks. Check size and signature before reading meaning into anything."""

from __future__ import annotations

from aiohttp import web

from csbot.errors import InvalidSignature, PayloadTooLarge
from csbot.ingest.accept import accept
from csbot.ingest.events import parse_event, parse_json
from csbot.ingest.signatures import verify
from csbot.keys import clock_key, db_key, deps_key, outbox_key, settings_key
from csbot.web.middlewares import json_response


async def read_body(request: web.Request, limit: int) -> bytes:
    # Refuse on the declared length before reading a byte; a chunked body is cut off by the
    # application's client_max_size while it is read.
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge({"limit_bytes": limit})
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge({"limit_bytes": limit}) from None


async def generic_webhook(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    body = await read_body(request, settings.max_body_bytes)
    if not settings.webhook_secret:
        raise InvalidSignature("no webhook secret configured (CSBOT_WEBHOOK_SECRET): nothing can be verified")
    signed = verify((settings.webhook_secret,), request.headers, body, now=request.app[clock_key].now(),
                    tolerance=settings.timestamp_tolerance)
    event = parse_event(parse_json(body))
    result = await accept(request.app[db_key], request.app[deps_key], channel="generic", delivery_id=signed.id,
                          event=event)
    if result.sent_anything:
        request.app[outbox_key].wake()
    return json_response(result.response)
