"""Web: map domain errors to clear JSON 4xx answers; never leak internals in a 500."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from csbot import errors
from csbot.keys import settings_key

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS: dict[type[errors.CsbotError], int] = {
    errors.InvalidSignature: 401,
    errors.Unauthorized: 401,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.MalformedEvent: 400,
    errors.UnknownEventType: 422,
    errors.UnknownShop: 422,
}

json_response = partial(web.json_response, dumps=partial(json.dumps, ensure_ascii=False))


def error_body(status: int, error: str, detail: Any) -> web.Response:
    return json_response({"error": error, "detail": detail}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.CsbotError as exc:
        return error_body(STATUS.get(type(exc), 400), exc.error, exc.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        name = exc.reason.lower().replace(" ", "_")
        return error_body(exc.status, name, exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}"
                          else exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_body(500, "internal_error", "see the server log")


@web.middleware
async def api_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`/api/*` needs `Authorization: Bearer <CSBOT_API_TOKEN>`; without a configured token the API is closed."""
    if request.path.startswith("/api/"):
        token = request.app[settings_key].api_token
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(offered.encode(), token.encode()):
            raise errors.Unauthorized("send Authorization: Bearer <CSBOT_API_TOKEN>")
    return await handler(request)
