"""Web: the restock waiting list. An agent puts a buyer on a SKU's list (the console's W key); the SKUs to
propose come from the conversation's messages and orders. Token or console login."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csbot.aftersales import repo_restock
from csbot.errors import MalformedEvent
from csbot.ingest.events import MAX_ID_CHARS, parse_json
from csbot.keys import clock_key, db_key, identity_key
from csbot.web.middlewares import json_response


def _conversation_id(raw: Any, name: str = "conversation_id") -> int:
    if isinstance(raw, str) and raw.isdigit() and len(raw) <= 18:
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise MalformedEvent(name, "required: the conversation's id (a positive whole number)")
    return raw


async def add_to_waitlist(request: web.Request) -> web.Response:
    """POST /api/restock/waitlist {"conversation_id", "sku_id"}: 201 for a new entry, 200 if already waiting."""
    body = await request.read()
    data = parse_json(body) if body.strip() else {}
    conversation_id = _conversation_id(data.get("conversation_id"))
    sku = data.get("sku_id")
    if isinstance(sku, int) and not isinstance(sku, bool):
        sku = str(sku)
    if not isinstance(sku, str) or not sku.strip() or len(sku) > MAX_ID_CHARS:
        raise MalformedEvent("sku_id", f"required: the platform's SKU id, at most {MAX_ID_CHARS} characters")
    async with request.app[db_key].transaction() as tx:
        view, created = await repo_restock.add_wait(tx, conversation_id=conversation_id, sku_external_id=sku.strip(),
                                                    by=request[identity_key].name, now=request.app[clock_key].now())
        body_json = repo_restock.wait_json(view) | {"created": created}
    return json_response(body_json, status=201 if created else 200)


async def list_waitlist(request: web.Request) -> web.Response:
    """GET /api/restock/waitlist?shop=&sku_id=&conversation_id=: entries, newest first, with their notice."""
    raw_conv = request.query.get("conversation_id")
    async with request.app[db_key].read() as tx:
        views = await repo_restock.list_waits(
            tx, shop_id=request.query.get("shop") or None, sku_external_id=request.query.get("sku_id") or None,
            conversation_id=None if not raw_conv else _conversation_id(raw_conv))
        items = [repo_restock.wait_json(v) for v in views]
    return json_response({"waits": items})


async def proposals(request: web.Request) -> web.Response:
    """GET /api/restock/proposals?conversation_id=: out-of-stock SKUs that fit the conversation, best first."""
    conversation_id = _conversation_id(request.query.get("conversation_id"))
    async with request.app[db_key].read() as tx:
        found = await repo_restock.proposals(tx, conversation_id)
    return json_response({"conversation_id": conversation_id, "skus": [
        {"sku_id": p.sku_id, "title": p.title, "available": p.available, "score": p.score} for p in found]})
