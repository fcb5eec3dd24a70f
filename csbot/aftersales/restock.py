"""After-sales: restock notices, the rules. Which stock change wakes the waiting buyers, when their notice may go
out, and which SKUs to propose to an agent for a conversation. Pure: no I/O (queries in `repo_restock.py`).

From the shop manuals: a buyer asking for a colour/size that is out (白色M还有吗) is told we will let them know
when it is back (登记, 到货第一时间通知). An agent puts the buyer on the SKU's waiting list with one key; when
the platform reports the SKU above zero again, each waiting buyer gets one notice through the reminder rows
(quiet hours, opt-out, blacklist and the buyer cap are checked when it fires, like every reminder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz

from csbot.config import ReminderSettings
from csbot.normalize import normalize

Change = Literal["restocked", "sold_out", "none"]
NOTICE_TEMPLATE = "reminder_restock_1"
SOLD_OUT_AGAIN = "sold_out_again"  # the reason on a notice cancelled before it went out


def stock_change(previous: int | None, available: int) -> Change:
    """`restocked` when the SKU was out (or never counted) and is now above zero; `sold_out` at zero."""
    if available <= 0:
        return "sold_out"
    if previous is None or previous <= 0:
        return "restocked"
    return "none"


def notice_due(now: datetime, policy: ReminderSettings, zone: ZoneInfo) -> datetime:
    """Now, or the end of the shop's quiet hours (checked again when the notice fires)."""
    if policy.quiet_hours is None:
        return now
    return policy.quiet_hours.next_allowed(now, zone)


@dataclass(frozen=True)
class SkuOption:
    sku_id: str
    title: str
    available: int | None


@dataclass(frozen=True)
class Proposal:
    sku_id: str
    title: str
    available: int | None
    score: float  # how well the title fits what the buyer wrote and ordered, 0..100


def propose(options: Sequence[SkuOption], context: Sequence[str], limit: int = 5) -> list[Proposal]:
    """The shop's SKUs that are not in stock, best fit to the conversation first (messages, order items)."""
    texts = [t for t in (normalize(c).text for c in context) if t]
    ranked: list[Proposal] = []
    for option in options:
        if option.available is not None and option.available > 0:
            continue  # in stock: the agent answers the buyer now, nobody waits
        title = normalize(option.title or option.sku_id).text
        score = max((fuzz.partial_ratio(title, text) for text in texts), default=0.0)
        ranked.append(Proposal(option.sku_id, option.title, option.available, round(score, 1)))
    ranked.sort(key=lambda p: (-p.score, p.sku_id))
    return ranked[:limit]
