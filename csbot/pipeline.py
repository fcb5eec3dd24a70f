"""Pipeline: the stages in order — normalise -> match -> policy -> render -> outbox or suggestion.

`handle_message` runs inside the caller's transaction, so the buyer's message, the suggestions and
any auto-sent reply (outbox row) commit together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice
from typing import Any

from csbot.aftersales import repo as aftersales
from csbot.clock import Clock
from csbot.config import Settings, ShopSettings
from csbot.errors import UnknownShop
from csbot.ingest.events import MessageEvent
from csbot.library import LibrarySet
from csbot.match import PLEASANTRIES, Candidate, Matcher, Ranking
from csbot.normalize import Normalized, normalize
from csbot.policy import Context, Decision, Signals, decide
from csbot.reminders import followups
from csbot.replies import Renderer, Reply
from csbot.store import repo
from csbot.store.db import Tx
from csbot.store.models import Buyer, Conversation, Message, Suggestion

log = logging.getLogger(__name__)

MAX_SUGGESTIONS = 3
#: A message asking several questions gets one suggestion per question, up to this many.
MAX_PARTS = 5
# A channel's extra outbox payloads after a decision, e.g. Chatwoot's private note and handoff:
# (shop id, conversation external id, the answer) -> payloads. See Connector.after_decision.
DecisionHook = Callable[[str, str, dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class PipelineDeps:
    settings: Settings
    libraries: LibrarySet
    matcher: Matcher
    renderer: Renderer
    clock: Clock
    decision_hooks: Mapping[str, DecisionHook] = field(default_factory=dict)  # by channel


async def handle_message(tx: Tx, deps: PipelineDeps, event: MessageEvent, *, channel: str) -> dict[str, Any]:
    """Webhook message -> stored message, decision, suggestions and/or outbox rows; returns the answer."""
    shop = deps.settings.shop(event.shop)
    if shop is None:
        raise UnknownShop({"shop": event.shop, "known": sorted(deps.settings.shops)})
    now = deps.clock.now()
    # One statement each: the buyer and the conversation come back from their upserts (no re-read).
    buyer = await repo.upsert_buyer(tx, shop_id=shop.id, external_id=event.buyer.id, nick=event.buyer.nick, now=now)
    conv = await repo.upsert_conversation(
        tx, shop_id=shop.id, external_id=event.conversation_id, buyer_id=buyer.id, channel=channel, now=now
    )

    normalized = normalize(event.text)
    locale = normalized.lang if normalized.lang in deps.libraries.libraries else shop.locale
    parts = question_parts(deps, normalized)
    context = Context(
        blacklisted=buyer.blacklisted_at is not None,
        opted_out=buyer.opted_out_at is not None,
        offline_notice_for=conv.offline_notice_for,
    )
    ranking, signals = _act_on(deps, parts, shop, context, locale, normalized, now)
    top = ranking.top
    decision = decide(signals, shop, context, now)
    if decision.send:  # only an automatic message needs the rate-limit counts (from the DB: every instance's)
        to_buyer, by_shop = await repo.auto_send_counts(
            tx, shop_id=shop.id, buyer_id=buyer.id, now=now, buyer_hour_cap=shop.auto_send.max_per_buyer_per_hour,
            shop_minute_cap=shop.auto_send.max_per_shop_per_minute)
        context = replace(context, auto_sent_to_buyer=to_buyer, auto_sent_by_shop=by_shop)
        decision = decide(signals, shop, context, now)

    variables = variables_for(shop, buyer, locale, now)
    scores = {c.intent: c for c in ranking.candidates}
    suggest = decision.suggest
    if len(parts) > 1 and decision.action in ("suggested", "auto_sent"):  # not for an escalation or a blacklist
        # One suggestion per question, best first, with its part's own score and trigger; a question
        # answered automatically (the opt-out confirmation) is not suggested again.
        scores = {r.top.intent: r.top for r in parts if r.top is not None}
        suggest = tuple(intent for intent in scores if intent not in decision.send)
    # The replies are chosen before anything is written, so the buyer's message is stored once, with its
    # final outcome, and before any reply (it keeps the lower id).
    last_text = await repo.last_bot_text(tx, conv.id) if decision.send else None
    replies: list[tuple[str, Reply]] = []
    unsent: list[str] = []  # auto-send intents whose every variant would repeat the last reply
    for intent in decision.send:
        reply = _fresh_variant(deps, locale, intent, variables, avoid=last_text)
        if reply is None:
            unsent.append(intent)
        else:
            replies.append((intent, reply))
            last_text = reply.text
    action = decision.action
    if action == "auto_sent" and not replies:
        action = "suggested"  # never send the same text twice in a row: leave it to an agent

    await repo.supersede_pending(tx, conv.id, now)
    msg = await repo.add_message(
        tx, conv, direction="in", author="buyer", external_id=event.message_id, text=event.text,
        sent_at=event.sent_at or now, now=now, intent=top.intent if top else None, score=top.score if top else None,
        action=action,
    )
    sent: list[dict[str, Any]] = []
    auto_rows: list[repo.NewSuggestion] = []
    for intent, reply in replies:
        reply_id = await send_reply(tx, conv, buyer, reply.text, in_reply_to=msg.external_id, author="bot", now=now)
        sent.append({"reply_id": reply_id, "intent": intent, "text": reply.text})
        auto_rows.append(_new_suggestion(intent, scores.get(intent), reply, status="auto_sent"))
    pending = _suggestions(deps, locale, (*unsent, *suggest), variables, scores, per_intent=len(parts) > 1)
    rows = await repo.add_suggestions(tx, msg, [*auto_rows, *pending], now)

    notice_for = decision.offline_key if decision.offline_key is not None and sent else conv.offline_notice_for
    await repo.record_turn(tx, conv, last_buyer_at=msg.sent_at, last_intent=msg.intent, last_score=msg.score,
                           offline_notice_for=notice_for,
                           status="escalated" if action == "escalated" else ("waiting" if pending else conv.status))
    if decision.opt_out and buyer.opted_out_at is None:
        buyer.opted_out_at = now
    case = await aftersales.open_case(tx, conv.id)  # one query for both: keep its follow-up, add to it
    await followups.on_buyer_message(tx, shop, conv, buyer, msg.intent, now, has_open_case=case is not None)
    await aftersales.on_buyer_message(tx, shop, conv, buyer, msg, normalized.text, now, current=case)
    log.info("message %s conv=%s intent=%s score=%s action=%s parts=%d", msg.id, conv.id,
             msg.intent, f"{msg.score:.1f}" if msg.score is not None else "-", action, len(parts))
    result = answer(event, decision, action, rows, sent, score=msg.score,
                    limit=MAX_PARTS if len(parts) > 1 else MAX_SUGGESTIONS)
    hook = deps.decision_hooks.get(conv.channel)
    for payload in hook(shop.id, conv.external_id, result) if hook is not None else ():
        await repo.enqueue(tx, conv=conv, channel=conv.channel, payload=payload, reply_id=repo.new_reply_id(), now=now)
    return result


def answer(event: MessageEvent, decision: Decision, action: str, rows: list[tuple[int, repo.NewSuggestion]],
           sent: list[dict[str, Any]], *, score: float | None, limit: int = MAX_SUGGESTIONS) -> dict[str, Any]:
    return {
        "conversation_id": event.conversation_id,
        "message_id": event.message_id,
        "action": action,
        "intent": decision.intent,
        "score": None if score is None else round(score, 1),
        "reason": decision.reason,
        "suggestions": [
            {"id": id_, "intent": r.intent, "score": r.score, "text": r.text, "status": r.status}
            for id_, r in rows
        ][:limit],
        "sent": sent,
    }


async def send_reply(tx: Tx, conv: Conversation, buyer: Buyer, text: str, *, in_reply_to: str | None,
                     author: str, now: datetime) -> str:
    """Record an outbound message and put it in the outbox, in the caller's transaction."""
    reply_id = repo.new_reply_id()
    await repo.add_message(tx, conv, direction="out", author=author, external_id=reply_id, text=text,
                           sent_at=now, now=now)
    payload = {
        "type": "reply.created", "shop": conv.shop_id, "conversation_id": conv.external_id,
        "buyer_id": buyer.external_id, "reply_id": reply_id, "text": text, "in_reply_to": in_reply_to,
    }
    await repo.enqueue(tx, conv=conv, channel=conv.channel, payload=payload, reply_id=reply_id, now=now)
    return reply_id


def variables_for(shop: ShopSettings, buyer: Buyer | None, locale: str, now: datetime) -> dict[str, Any]:
    """The template context documented by `replies.sample_variables()`. Buyer text enters only as values."""
    zh = locale.startswith("zh")
    nick = buyer.nick if buyer is not None and buyer.nick else ("亲" if zh else "there")
    return {
        "shop": {
            "name": shop.name,
            "agent_name": shop.agent_name,
            "hours_text": shop.hours.describe(locale),
            "next_open": shop.hours.describe_next_open(now, locale),
            "bargain_ceiling": _number(shop.bargain_ceiling),
            "couriers": [{"name": c.name, "fee": _number(c.fee)} for c in shop.couriers],
            "topup_link": shop.topup_link,
            "free_shipping_over": None if shop.free_shipping_over is None else _number(shop.free_shipping_over),
        },
        "buyer": {"nick": nick},
        "intent": "",
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _variants(deps: PipelineDeps, locale: str, intent: str, variables: dict[str, Any]) -> Iterator[Reply]:
    """The intent's replies, rendered one at a time as they are asked for."""
    names = deps.libraries.intent(locale, intent).replies
    return (deps.renderer.render(locale, name, variables | {"intent": intent}) for name in names)


def _fresh_variant(deps: PipelineDeps, locale: str, intent: str, variables: dict[str, Any],
                   avoid: str | None) -> Reply | None:
    return next((r for r in _variants(deps, locale, intent, variables) if r.text != avoid), None)


def _new_suggestion(intent: str, candidate: Candidate | None, reply: Reply, status: str = "pending"
                    ) -> repo.NewSuggestion:
    return repo.NewSuggestion(
        intent=intent, score=None if candidate is None else round(candidate.score, 1),
        trigger=None if candidate is None else candidate.trigger, template=reply.template, text=reply.text,
        status=status,
    )


def _suggestions(deps: PipelineDeps, locale: str, intents: tuple[str, ...], variables: dict[str, Any],
                 scores: dict[str, Candidate], *, per_intent: bool = False) -> list[repo.NewSuggestion]:
    """One reply per intent, best first; if fewer than three intents, more variants of the first.
    `per_intent` (a message asking several questions): exactly one reply per intent, up to MAX_PARTS."""
    unique = list(dict.fromkeys(intents))
    firsts = [(i, reply) for i in unique if (reply := next(_variants(deps, locale, i, variables), None)) is not None]
    items = [_new_suggestion(i, scores.get(i), reply) for i, reply in firsts]
    if per_intent:
        return items[:MAX_PARTS]
    if unique and len(items) < MAX_SUGGESTIONS:  # fill up with more variants of the best intent
        extra = islice(_variants(deps, locale, unique[0], variables), 1, 1 + MAX_SUGGESTIONS - len(items))
        items += [_new_suggestion(unique[0], scores.get(unique[0]), r) for r in extra]
    return items[:MAX_SUGGESTIONS]


def _act_on(deps: PipelineDeps, parts: list[Ranking], shop: ShopSettings, context: Context, locale: str,
            normalized: Normalized, now: datetime) -> tuple[Ranking, Signals]:
    """The ranking the decision is made on, and its signals. One question: the message's own. Several: the
    first that a human must handle (escalation, a discount over the ceiling), else the first asking to stop
    automated messages, else the best; never auto-sent (an answer to one question leaves the others open)."""
    single = len(parts) == 1

    def signals_of(ranking: Ranking) -> Signals:
        top = ranking.top
        escalates = top is not None and deps.libraries.intent(locale, top.intent).escalate
        auto = single and deps.matcher.would_auto_send(ranking)
        return Signals(ranking, auto, escalates, normalized.text)

    if single:
        return parts[0], signals_of(parts[0])
    options = [(r, signals_of(r)) for r in parts]
    decisions = [decide(signals, shop, context, now) for _, signals in options]
    chosen = next((i for i, d in enumerate(decisions) if d.action == "escalated"), None)
    if chosen is None:
        chosen = next((i for i, d in enumerate(decisions) if d.opt_out), 0)
    return options[chosen]


def question_parts(deps: PipelineDeps, normalized: Normalized) -> list[Ranking]:
    """The rankings to act on: one per question when the message asks several different things (best
    first), else the whole message's ranking alone. A greeting or a thank-you beside a question is no
    question of its own ("亲 在吗？能便宜点吗" is about the price), so it never makes a message multi-part."""
    parts = deps.matcher.rank_parts(normalized, limit=MAX_SUGGESTIONS)
    asked = [r for r in parts if r.top is not None and r.top.intent not in PLEASANTRIES]
    if len(asked) > 1:
        return asked[:MAX_PARTS]
    if len(parts) == 1 and parts[0].normalized is normalized:
        return parts  # rank_parts already ranked the whole message
    return [deps.matcher.rank(normalized, limit=MAX_SUGGESTIONS)]


async def accept_suggestion(tx: Tx, suggestion: Suggestion, *, text: str | None, agent: str, now: datetime) -> str:
    """An agent sends a suggestion (possibly edited); the alternatives for the same message are closed."""
    pair = await repo.conversation_with_buyer(tx, suggestion.conversation_id)
    assert pair is not None  # suggestions reference their conversation by foreign key
    conv, buyer = pair
    final = suggestion.text if text is None else text
    suggestion.status = "accepted" if final == suggestion.text else "edited"
    suggestion.final_text = final
    suggestion.decided_by = agent
    suggestion.decided_at = now
    # A follow-up raised by a reminder answers no particular message.
    message = None if suggestion.message_id is None else await tx.get_one(Message, suggestion.message_id)
    reply_id = await send_reply(tx, conv, buyer, final, in_reply_to=message.external_id if message else None,
                                author="agent", now=now)
    await repo.supersede_pending(tx, conv.id, now)
    await followups.on_agent_reply(tx, conv.id, now)
    conv.status = "open"
    return reply_id
