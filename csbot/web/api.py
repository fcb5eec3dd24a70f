"""Web: the agents' JSON API (conversations, suggestions, outbox, blacklist). Token or console login."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csbot.aftersales import repo_reviews
from csbot.errors import Conflict, MalformedEvent, NotFound, UnknownShop
from csbot.ingest.events import parse_json
from csbot.keys import clock_key, db_key, identity_key, outbox_key, settings_key
from csbot.pipeline import accept_suggestion
from csbot.reminders import repo as reminders_repo
from csbot.store import repo
from csbot.store.models import Buyer, Conversation, Message, OutboxItem, Suggestion
from csbot.web.middlewares import json_response


def _agent(request: web.Request) -> str:
    """Who decided: the logged-in agent, or the API token's user ("api" for CSBOT_API_TOKEN)."""
    return request[identity_key].name


def _int_param(request: web.Request, name: str, default: int, hi: int) -> int:
    raw = request.query.get(name, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= hi:
        raise MalformedEvent(name, f"must be a whole number from 1 to {hi}")
    return int(raw)


def _path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no such {name}: {raw[:40]}")
    return int(raw)


async def _json_body(request: web.Request) -> dict[str, Any]:
    body = await request.read()
    return parse_json(body) if body.strip() else {}


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def conversation_json(conv: Conversation, buyer: Buyer) -> dict[str, Any]:
    return {
        "id": conv.id, "shop": conv.shop_id, "external_id": conv.external_id, "channel": conv.channel,
        "status": conv.status, "last_buyer_at": _iso(conv.last_buyer_at), "last_intent": conv.last_intent,
        "last_score": conv.last_score,
        "buyer": {"id": buyer.external_id, "nick": buyer.nick, "blacklisted": buyer.blacklisted_at is not None},
    }


def message_json(m: Message) -> dict[str, Any]:
    return {"id": m.id, "external_id": m.external_id, "direction": m.direction, "author": m.author,
            "text": m.text, "sent_at": _iso(m.sent_at), "intent": m.intent, "score": m.score, "action": m.action}


def suggestion_json(s: Suggestion) -> dict[str, Any]:
    return {"id": s.id, "message_id": s.message_id, "rank": s.rank, "intent": s.intent, "score": s.score,
            "trigger": s.trigger, "template": s.template, "text": s.text, "status": s.status,
            "final_text": s.final_text, "reason": s.reason}


def outbox_json(o: OutboxItem) -> dict[str, Any]:
    return {"id": o.id, "reply_id": o.reply_id, "shop": o.shop_id, "status": o.status, "attempts": o.attempts,
            "next_attempt_at": _iso(o.next_attempt_at), "last_error": o.last_error, "payload": o.payload,
            "created_at": _iso(o.created_at), "delivered_at": _iso(o.delivered_at)}


async def list_conversations(request: web.Request) -> web.Response:
    async with request.app[db_key].read() as tx:
        rows = await repo.list_conversations(
            tx, shop_id=request.query.get("shop"), status=request.query.get("status"),
            limit=_int_param(request, "limit", 50, 500),
            # a review's reply is queued from a conversation row of its own: no chat with the buyer
            exclude_channels=(repo_reviews.REVIEW_CHANNEL,),
        )
    return json_response({"conversations": [conversation_json(c, b) for c, b in rows]})


async def get_conversation(request: web.Request) -> web.Response:
    conv_id = _path_id(request)
    async with request.app[db_key].read() as tx:
        pair = await repo.conversation_with_buyer(tx, conv_id)
        if pair is None:
            raise NotFound(f"no conversation {conv_id}")
        messages = await repo.messages_of(tx, conv_id)
        pending = await repo.pending_suggestions(tx, conv_id)
        follow_ups = await reminders_repo.list_reminders(tx, conversation_id=conv_id, status="pending")
    return json_response(conversation_json(*pair) | {
        "messages": [message_json(m) for m in messages],
        "suggestions": [suggestion_json(s) for s in pending],
        # e.g. an after-sales case: due_at is the 48-hour resolve deadline
        "follow_ups": [{"kind": f.reminder.kind, "due_at": _iso(f.reminder.due_at)} for f in follow_ups],
    })


async def _pending_suggestion(request: web.Request, tx: repo.Tx) -> Suggestion:
    suggestion_id = _path_id(request)
    suggestion = await repo.suggestion_for_update(tx, suggestion_id)
    if suggestion is None:
        raise NotFound(f"no suggestion {suggestion_id}")
    if suggestion.status != "pending":
        raise Conflict({"suggestion": suggestion_id, "status": suggestion.status})
    return suggestion


async def accept(request: web.Request) -> web.Response:
    data = await _json_body(request)
    text = data.get("text")
    if text is not None and (not isinstance(text, str) or not text.strip() or len(text) > 2000):
        raise MalformedEvent("text", "optional edited reply: a non-empty string of at most 2000 characters")
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        suggestion = await _pending_suggestion(request, tx)
        reply_id = await accept_suggestion(tx, suggestion, text=text, agent=_agent(request), now=now)
        body = suggestion_json(suggestion) | {"reply_id": reply_id}
    request.app[outbox_key].wake()
    return json_response(body)


async def reject(request: web.Request) -> web.Response:
    data = await _json_body(request)
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise MalformedEvent("reason", "a string of at most 500 characters")
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        suggestion = await _pending_suggestion(request, tx)
        suggestion.status, suggestion.reason = "rejected", reason or None
        suggestion.decided_by, suggestion.decided_at = _agent(request), now
        body = suggestion_json(suggestion)
    return json_response(body)


async def list_outbox(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in ("pending", "sending", "delivered", "dead"):
        raise MalformedEvent("status", "one of pending, sending, delivered, dead")
    async with request.app[db_key].read() as tx:
        items = await repo.outbox_items(tx, status=status, limit=_int_param(request, "limit", 100, 1000))
        depth = await repo.outbox_depth(tx)
    return json_response({"items": [outbox_json(o) for o in items], "depth": depth})


async def blacklist(request: web.Request) -> web.Response:
    shop, buyer_id = request.match_info["shop"], request.match_info["buyer"]
    if request.app[settings_key].shop(shop) is None:
        raise UnknownShop({"shop": shop[:64]})
    remove = request.method == "DELETE"
    reason = None
    if not remove:
        reason = (await _json_body(request)).get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            raise MalformedEvent("reason", "required: why the buyer is blacklisted (at most 500 characters)")
    now = request.app[clock_key].now()
    async with request.app[db_key].transaction() as tx:
        buyer = await repo.set_blacklist(tx, shop_id=shop, external_id=buyer_id, reason=reason, by=_agent(request),
                                         now=now)
        body = {"shop": shop, "buyer": buyer.external_id, "blacklisted": buyer.blacklisted_at is not None,
                "reason": buyer.blacklist_reason, "by": buyer.blacklisted_by, "at": _iso(buyer.blacklisted_at)}
    return json_response(body)
