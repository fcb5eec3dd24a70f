"""After-sales cases: the rules. State machine, reason codes, photo links, deadlines, breaches and the agents'
priority order. Pure: no I/O (the queries are in `aftersales/repo.py`).

From the shop manuals: receive -> classify -> solve -> track -> follow up. Answer a return or parcel problem
within 5 minutes and solve a parcel problem within 48 hours; work the refund queue in this order: orders the
platform has stepped into (小二介入) first, then late shipments, then out-of-stock orders, then by whichever
deadline runs out first. Every case ends with a resolution, written to the order's remarks (reason + agent +
date) so the next shift can read it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from csbot.config import AfterSalesSettings
from csbot.errors import Conflict, MalformedEvent

# --- types and reasons -------------------------------------------------------------------------------

# The intents that open a case (scripts_library ids), plus "review" for low-rated reviews (opened by the
# review replies, not by a message).
INTENT_TYPES = ("return_refund", "exchange", "quality_issue", "logistics", "complaint")
TYPES = (*INTENT_TYPES, "review")
SOURCES = ("message", "review", "agent")
# Quality feedback for purchasing / QC (the manuals' 生产问题反馈): these types, grouped by product and reason.
REPORT_TYPES = ("quality_issue", "return_refund", "exchange")

TYPE_LABELS: dict[str, tuple[str, str]] = {  # code -> (zh-CN, en)
    "return_refund": ("退货退款", "return / refund"),
    "exchange": ("换货", "exchange"),
    "quality_issue": ("质量问题", "quality problem"),
    "logistics": ("物流问题", "parcel problem"),
    "complaint": ("投诉", "complaint"),
    "review": ("中差评", "low rating"),
}

UNSPECIFIED = "unspecified"
REASON_LABELS: dict[str, tuple[str, str]] = {
    "wrong_item": ("发错货", "wrong item sent"),
    "missing_parts": ("少件漏发", "missing parts"),
    "damaged": ("破损", "damaged"),
    "color_difference": ("色差", "colour differs"),
    "size_fit": ("尺码不合适", "size / fit"),
    "defect": ("质量缺陷", "defect"),
    "not_as_described": ("与描述不符", "not as described"),
    "changed_mind": ("不想要了（七天无理由）", "changed mind (7-day return)"),
    "not_received": ("未收到货", "not received"),
    "not_moving": ("物流不更新", "tracking not moving"),
    "return_shipping": ("退货运费", "return shipping"),
    "refund_progress": ("退款进度", "refund progress"),
    "service_attitude": ("服务态度", "service attitude"),
    "review_threat": ("威胁差评", "threatens a bad review"),
    "report": ("投诉举报", "formal complaint"),
    "low_rating": ("低分评价", "low rating"),
    UNSPECIFIED: ("未分类", "unspecified"),
}
REASONS = tuple(REASON_LABELS)

# First cue found wins, in this order (a wrong item that arrived broken is first of all a wrong item).
# Matched against the normalised text (simplified, lower case).
_REASON_CUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wrong_item", ("发错", "错发", "不是我买的", "不是我拍的", "wrong item", "sent the wrong")),
    ("missing_parts", ("少件", "漏发", "少发", "缺件", "少了一", "missing")),
    ("damaged", ("破损", "碎了", "压坏", "摔坏", "裂", "划痕", "烂了", "broken", "damaged", "cracked", "scratch")),
    ("color_difference", ("色差",)),
    ("size_fit", ("尺码", "码数", "偏大", "偏小", "大了", "小了", "不合身", "size", "too big", "too small")),
    ("defect", ("质量", "坏了", "不能用", "开线", "掉色", "起球", "故障", "defect", "not working", "doesnt work",
                "faulty")),
    ("not_as_described", ("不符", "描述不", "和图片不", "not as described")),
    ("changed_mind", ("不想要", "不要了", "无理由", "不喜欢", "拍多了", "changed my mind", "dont want")),
    ("not_received", ("没收到", "没拿到", "未收到", "丢件", "丢了", "not received", "never arrived", "lost")),
    ("not_moving", ("不动", "没更新", "没有更新", "不更新", "催件", "stuck", "not moving", "no update")),
    ("return_shipping", ("运费险", "退货地址", "寄回", "运费", "return address", "return shipping")),
    ("refund_progress", ("到账", "退款进度", "退款多久", "refund status")),
    ("service_attitude", ("态度",)),
    ("review_threat", ("差评", "bad review")),
    ("report", ("投诉", "举报", "骗子", "12315", "complain", "scam", "report")),
)


def classify_reason(text: str) -> str:
    """A reason code from the buyer's (normalised) words; `unspecified` when nothing matches."""
    for code, cues in _REASON_CUES:
        if any(cue in text for cue in cues):
            return code
    return UNSPECIFIED


def type_label(code: str, locale: str) -> str:
    return _label(TYPE_LABELS, code, locale)


def reason_label(code: str, locale: str) -> str:
    return _label(REASON_LABELS, code, locale)


def _label(table: dict[str, tuple[str, str]], code: str, locale: str) -> str:
    pair = table.get(code)
    return code if pair is None else pair[0 if locale.startswith("zh") else 1]


# --- photos ------------------------------------------------------------------------------------------

MAX_PHOTOS = 30  # per case; a buyer pasting a hundred links does not grow the row without bound
_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+;=%,]+", re.ASCII)


def photo_urls(text: str) -> list[str]:
    """The http(s) links in a message (platforms send a buyer's picture as a link), in order, once each."""
    found = (m.group(0).rstrip(".,;:!?)]'") for m in _URL.finditer(text))
    return list(dict.fromkeys(url for url in found if len(url) <= 1000))


# --- the state machine -------------------------------------------------------------------------------

STATES = ("new", "in_progress", "waiting_buyer", "waiting_warehouse", "resolved", "closed")
OPEN_STATES = ("new", "in_progress", "waiting_buyer", "waiting_warehouse")
ENDED_STATES = ("resolved", "closed")  # resolved: solved; closed: ended otherwise (withdrawn, duplicate, …)
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"in_progress", "waiting_buyer", "waiting_warehouse", "resolved", "closed"}),
    "in_progress": frozenset({"waiting_buyer", "waiting_warehouse", "resolved", "closed"}),
    "waiting_buyer": frozenset({"in_progress", "waiting_warehouse", "resolved", "closed"}),
    "waiting_warehouse": frozenset({"in_progress", "waiting_buyer", "resolved", "closed"}),
    "resolved": frozenset({"closed"}),
    "closed": frozenset(),
}
MAX_TEXT = 2000


def check_transition(current: str, to: str, resolution: str | None) -> None:
    """Raise unless `current -> to` is allowed. Ending a case (resolved / closed) needs a resolution."""
    if to not in STATES:
        raise MalformedEvent("to", f"one of {', '.join(STATES)}")
    if to not in TRANSITIONS.get(current, frozenset()):
        allowed = sorted(TRANSITIONS.get(current, frozenset()))
        raise Conflict({"state": current, "to": to, "allowed": allowed})
    if to in ENDED_STATES and not (resolution or "").strip():
        raise MalformedEvent("resolution", f"required to move a case to {to}: what was done (退款 / 补发 / 换货 …)")


# --- deadlines, breaches and priority ----------------------------------------------------------------


@dataclass(frozen=True)
class Deadlines:
    reply_due_at: datetime | None  # an agent's first answer; None when there is no conversation to answer in
    resolve_due_at: datetime


def deadlines(opened_at: datetime, policy: AfterSalesSettings, *, has_conversation: bool) -> Deadlines:
    reply = opened_at + timedelta(seconds=policy.reply_within) if has_conversation else None
    return Deadlines(reply, opened_at + timedelta(seconds=policy.resolve_within))


@dataclass(frozen=True)
class CaseFacts:
    """What the queue knows about one case: the row, its order's milestones, and the first agent reply."""

    id: int
    state: str
    opened_at: datetime
    reply_due_at: datetime | None
    resolve_due_at: datetime
    ended_at: datetime | None
    first_reply_at: datetime | None  # an agent's first message in the conversation since the case opened
    platform_intervened: bool = False
    late_shipment: bool = False  # set by an agent
    out_of_stock: bool = False
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    refund_requested_at: datetime | None = None


@dataclass(frozen=True)
class Standing:
    late_shipment: bool  # flagged, or the order is paid and still not shipped after `ship_within`
    resolve_due_at: datetime  # the case's own deadline, or the platform's refund timeout if sooner
    next_deadline: datetime | None  # the soonest deadline still to meet (None: the case has ended)
    breaches: tuple[str, ...]  # "reply", "resolve": deadlines missed (or being missed now)
    key: tuple[bool, bool, bool, bool, datetime, datetime, int]  # sort ascending: most urgent first


_FAR = datetime.max.replace(tzinfo=UTC)


def assess(facts: CaseFacts, policy: AfterSalesSettings, now: datetime) -> Standing:
    ended = facts.state in ENDED_STATES
    late = facts.late_shipment or (
        policy.ship_within is not None and facts.paid_at is not None and facts.shipped_at is None
        and now - facts.paid_at > timedelta(seconds=policy.ship_within))
    resolve_due = facts.resolve_due_at
    if facts.refund_requested_at is not None and policy.refund_timeout is not None:
        resolve_due = min(resolve_due, facts.refund_requested_at + timedelta(seconds=policy.refund_timeout))
    breaches: list[str] = []
    if facts.reply_due_at is not None:
        answered_or_now = facts.first_reply_at or facts.ended_at or now
        if answered_or_now > facts.reply_due_at:
            breaches.append("reply")
    if (facts.ended_at or now) > resolve_due:
        breaches.append("resolve")
    pending: list[datetime] = []
    if not ended:
        pending.append(resolve_due)
        if facts.reply_due_at is not None and facts.first_reply_at is None:
            pending.append(facts.reply_due_at)
    next_deadline = min(pending) if pending else None
    key = (ended, not facts.platform_intervened, not late, not facts.out_of_stock, next_deadline or _FAR,
           facts.opened_at, facts.id)
    return Standing(late, resolve_due, next_deadline, tuple(breaches), key)


def queue_order(items: Sequence[tuple[CaseFacts, Standing]]) -> list[tuple[CaseFacts, Standing]]:
    """Platform-intervened first, then late shipments, then out of stock, then the nearest deadline."""
    return sorted(items, key=lambda pair: pair[1].key)
