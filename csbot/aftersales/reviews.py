"""After-sales: replies to buyers' reviews, the rules. What a review complains about, which templates its reply
draft is built from, and whether it opens a case. Pure: no I/O (the queries are in `repo_reviews.py`).

From the shop manuals: a reply to a bad review says what went wrong and what the shop does about it
(破损? 补寄. 送货师傅骂人? 找物流, 赔钱) -- not a generic apology or thanks. And it never trades compensation
for a changed rating: platforms punish 好评返现 and "change your review" requests, so those phrases are
refused here and by `csbot lint` in every template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from csbot.library import LibrarySet
from csbot.match import Matcher
from csbot.normalize import normalize
from csbot.replies import Renderer

PRAISE = "praise"
#: Complaint topics, in the order a reply addresses them (the review library's ids).
COMPLAINTS = ("quality", "logistics", "size", "service", "price")
OPEN_TEMPLATE = "review_reply_open"  # addresses the buyer before the complaint paragraphs
UNCLEAR_TEMPLATE = "review_reply_unclear"  # a low rating whose complaint we could not tell: an agent edits it
CASE_RATING = 3  # ratings at or below open an after-sales case

#: Asking for a changed, added or deleted review, or paying for one. Lower case; matched on lower-cased text.
FORBIDDEN_PHRASES = (
    "追评", "改好评", "改成好评", "返现", "好评返", "删除差评", "删差评", "删评", "撤销差评",
    "修改评价", "改评价", "改一下评价",
    "change your rating", "change your review", "update your review", "remove your review", "delete your review",
    "cashback", "cash back",
)

# Buyers join complaints with contrast words, not punctuation (质量不错就是尺码偏小): split there as well.
_CONTRAST = re.compile(r"但是|可是|不过|就是|只是|然而|而且|\bbut\b|\bhowever\b", re.IGNORECASE)


def forbidden_in(text: str) -> list[str]:
    """The forbidden phrases `text` contains (empty when it may be published)."""
    lowered = text.lower()
    return [phrase for phrase in FORBIDDEN_PHRASES if phrase in lowered]


@dataclass(frozen=True)
class Topic:
    id: str  # logistics | quality | size | service | price | praise
    score: float
    trigger: str  # the library trigger that matched, for the agent to check


def classify(matcher: Matcher, text: str) -> tuple[Topic, ...]:
    """Every topic the review raises, clause by clause, complaints first (in COMPLAINTS order), praise last."""
    clauses = _CONTRAST.sub("，", text)
    found: dict[str, Topic] = {}
    for ranking in matcher.rank_parts(normalize(clauses)):
        top = ranking.top
        if top is not None and (top.intent not in found or top.score > found[top.intent].score):
            found[top.intent] = Topic(top.intent, round(top.score, 1), top.trigger)
    order = {topic: i for i, topic in enumerate((*COMPLAINTS, PRAISE))}
    return tuple(sorted(found.values(), key=lambda t: order.get(t.id, len(order))))


@dataclass(frozen=True)
class ReplyPlan:
    templates: tuple[str, ...]  # rendered in order and joined into the draft
    complaints: tuple[str, ...]  # what the reply addresses
    needs_edit: bool  # a low rating with no recognised complaint: the agent must name it
    open_case: bool


def plan_reply(rating: int, topics: tuple[Topic, ...], topic_templates: Mapping[str, str]) -> ReplyPlan:
    """Complaints get the opener and one paragraph each (problem + remedy); a praise-only review of 4-5 stars a
    thank-you; a low rating we cannot read the unclear-complaint paragraph, flagged for the agent."""
    complaints = tuple(t.id for t in topics if t.id != PRAISE and t.id in topic_templates)
    open_case = rating <= CASE_RATING
    if complaints:
        return ReplyPlan((OPEN_TEMPLATE, *(topic_templates[c] for c in complaints)), complaints, False, open_case)
    if open_case or PRAISE not in topic_templates:
        return ReplyPlan((OPEN_TEMPLATE, UNCLEAR_TEMPLATE), (), True, open_case)
    return ReplyPlan((topic_templates[PRAISE],), (), False, open_case)


@dataclass(frozen=True)
class Draft:
    topics: tuple[Topic, ...]
    plan: ReplyPlan
    text: str


def draft_reply(libraries: LibrarySet, renderer: Renderer, locale: str, variables: dict[str, Any], rating: int,
                text: str) -> Draft:
    """Classify the review, plan the reply and render it (templates/<locale>/review_reply_*.j2)."""
    topics = classify(libraries.review_matcher, text) if text.strip() else ()
    topic_templates = {i.id: i.replies[0] for i in libraries.library(locale).review.values() if i.replies}
    plan = plan_reply(rating, topics, topic_templates)
    parts = [renderer.render(locale, name, variables | {"intent": "review"}).text.strip() for name in plan.templates]
    return Draft(topics, plan, ("" if locale.startswith("zh") else " ").join(p for p in parts if p))
