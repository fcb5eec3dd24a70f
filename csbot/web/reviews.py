"""Web: buyers' reviews and their reply drafts. Every reply is approved by an agent (platforms police review
replies); the approved one goes out through the outbox. Token or console login."""

from __future__ import annotations

from aiohttp import web

from csbot.aftersales import repo_reviews
from csbot.console.views import _boot, _identity, _page
from csbot.errors import MalformedEvent, NotFound
from csbot.ingest.events import parse_json
from csbot.keys import clock_key, db_key, deps_key, identity_key, outbox_key
from csbot.web.middlewares import json_response

STATUSES = ("pending", "sent", "rejected")
MAX_REPLY = 1000  # platforms cap a review reply at a few hundred characters; this is a sanity bound


def _review_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no such review: {raw[:40]}")
    return int(raw)


async def list_reviews(request: web.Request) -> web.Response:
    """GET /api/reviews?shop=&status=pending|sent|rejected&limit=: reviews with their reply drafts, newest first."""
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise MalformedEvent("status", f"one of {', '.join(STATUSES)}")
    limit = request.query.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 500:
        raise MalformedEvent("limit", "must be a whole number from 1 to 500")
    async with request.app[db_key].read() as tx:
        views = await repo_reviews.list_reviews(tx, shop_id=request.query.get("shop") or None, status=status,
                                                limit=int(limit))
        items = [repo_reviews.review_json(v) for v in views]
    return json_response({"reviews": items})


async def reviews_page(request: web.Request) -> web.Response:
    """GET /console/reviews: reviews with their reply drafts, to publish or decline (reviews.js uses the API)."""
    boot = _boot(request)
    libraries = request.app[deps_key].libraries
    locale = boot["lang"] if boot["lang"] in libraries.libraries else next(iter(libraries.libraries))
    topics = {topic.id: topic.label for topic in libraries.libraries[locale].review.values()}
    return _page(request, "reviews.html", boot=boot | {"statuses": list(STATUSES), "topics": topics},
                 me=_identity(request))


async def reply(request: web.Request) -> web.Response:
    """POST /api/reviews/{id}/reply {"text"?}: publish the draft, or the agent's edited text."""
    body = await request.read()
    data = parse_json(body) if body.strip() else {}
    text = data.get("text")
    if text is not None and (not isinstance(text, str) or not text.strip() or len(text) > MAX_REPLY):
        raise MalformedEvent("text", f"a non-empty string of at most {MAX_REPLY} characters")
    async with request.app[db_key].transaction() as tx:
        view = await repo_reviews.approve(tx, _review_id(request), text=None if text is None else text.strip(),
                                          agent=request[identity_key].name, now=request.app[clock_key].now())
        out = repo_reviews.review_json(view)
    request.app[outbox_key].wake()
    return json_response(out)


async def reject(request: web.Request) -> web.Response:
    """POST /api/reviews/{id}/reject {"reason"}: no reply for this review."""
    body = await request.read()
    data = parse_json(body) if body.strip() else {}
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise MalformedEvent("reason", "a string of at most 500 characters")
    async with request.app[db_key].transaction() as tx:
        view = await repo_reviews.reject(tx, _review_id(request), reason=reason.strip(),
                                         agent=request[identity_key].name, now=request.app[clock_key].now())
        out = repo_reviews.review_json(view)
    return json_response(out)
