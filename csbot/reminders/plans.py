"""Reminder planning: which stages an order gets and when, and what to do with a due reminder. Pure: no I/O.

Planning happens once, when the event arrives (`plan_payment`, `plan_after_delivery`, `plan_followup`);
the verdict happens again when the row comes due (`verdict`), because by then the order may be paid,
the buyer may have opted out, or the bot may have been down past the useful moment. Every "no" carries
a short reason code, so an agent can see why a reminder did not go out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from csbot.config import ReminderSettings

Kind = Literal["payment", "consult_followup", "after_delivery", "aftersales_followup", "restock",
               "case_waiting_buyer"]
PAYMENT: Kind = "payment"
CONSULT: Kind = "consult_followup"
AFTER_DELIVERY: Kind = "after_delivery"
AFTERSALES: Kind = "aftersales_followup"
RESTOCK: Kind = "restock"  # one per restock waiting entry (csbot/aftersales/restock.py); stage = the entry's id
CASE_WAITING: Kind = "case_waiting_buyer"  # an after-sales case waits for a buyer who went quiet: ask again
KINDS: tuple[Kind, ...] = (PAYMENT, CONSULT, AFTER_DELIVERY, AFTERSALES, RESTOCK, CASE_WAITING)
FOLLOWUPS: tuple[Kind, ...] = (CONSULT, AFTERSALES, CASE_WAITING)  # tied to a conversation, cancelled when it moves

STATUSES = ("pending", "claimed", "sent", "cancelled", "skipped")
PAYMENT_TEMPLATES = 2  # reminder_payment_1, reminder_payment_2; later offset stages reuse the last one
LAST_CALL_TEMPLATE = "reminder_payment_last"


@dataclass(frozen=True)
class Planned:
    kind: Kind
    stage: int
    due_at: datetime
    template: str
    skip_reason: str | None = None  # planned but never sent; kept as a row so agents see why


def template_for(kind: Kind, stage: int) -> str:
    if kind == PAYMENT:
        return f"reminder_payment_{min(stage, PAYMENT_TEMPLATES)}"
    return f"reminder_{kind}_1"


def plan_payment(ordered_at: datetime, auto_close_at: datetime | None, policy: ReminderSettings,
                 zone: ZoneInfo) -> list[Planned]:
    """The 催付 stages of a new unpaid order, in order; skipped ones carry their reason.

    Offset stages come `payment_stages` seconds after the order; every stage after the first needs
    `min_remaining` before auto-close; the last call comes `last_call_before_close` before auto-close,
    and an offset stage that would land after it is dropped. Quiet hours move a stage to the next
    allowed time, or skip it if that is past auto-close. At most `max_per_order` are planned.
    """
    if not policy.enabled:
        return []
    last_call: Planned | None = None
    if policy.last_call_before_close is not None and auto_close_at is not None:
        last_call = Planned(PAYMENT, len(policy.payment_stages) + 1,
                            auto_close_at - timedelta(seconds=policy.last_call_before_close), LAST_CALL_TEMPLATE)
    plans: list[Planned] = []
    for stage, offset in enumerate(policy.payment_stages, start=1):
        due = ordered_at + timedelta(seconds=offset)
        plan = Planned(PAYMENT, stage, due, template_for(PAYMENT, stage))
        if auto_close_at is not None and due >= auto_close_at:
            plan = replace(plan, skip_reason="past_auto_close")
        elif auto_close_at is not None and stage > 1 and auto_close_at - due < timedelta(seconds=policy.min_remaining):
            plan = replace(plan, skip_reason="too_close_to_auto_close")
        elif last_call is not None and ordered_at < last_call.due_at <= due:
            plan = replace(plan, skip_reason="after_last_call")
        plans.append(plan)
    if last_call is not None:
        too_soon = last_call.due_at <= ordered_at
        plans.append(replace(last_call, skip_reason="no_time_for_last_call") if too_soon else last_call)

    previous: datetime | None = None
    shifted: list[Planned] = []
    for plan in plans:
        if plan.skip_reason is None:
            plan = _out_of_quiet(plan, auto_close_at, policy, zone)
            if plan.skip_reason is None and previous is not None and plan.due_at <= previous:
                plan = replace(plan, skip_reason="collides_after_quiet_hours")
            if plan.skip_reason is None:
                previous = plan.due_at
        shifted.append(plan)
    return _cap(shifted, policy.max_per_order, has_last_call=last_call is not None)


def _out_of_quiet(plan: Planned, auto_close_at: datetime | None, policy: ReminderSettings,
                  zone: ZoneInfo) -> Planned:
    if policy.quiet_hours is None:
        return plan
    due = policy.quiet_hours.next_allowed(plan.due_at, zone)
    if auto_close_at is not None and due >= auto_close_at:
        return replace(plan, skip_reason="quiet_hours_until_auto_close")
    return replace(plan, due_at=due)


def _cap(plans: list[Planned], cap: int, *, has_last_call: bool) -> list[Planned]:
    """Keep at most `cap` live stages: the earliest ones, and the last call if there is one."""
    live = [p for p in plans if p.skip_reason is None]
    if len(live) <= cap:
        return plans
    if cap > 0 and has_last_call and live[-1].template == LAST_CALL_TEMPLATE:
        keep = [*live[: cap - 1], live[-1]]  # the last call matters most: it comes just before closing
    else:
        keep = live[:cap]
    kept = {p.stage for p in keep}
    return [p if p.skip_reason is not None or p.stage in kept else replace(p, skip_reason="order_cap")
            for p in plans]


def plan_after_delivery(delivered_at: datetime, policy: ReminderSettings, zone: ZoneInfo) -> Planned | None:
    """The closing message with the review request, once per order, after the buyer had time to look."""
    if not policy.enabled or policy.after_delivery_after is None:
        return None
    due = delivered_at + timedelta(seconds=policy.after_delivery_after)
    if policy.quiet_hours is not None:
        due = policy.quiet_hours.next_allowed(due, zone)
    return Planned(AFTER_DELIVERY, 1, due, template_for(AFTER_DELIVERY, 1))


def plan_followup(kind: Kind, since: datetime, policy: ReminderSettings) -> Planned | None:
    """A conversation follow-up `since` the buyer's message; quiet hours are checked when it fires."""
    after = policy.consult_followup_after if kind == CONSULT else policy.aftersales_followup_after
    if not policy.enabled or after is None:
        return None
    return Planned(kind, 1, since + timedelta(seconds=after), template_for(kind, 1))


def to_agents(kind: Kind, policy: ReminderSettings) -> bool:
    """Whether a reminder becomes a suggestion for agents rather than a message to the buyer."""
    return kind == AFTERSALES or (kind == CONSULT and policy.consult_followup_mode == "suggest")


# --- at fire time ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FireFacts:
    """What the store says when a reminder comes due."""

    kind: Kind
    now: datetime
    order_status: str | None = None  # None: not about an order
    auto_close_at: datetime | None = None
    blacklisted: bool = False
    opted_out: bool = False
    sent_for_order: int = 0  # reminders of this kind already sent for the order
    sent_to_buyer: int = 0  # automated messages to the buyer within the policy's window
    later_stage_due: bool = False  # a later stage of the same order is due as well (the bot was down)
    ordered_since: bool = False  # consult follow-up: the buyer ordered after asking


@dataclass(frozen=True)
class Send:
    to_agents: bool  # a suggestion for the agents instead of a message to the buyer


@dataclass(frozen=True)
class Drop:
    status: Literal["skipped", "cancelled"]  # cancelled: the reason to send is gone; skipped: not allowed
    reason: str


@dataclass(frozen=True)
class Defer:
    until: datetime
    reason: str


Verdict = Send | Drop | Defer


def verdict(facts: FireFacts, policy: ReminderSettings, zone: ZoneInfo) -> Verdict:
    kind, now = facts.kind, facts.now
    agents = to_agents(kind, policy)
    if kind == PAYMENT and facts.order_status not in (None, "created"):
        return Drop("cancelled", f"order_{facts.order_status}")
    if kind == AFTER_DELIVERY and facts.order_status in ("refund_requested", "closed"):
        return Drop("cancelled", f"order_{facts.order_status}")
    if kind == CONSULT and facts.ordered_since:
        return Drop("cancelled", "buyer_ordered")
    if not policy.enabled:
        return Drop("skipped", "reminders_disabled")
    if facts.blacklisted:
        return Drop("skipped", "buyer_blacklisted")
    if facts.opted_out and kind != AFTERSALES:  # an open after-sales case still needs the agents
        return Drop("skipped", "buyer_opted_out")
    if kind == PAYMENT and facts.auto_close_at is not None and now >= facts.auto_close_at:
        return Drop("skipped", "past_auto_close")
    if facts.later_stage_due:
        return Drop("skipped", "superseded_by_later_stage")
    if kind == PAYMENT and facts.sent_for_order >= policy.max_per_order:
        return Drop("skipped", "order_cap")
    if agents:
        return Send(to_agents=True)
    if facts.sent_to_buyer >= policy.max_per_buyer:
        return Drop("skipped", "buyer_cap")
    if policy.quiet_hours is not None and policy.quiet_hours.contains(now, zone):
        until = policy.quiet_hours.next_allowed(now, zone)
        if kind == PAYMENT and facts.auto_close_at is not None and until >= facts.auto_close_at:
            return Drop("skipped", "quiet_hours_until_auto_close")
        return Defer(until, "quiet_hours")
    return Send(to_agents=False)
