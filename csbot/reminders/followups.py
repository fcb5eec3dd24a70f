"""Conversation follow-ups: what a buyer message or an agent reply does to the conversation's reminders.
Runs in the caller's transaction (the pipeline's or the API's); never sends anything itself.

From the shop manuals' shift routine: a buyer who asked about a product, price or shipping but did not
order gets a follow-up for the next shift (咨询未拍); an after-sales case not resolved within 48 hours
becomes a task for agents. The buyer writing again, or an agent answering, cancels what was pending:
the conversation is moving. An open after-sales follow-up survives the buyer writing about the same
case again, so its 48-hour deadline counts from the first report.
"""

from __future__ import annotations

from datetime import datetime

from csbot.config import ShopSettings
from csbot.reminders import plans
from csbot.reminders import repo as reminders_repo
from csbot.store.db import Tx
from csbot.store.models import Buyer, Conversation

CONSULT_INTENTS = frozenset({"product_info", "bargain", "shipping_fee", "promotion", "stock", "ship_time"})
AFTERSALES_INTENTS = frozenset({"return_refund", "exchange", "quality_issue", "logistics"})
# What an opt-out stops: every automated message to the buyer. An open after-sales case stays with agents.
BUYER_FACING: tuple[plans.Kind, ...] = (plans.PAYMENT, plans.CONSULT, plans.AFTER_DELIVERY)


async def on_buyer_message(tx: Tx, shop: ShopSettings, conv: Conversation, buyer: Buyer, intent: str | None,
                           now: datetime) -> None:
    """Cancel the conversation's pending follow-ups and arm the one this message calls for, if any."""
    aftersales = intent in AFTERSALES_INTENTS
    await reminders_repo.cancel_followups(tx, conv.id, reason="buyer_wrote_again", now=now,
                                          keep=(plans.AFTERSALES,) if aftersales else ())
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
    """An agent answered: the conversation is in hand, its pending follow-ups are moot."""
    await reminders_repo.cancel_followups(tx, conversation_id, reason="agent_replied", now=now)
