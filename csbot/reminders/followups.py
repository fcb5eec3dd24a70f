"""Conversation follow-ups: what a buyer message or an agent reply does to the conversation's reminders.
Runs in the caller's transaction (the pipeline's or the API's); never sends anything itself.

From the shop manuals' shift routine: a buyer who asked about a product, price or shipping but did not
order gets a follow-up for the next shift (咨询未拍); an after-sales case not resolved within 48 hours
becomes a task for agents. The buyer writing again, or an agent answering, cancels what was pending:
the conversation is moving. An open after-sales follow-up survives the buyer writing about the same
case again (or while it has an open case, csbot/aftersales), so its 48-hour deadline counts from the first
report. A case waiting for the buyer gets a follow-up to the buyer when they go quiet (`case_waiting_buyer`);
the buyer writing cancels it, an agent's message does not (that message is usually what the case waits on).
Ending a case cancels its conversation's after-sales follow-ups.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from csbot.config import AfterSalesSettings, ShopSettings
from csbot.reminders import plans
from csbot.reminders import repo as reminders_repo
from csbot.store.db import Tx
from csbot.store.models import Buyer, Conversation

CONSULT_INTENTS = frozenset({"product_info", "bargain", "shipping_fee", "promotion", "stock", "ship_time"})
AFTERSALES_INTENTS = frozenset({"return_refund", "exchange", "quality_issue", "logistics"})
# What an opt-out stops: every automated message to the buyer. An open after-sales case stays with agents.
BUYER_FACING: tuple[plans.Kind, ...] = (plans.PAYMENT, plans.CONSULT, plans.AFTER_DELIVERY, plans.CASE_WAITING)
CASE_KINDS: tuple[plans.Kind, ...] = (plans.AFTERSALES, plans.CASE_WAITING)


async def on_buyer_message(tx: Tx, shop: ShopSettings, conv: Conversation, buyer: Buyer, intent: str | None,
                           now: datetime, *, has_open_case: bool) -> None:
    """Cancel the conversation's pending follow-ups and arm the one this message calls for, if any.
    `has_open_case`: the conversation has an after-sales case that has not ended (its follow-up stays)."""
    aftersales = intent in AFTERSALES_INTENTS
    keep_case = aftersales or has_open_case
    await reminders_repo.cancel_followups(tx, conv.id, reason="buyer_wrote_again", now=now,
                                          keep=(plans.AFTERSALES,) if keep_case else ())
    if buyer.opted_out_at is not None:
        await reminders_repo.cancel_for_buyer(tx, buyer.id, kinds=BUYER_FACING, reason="buyer_opted_out", now=now)
    if buyer.blacklisted_at is not None:
        return
    kind: plans.Kind | None = None
    if aftersales:
        kind = plans.AFTERSALES
    elif intent in CONSULT_INTENTS and buyer.opted_out_at is None and not await reminders_repo.buyer_has_order(
            tx, buyer.id):
        kind = plans.CONSULT
    plan = None if kind is None else plans.plan_followup(kind, now, shop.reminders)
    if plan is not None:
        await reminders_repo.arm_followup(tx, shop_id=shop.id, conversation_id=conv.id, buyer_id=buyer.id,
                                          plan=plan, now=now)


async def on_agent_reply(tx: Tx, conversation_id: int, now: datetime) -> None:
    """An agent answered: the conversation is in hand, its pending follow-ups are moot (except a case's
    wait for the buyer: the agent's message is what the buyer should answer)."""
    await reminders_repo.cancel_followups(tx, conversation_id, reason="agent_replied", now=now,
                                          keep=(plans.CASE_WAITING,))


async def arm_case_waiting(tx: Tx, *, shop_id: str, conversation_id: int, buyer_id: int, policy: AfterSalesSettings,
                           now: datetime) -> None:
    """A case now waits for the buyer: if they stay quiet `waiting_buyer_after`, remind them (a message to the
    buyer, through the ticker's usual checks: quiet hours, caps, opt-out, blacklist)."""
    if policy.waiting_buyer_after is None:
        return
    plan = plans.Planned(plans.CASE_WAITING, 1, now + timedelta(seconds=policy.waiting_buyer_after),
                         plans.template_for(plans.CASE_WAITING, 1))
    await reminders_repo.arm_followup(tx, shop_id=shop_id, conversation_id=conversation_id, buyer_id=buyer_id,
                                      plan=plan, now=now)


async def cancel_case_followups(tx: Tx, conversation_id: int, *, kinds: tuple[plans.Kind, ...], reason: str,
                                now: datetime) -> int:
    """Cancel the conversation's pending case follow-ups of these kinds (a case ended, or stopped waiting)."""
    keep = tuple(k for k in plans.FOLLOWUPS if k not in kinds)
    return await reminders_repo.cancel_followups(tx, conversation_id, reason=reason, now=now, keep=keep)
