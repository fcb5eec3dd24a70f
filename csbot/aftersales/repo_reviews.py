"""Store: buyers' reviews and their reply drafts. `review.created` -> the review row, its topics, a reply draft for
an agent (always suggest mode) and, rated 3 or lower, an after-sales case. An approved reply goes out through
the outbox. Runs in the caller's transaction; SQL only through SQLAlchemy expressions.

A review has no chat conversation; its approved reply is sent on the generic channel (the shop's outbound
endpoint) as a `review.reply` payload, from a conversation row of channel "review" per review (the outbox
needs one; it holds no messages and never enters the agents' queue).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from csbot.aftersales import cases, reviews
from csbot.aftersales import repo as cases_repo
from csbot.config import ShopSettings
from csbot.errors import Conflict, MalformedEvent, NotFound, UnknownShop
from csbot.ingest.events import ReviewCreated
from csbot.normalize import normalize
from csbot.pipeline import PipelineDeps, variables_for
from csbot.store import repo
from csbot.store.db import Tx
from csbot.store.models import Buyer, Order, Review, ReviewReply

log = logging.getLogger(__name__)

REVIEW_CHANNEL = "review"  # the conversation row a review's reply is queued from
SEND_CHANNEL = "generic"  # the channel whose sender delivers it (the shop's outbound endpoint)


async def handle_review(tx: Tx, deps: PipelineDeps, event: ReviewCreated) -> dict[str, Any]:
    """Webhook review -> review row, topics, reply draft, maybe a case; returns the webhook's answer."""
    shop = deps.settings.shop(event.shop)
    if shop is None:
        raise UnknownShop({"shop": event.shop, "known": sorted(deps.settings.shops)})
    now = deps.clock.now()
    buyer = await repo.upsert_buyer(tx, shop_id=shop.id, external_id=event.buyer.id, nick=event.buyer.nick, now=now)
    variables = variables_for(shop, buyer, shop.locale, now)
    draft = reviews.draft_reply(deps.libraries, deps.renderer, shop.locale, variables, event.rating, event.text)
    if reviews.forbidden_in(draft.text):  # lint keeps such templates out; never let one through regardless
        raise Conflict({"problem": "a review reply template asks for a changed review",
                        "templates": draft.plan.templates})

    order = None if event.order_id is None else (await tx.execute(
        select(Order).where(Order.shop_id == shop.id, Order.external_id == event.order_id))).scalar_one_or_none()
    review = Review(shop_id=shop.id, external_id=event.review_id, order_external_id=event.order_id,
                    buyer_id=buyer.id, rating=event.rating, text=event.text, topics=[t.id for t in draft.topics],
                    created_at=now)
    tx.add(review)
    await tx.flush()
    if draft.plan.open_case:
        review.case_id = await _open_case(tx, shop, buyer, order, event, now)
    reply = ReviewReply(review_id=review.id, templates=",".join(draft.plan.templates), draft=draft.text,
                        status="pending", created_at=now)
    tx.add(reply)
    await tx.flush()
    log.info("review %s rating=%d topics=%s case=%s", review.id, event.rating, review.topics, review.case_id)
    view = ReviewView(review, reply, buyer, draft.topics)
    return {"type": event.type, "review_id": event.review_id} | review_json(view)


async def _open_case(tx: Tx, shop: ShopSettings, buyer: Buyer, order: Order | None, event: ReviewCreated,
                     now: datetime) -> int:
    reason = cases.classify_reason(normalize(event.text).text)
    opened = await cases_repo.open_or_join_case(
        tx, shop=shop, buyer_id=buyer.id, type="review", reason=reason if reason != cases.UNSPECIFIED else "low_rating",
        now=now, conversation_id=None if order is None else order.conversation_id,
        order_id=None if order is None else order.id, source="review", note=f"review {event.review_id}")
    return opened.case.id


@dataclass(frozen=True)
class ReviewView:
    review: Review
    reply: ReviewReply
    buyer: Buyer
    evidence: tuple[reviews.Topic, ...] = ()


def review_json(view: ReviewView) -> dict[str, Any]:
    r, p = view.review, view.reply
    return {
        "id": r.id, "shop": r.shop_id, "external_id": r.external_id, "order_id": r.order_external_id,
        "buyer": {"id": view.buyer.external_id, "nick": view.buyer.nick}, "rating": r.rating, "text": r.text,
        "topics": r.topics, "case_id": r.case_id, "created_at": r.created_at.isoformat(),
        "evidence": [{"topic": t.id, "score": t.score, "trigger": t.trigger} for t in view.evidence],
        "reply": {"id": p.id, "status": p.status, "draft": p.draft, "templates": p.templates.split(","),
                  "needs_edit": reviews.UNCLEAR_TEMPLATE in p.templates.split(","), "final_text": p.final_text,
                  "reason": p.reason, "decided_by": p.decided_by,
                  "decided_at": None if p.decided_at is None else p.decided_at.isoformat(), "reply_id": p.reply_id},
    }


async def list_reviews(tx: Tx, *, shop_id: str | None, status: str | None, limit: int) -> list[ReviewView]:
    query = (select(Review, ReviewReply, Buyer).join(ReviewReply, ReviewReply.review_id == Review.id)
             .join(Buyer, Buyer.id == Review.buyer_id).order_by(Review.id.desc()).limit(limit))
    if shop_id:
        query = query.where(Review.shop_id == shop_id)
    if status:
        query = query.where(ReviewReply.status == status)
    return [ReviewView(r, p, b) for r, p, b in (await tx.execute(query)).all()]


async def _locked(tx: Tx, review_id: int) -> ReviewView:
    """The review with its reply locked (two agents approving at once: the second gets a Conflict)."""
    query = repo._for_update(tx, select(ReviewReply).where(ReviewReply.review_id == review_id))
    reply = (await tx.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()
    if reply is None:
        raise NotFound(f"no review {review_id}")
    if reply.status != "pending":
        raise Conflict({"review": review_id, "status": reply.status, "problem": "reply already decided"})
    review = await tx.get_one(Review, review_id)
    return ReviewView(review, reply, await tx.get_one(Buyer, review.buyer_id))


async def approve(tx: Tx, review_id: int, *, text: str | None, agent: str, now: datetime) -> ReviewView:
    """The agent publishes the draft (or their edit of it): an outbox row to the shop's review-reply endpoint."""
    view = await _locked(tx, review_id)
    final = view.reply.draft if text is None else text
    found = reviews.forbidden_in(final)
    if found:
        raise MalformedEvent("text", f"platforms forbid asking for a changed review: {', '.join(found)}")
    review, reply = view.review, view.reply
    conv = await repo.upsert_conversation(tx, shop_id=review.shop_id, external_id=f"review:{review.external_id}",
                                          buyer_id=review.buyer_id, channel=REVIEW_CHANNEL, now=now)
    reply_id = repo.new_reply_id()
    payload = {"type": "review.reply", "shop": review.shop_id, "review_id": review.external_id,
               "order_id": review.order_external_id, "buyer_id": view.buyer.external_id, "reply_id": reply_id,
               "text": final}
    await repo.enqueue(tx, conv=conv, channel=SEND_CHANNEL, payload=payload, reply_id=reply_id, now=now)
    reply.status, reply.final_text, reply.reply_id = "sent", final, reply_id
    reply.decided_by, reply.decided_at = agent, now
    return view


async def reject(tx: Tx, review_id: int, *, reason: str, agent: str, now: datetime) -> ReviewView:
    view = await _locked(tx, review_id)
    view.reply.status, view.reply.reason = "rejected", reason
    view.reply.decided_by, view.reply.decided_at = agent, now
    return view
