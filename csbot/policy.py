"""Policy stage: given the ranking, the shop's rules, the conversation and the time, decide what to do.
Pure: no I/O.

Order of precedence, from the shop manuals: a blacklisted buyer gets nothing; whatever a human must
handle (a request for a person, a complaint, haggling beyond what an agent may concede) is escalated;
outside business hours the buyer gets the offline reply once per off period; in hours a reply is sent
automatically only where the library marks the intent `auto` and the score clears its bar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import cn2an

from csbot.config import ShopSettings
from csbot.match import Ranking

Action = Literal["suggested", "auto_sent", "escalated", "ignored"]

OFFLINE = "offline"  # library intent holding the offline reply
HANDOFF = "handoff"  # library intent holding the "a colleague will take over" acknowledgement
OPT_OUT = "opt_out"
BARGAIN = "bargain"
SUGGEST_FLOOR = 45.0  # below this a candidate is noise, not worth an agent's glance


@dataclass(frozen=True)
class Signals:
    """What the match stage says about the message."""

    ranking: Ranking
    auto_eligible: bool  # the library allows auto-send for the top intent at this score
    escalates: bool  # the top intent is marked `escalate: true`
    text: str  # normalised text, for amounts


@dataclass(frozen=True)
class Context:
    """What the store knows about the conversation and buyer."""

    blacklisted: bool = False
    opted_out: bool = False
    offline_notice_for: datetime | None = None
    # Automatic messages already sent (from the database, so every instance sees the same numbers), counted
    # up to the shop's caps: to this buyer in the last hour, and by the shop in the last minute.
    auto_sent_to_buyer: int = 0
    auto_sent_by_shop: int = 0


@dataclass(frozen=True)
class Decision:
    action: Action
    intent: str | None  # the confident intent, if any
    suggest: tuple[str, ...]  # intents whose replies an agent sees, best first
    send: tuple[str, ...]  # intents whose reply goes out now, without an agent
    reason: str  # one line an agent or `csbot match` shows: why this action
    offline_key: datetime | None = None  # set when the offline reply is sent for this off period
    opt_out: bool = False


def decide(signals: Signals, shop: ShopSettings, context: Context, now: datetime) -> Decision:
    return _rate_limited(_decide(signals, shop, context, now), shop, context)


def _rate_limited(decision: Decision, shop: ShopSettings, context: Context) -> Decision:
    """Over a cap, what would have gone out becomes a suggestion for an agent (nothing is dropped), so a
    flood of buyer messages cannot make the bot spam the buyer or the platform."""
    if not decision.send:
        return decision
    caps = shop.auto_send
    if caps.max_per_buyer_per_hour is not None and context.auto_sent_to_buyer >= caps.max_per_buyer_per_hour:
        why = f"rate limited: {context.auto_sent_to_buyer} automatic messages to this buyer in the last hour"
    elif caps.max_per_shop_per_minute is not None and context.auto_sent_by_shop >= caps.max_per_shop_per_minute:
        why = f"rate limited: {context.auto_sent_by_shop} automatic messages from the shop in the last minute"
    else:
        return decision
    action: Action = "escalated" if decision.action == "escalated" else "suggested"
    suggest = tuple(dict.fromkeys((*decision.send, *decision.suggest)))
    return replace(decision, action=action, suggest=suggest, send=(), offline_key=None,
                   reason=f"{decision.reason}; {why}, an agent confirms the reply")


def _decide(signals: Signals, shop: ShopSettings, context: Context, now: datetime) -> Decision:
    ranking = signals.ranking
    top = ranking.top
    intent = top.intent if top else None
    candidates = tuple(c.intent for c in ranking.candidates if c.score >= SUGGEST_FLOOR)
    suggest = (intent, *(c for c in candidates if c != intent)) if intent else candidates

    if context.blacklisted:
        return Decision("ignored", intent, (), (), "buyer is blacklisted: stored, no reply")
    if intent == OPT_OUT:
        return Decision("auto_sent", intent, (), (OPT_OUT,), "buyer asked to stop automated messages", opt_out=True)

    offline_send, offline_key, offline_note = _offline(shop, context, now)
    if signals.escalates and intent:
        return Decision("escalated", intent, (intent, HANDOFF), offline_send,
                        f"intent {intent} goes to a human{offline_note}", offline_key)
    amount = requested_discount(signals.text) if intent == BARGAIN else None
    if amount is not None and amount > shop.bargain_ceiling:
        return Decision("escalated", intent, (HANDOFF, BARGAIN), offline_send,
                        f"asks {amount:g} yuan off, over the {shop.bargain_ceiling:g} yuan an agent may give"
                        f"{offline_note}", offline_key)
    if intent is None and shop.auto_send.on_abstain == "escalate":
        return Decision("escalated", None, (HANDOFF, *candidates), offline_send,
                        f"no confident intent ({ranking.reason}){offline_note}", offline_key)
    if offline_send:
        return Decision("auto_sent", intent, suggest, offline_send, "outside business hours" + offline_note,
                        offline_key)
    if not shop.hours.is_open(now):
        return Decision("suggested", intent, suggest, (), "outside business hours: offline reply already sent")
    if intent is None:
        return Decision("suggested", None, candidates, (), f"no confident intent ({ranking.reason})")
    if context.opted_out:
        return Decision("suggested", intent, suggest, (), "buyer opted out of automated messages")
    if shop.auto_send.enabled and signals.auto_eligible:
        return Decision("auto_sent", intent, suggest[1:], (intent,), f"intent {intent} is auto-send and scored high")
    return Decision("suggested", intent, suggest, (), f"intent {intent}: an agent confirms the reply")


def _offline(shop: ShopSettings, context: Context, now: datetime) -> tuple[tuple[str, ...], datetime | None, str]:
    """The offline reply to send now (if any), the off-period key to remember, and a note for the reason."""
    if shop.hours.is_open(now) or not shop.auto_send.offline_reply or context.opted_out:
        return (), None, ""
    key = shop.hours.next_open(now)
    if context.offline_notice_for == key:
        return (), None, ""
    return (OFFLINE,), key, "; offline reply sent"


# "便宜50", "少20块", "减五十元", "优惠30" — an explicit amount off. A target price ("300卖不卖") or a
# percentage ("打八折") says nothing about the concession without the list price, so it is not read.
_DISCOUNT = re.compile(r"(?:便宜|少|减|优惠|让|抹)(?:个|点|了)?(\d+(?:\.\d+)?)(?:块|元|rmb|¥)?")


def requested_discount(text: str) -> float | None:
    """The largest explicit amount off the buyer asks for, in yuan, or None."""
    try:
        digits = cn2an.transform(text, "cn2an")
    except (ValueError, KeyError, IndexError):
        digits = text
    amounts = [float(m) for m in _DISCOUNT.findall(digits)]
    return max(amounts) if amounts else None
