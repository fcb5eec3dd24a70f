"""Web: map domain errors to clear JSON 4xx answers; never leak internals in a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from csbot import errors
from csbot.console.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Forbidden,
    Identity,
    csrf_ok,
    identify_session,
    identify_token,
)
from csbot.keys import clock_key, db_key, identity_key, settings_key
from csbot.replies import TemplateProblem

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS: dict[type[errors.CsbotError], int] = {
    errors.InvalidSignature: 401,
    errors.Unauthorized: 401,
    errors.NotFound: 404,
    errors.Conflict: 409,
    Forbidden: 403,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
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
        response = error_body(STATUS.get(type(exc), 400), exc.error, exc.detail)
        if request.content.exception() is not None:
            response.force_close()  # a body that broke while read (bad gzip): drop the connection, do not drain it
        return response
    except TemplateProblem as exc:
        # A library template failed (sandbox refusal, limit, undefined variable): the shop's to fix, so the
        # full problem goes to the log; the caller learns which template, not its source or our internals.
        log.error("library error on %s %s: %s", request.method, request.path, exc)
        template = str(exc).split(":", 1)[0]
        return error_body(500, "library_error", f"template {template} cannot be rendered: run csbot lint")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        name = exc.reason.lower().replace(" ", "_")
        return error_body(exc.status, name, exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}"
                          else exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_body(500, "internal_error", "see the server log")


def needs_auth(path: str, *, metrics_public: bool) -> bool:
    """Everything under /api and /console needs a login or a token; /healthz and the signed webhooks
    (their signature is the authentication) never do; /metrics as configured."""
    if path == "/metrics":
        return not metrics_public
    if path.startswith("/api/"):
        return True
    if path == "/console" or path.startswith("/console/"):
        return path != "/console/login" and not path.startswith("/console/static/")
    return False


async def identify(request: web.Request) -> Identity | None:
    """A bearer token (CSBOT_API_TOKEN or a user's API token) wins over the session cookie."""
    settings = request.app[settings_key]
    header = request.headers.get("Authorization", "")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not header and not cookie:
        return None
    async with request.app[db_key].read() as tx:
        if header:
            offered = header.removeprefix("Bearer ").strip()
            return await identify_token(tx, offered, configured=settings.api_token) if offered else None
        assert cookie is not None
        return await identify_session(tx, cookie, now=request.app[clock_key].now())


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[settings_key]
    if request.method == "POST" and request.content_type in FORM_TYPES and not request.path.startswith("/webhooks/"):
        # Parse a form once, here: aiohttp raises UnicodeDecodeError or InvalidHeader on a broken one, which
        # must be a 400, not a 500 in whichever handler reads it first. The result is cached for the handler.
        try:
            await request.post()
        except (ValueError, HttpProcessingError) as exc:  # UnicodeDecodeError; a multipart part's bad header
            raise errors.MalformedEvent("body", f"not a valid {request.content_type} form: "
                                                f"{type(exc).__name__}") from None
    if not needs_auth(request.path, metrics_public=settings.console.metrics_public):
        return await handler(request)
    identity = await identify(request)
    if identity is None:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("Accept", "")
        if wants_page and request.path.startswith("/console"):
            raise web.HTTPFound(f"/console/login?next={quote(request.path_qs, safe='')}")
        raise errors.Unauthorized("log in at /console/login, or send Authorization: Bearer <token>")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        offered = request.headers.get(CSRF_HEADER)
        if offered is None and request.content_type in FORM_TYPES:
            field = (await request.post()).get(CSRF_FIELD)  # cached: the handler can read the form again
            offered = field if isinstance(field, str) else None
        if not csrf_ok(identity, offered):
            raise Forbidden("missing or wrong CSRF token: reload the console")
    request[identity_key] = identity
    return await handler(request)


class AccessLogger(AbstractAccessLogger):
    """One line per request without the query string: Chatwoot's `?token=` (and WeCom's signed query) must not
    reach the log, which aiohttp's default format (the whole request line) would write."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %d %.3fs", request.remote, request.method, request.path, response.status, time)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
