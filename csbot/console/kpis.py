"""Console: KPI figures for a shop and a period, from the stored history. Queries plus pure arithmetic.

Definitions (the seeds' targets: first reply ~26 s on average, never over 40 s):
- a buyer *turn* starts at a buyer message that follows a reply (or opens the conversation); later buyer
  messages before the next reply belong to the same turn. Its first-response time runs from the turn's
  first message to the next reply. `all` counts any reply, `agent` only turns a human answered first
  (platforms leave auto-replies out of their response-time score).
- reply rate: turns that got a reply / turns. Acceptance per intent: accepted + edited / decided
  (accepted, edited, rejected) suggestions. Auto-sent share: bot replies / all replies.
- inquiry -> order: buyers who wrote in the period / of them, buyers with an order created in it.
- 催付 recovery: orders whose first payment reminder went out in the period / of them, paid afterwards.
- after-sales: conversations with a buyer message matched to an after-sales intent, by intent.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from csbot.reminders.followups import AFTERSALES_INTENTS
from csbot.store.db import Tx
from csbot.store.models import Conversation, Message, Order, Reminder, Suggestion

TARGET_AVG, TARGET_MAX = 26.0, 40.0  # seconds, from the seeds


@dataclass(frozen=True)
class ResponseTimes:
    count: int
    avg: float | None
    p90: float | None
    max: float | None
    within_26: float | None  # share of turns answered within 26 s
    within_40: float | None


@dataclass(frozen=True)
class IntentAcceptance:
    intent: str
    accepted: int
    edited: int
    rejected: int

    @property
    def decided(self) -> int:
        return self.accepted + self.edited + self.rejected

    @property
    def rate(self) -> float | None:
        return _ratio(self.accepted + self.edited, self.decided)


@dataclass(frozen=True)
class Kpis:
    shop: str | None
    start: datetime
    end: datetime
    turns: int
    replied: int
    first_response: ResponseTimes
    agent_first_response: ResponseTimes
    acceptance: list[IntentAcceptance]
    replies: int
    auto_sent: int
    inquiring_buyers: int
    ordering_buyers: int
    reminded_orders: int
    recovered_orders: int
    aftersales: dict[str, int] = field(default_factory=dict)

    @property
    def reply_rate(self) -> float | None:
        return _ratio(self.replied, self.turns)

    @property
    def auto_sent_share(self) -> float | None:
        return _ratio(self.auto_sent, self.replies)

    @property
    def conversion(self) -> float | None:
        return _ratio(self.ordering_buyers, self.inquiring_buyers)

    @property
    def recovery_rate(self) -> float | None:
        return _ratio(self.recovered_orders, self.reminded_orders)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def response_times(seconds: list[float]) -> ResponseTimes:
    """Pure. p90 by nearest rank (a value that occurred, not an interpolation)."""
    if not seconds:
        return ResponseTimes(0, None, None, None, None, None)
    ordered = sorted(seconds)
    n = len(ordered)
    return ResponseTimes(
        count=n, avg=round(sum(ordered) / n, 2), p90=round(ordered[math.ceil(0.9 * n) - 1], 2),
        max=round(ordered[-1], 2),
        within_26=round(sum(1 for s in ordered if s <= TARGET_AVG) / n, 4),
        within_40=round(sum(1 for s in ordered if s <= TARGET_MAX) / n, 4),
    )


async def compute(tx: Tx, *, shop: str | None, start: datetime, end: datetime) -> Kpis:
    in_window = Message.sent_at >= start, Message.sent_at < end
    conv_ids = select(Message.conversation_id).where(Message.direction == "in", *in_window).distinct()
    if shop:
        conv_ids = conv_ids.where(Message.shop_id == shop)
    rows = (await tx.execute(
        select(Message.conversation_id, Message.direction, Message.author, Message.sent_at, Message.intent,
               Conversation.buyer_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.conversation_id.in_(conv_ids))
        .order_by(Message.conversation_id, Message.id)
    )).all()

    all_times: list[float] = []
    agent_times: list[float] = []
    turns = replied = replies = auto_sent = 0
    first_inbound: dict[int, datetime] = {}  # buyer -> first message in the window
    aftersales: dict[str, set[int]] = defaultdict(set)
    turn_start: datetime | None = None
    open_turn = False
    current = None
    for conv_id, direction, author, sent_at, intent, buyer_id in rows:
        if conv_id != current:
            current, open_turn, turn_start = conv_id, False, None
        counted = start <= sent_at < end
        if direction == "in":
            if counted:
                first_inbound.setdefault(buyer_id, sent_at)
                if intent in AFTERSALES_INTENTS:
                    aftersales[intent].add(conv_id)
            if not open_turn:  # a turn opened before the window is not counted, nor its reply
                open_turn, turn_start = True, sent_at if counted else None
                turns += counted
            continue
        if counted:
            replies += 1
            auto_sent += author == "bot"
        if turn_start is not None:
            seconds = max(0.0, (sent_at - turn_start).total_seconds())
            all_times.append(seconds)
            if author == "agent":
                agent_times.append(seconds)
            replied += 1
        open_turn, turn_start = False, None

    acceptance_query = (
        select(Suggestion.intent, Suggestion.status, func.count(Suggestion.id))
        .join(Conversation, Conversation.id == Suggestion.conversation_id)
        .where(Suggestion.status.in_(("accepted", "edited", "rejected")), Suggestion.decided_at >= start,
               Suggestion.decided_at < end)
        .group_by(Suggestion.intent, Suggestion.status)
    )
    if shop:
        acceptance_query = acceptance_query.where(Conversation.shop_id == shop)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for intent, status, count in (await tx.execute(acceptance_query)).all():
        counts[intent or "-"][status] = count
    acceptance = [IntentAcceptance(i, c.get("accepted", 0), c.get("edited", 0), c.get("rejected", 0))
                  for i, c in sorted(counts.items())]

    ordering = 0
    if first_inbound:
        orders = select(Order.buyer_id, func.min(Order.ordered_at)).where(
            Order.buyer_id.in_(list(first_inbound)), Order.ordered_at >= start, Order.ordered_at < end
        ).group_by(Order.buyer_id)
        ordering = sum(1 for buyer_id, ordered_at in (await tx.execute(orders)).all()
                       if buyer_id is not None and ordered_at is not None and ordered_at >= first_inbound[buyer_id])

    first_sent = (
        select(Reminder.order_id, func.min(Reminder.sent_at).label("first_sent"))
        .where(Reminder.kind == "payment", Reminder.status == "sent")
        .group_by(Reminder.order_id)
    )
    if shop:
        first_sent = first_sent.where(Reminder.shop_id == shop)
    sub = first_sent.subquery()
    reminded_rows = (await tx.execute(
        select(sub.c.first_sent, Order.paid_at).join(Order, Order.id == sub.c.order_id)
        .where(sub.c.first_sent >= start, sub.c.first_sent < end)
    )).all()
    recovered = sum(1 for sent, paid in reminded_rows if paid is not None and paid >= sent)

    return Kpis(
        shop=shop, start=start, end=end, turns=turns, replied=replied,
        first_response=response_times(all_times), agent_first_response=response_times(agent_times),
        acceptance=acceptance, replies=replies, auto_sent=auto_sent,
        inquiring_buyers=len(first_inbound), ordering_buyers=ordering,
        reminded_orders=len(reminded_rows), recovered_orders=recovered,
        aftersales={k: len(v) for k, v in sorted(aftersales.items())},
    )


def _times_json(t: ResponseTimes) -> dict[str, float | int | None]:
    return {"count": t.count, "avg": t.avg, "p90": t.p90, "max": t.max, "within_26s": t.within_26,
            "within_40s": t.within_40}


def to_json(k: Kpis) -> dict[str, object]:
    return {
        "shop": k.shop, "from": k.start.isoformat(), "to": k.end.isoformat(),
        "first_response": _times_json(k.first_response) | {"turns": k.turns},
        "agent_first_response": _times_json(k.agent_first_response),
        "reply_rate": k.reply_rate, "turns": k.turns, "replied": k.replied,
        "acceptance": [{"intent": a.intent, "accepted": a.accepted, "edited": a.edited, "rejected": a.rejected,
                        "rate": a.rate} for a in k.acceptance],
        "auto_sent_share": k.auto_sent_share, "replies": k.replies, "auto_sent": k.auto_sent,
        "conversion": {"inquiring_buyers": k.inquiring_buyers, "ordering_buyers": k.ordering_buyers,
                       "rate": k.conversion},
        "payment_recovery": {"reminded_orders": k.reminded_orders, "recovered_orders": k.recovered_orders,
                             "rate": k.recovery_rate},
        "aftersales_by_reason": k.aftersales,
    }


def to_csv(k: Kpis) -> str:
    """One `metric,key,value` row per figure: opens in a spreadsheet, diffs line by line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "key", "value"])

    def rows(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, dict):
                    rows(f"{prefix}.{key}" if prefix else key, inner)
                else:
                    writer.writerow([prefix or key, key if prefix else "", "" if inner is None else inner])
        elif isinstance(value, list):
            for item in value:
                assert isinstance(item, dict)
                for key, inner in item.items():
                    if key != "intent":
                        writer.writerow([f"{prefix}.{key}", item["intent"], "" if inner is None else inner])

    data = to_json(k)
    for key, value in data.items():
        if isinstance(value, dict | list):
            rows(key, value)
        else:
            writer.writerow([key, "", "" if value is None else value])
    return out.getvalue()
