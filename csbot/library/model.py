"""Script library model: intents, their triggers and reply templates, per locale. Pure: no I/O."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from csbot.match import Matcher

#: The in-scope intents of the evaluation taxonomy (shared/eval/README.md), in its order; "other" is the
#: absence of an intent (the matcher abstains), so it is not listed.
TAXONOMY: tuple[str, ...] = (
    "greeting",
    "bargain",
    "promotion",
    "shipping_fee",
    "ship_time",
    "logistics",
    "payment",
    "stock",
    "product_info",
    "order_change",
    "return_refund",
    "exchange",
    "quality_issue",
    "invoice",
    "closing",
    "human_agent",
    "complaint",
)

#: Intents the pipeline needs besides the taxonomy: the time-based offline reply, the acknowledgement
#: sent when a conversation goes to a human, and the buyer's "stop messaging me".
SPECIAL_INTENTS: tuple[str, ...] = ("offline", "handoff", "opt_out")

DEFAULT_LOCALE = "zh-CN"

Mode = Literal["suggest", "auto"]


class LibraryError(Exception):
    """The script library cannot be loaded; ``problems`` are "file:line: message" strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Intent:
    id: str
    label: str
    triggers: tuple[str, ...]
    negatives: tuple[str, ...]
    replies: tuple[str, ...]  # template names under templates/{locale}/
    mode: Mode
    threshold: float | None
    auto_threshold: float | None
    escalate: bool
    source: str  # "zh-CN/presales.yaml:12"


@dataclass(frozen=True)
class Library:
    locale: str
    intents: Mapping[str, Intent]
    default_threshold: float
    default_auto_threshold: float
    margin: float
    #: The `review:` section: what buyers' reviews complain about (csbot/aftersales/reviews.py ranks them with
    #: a Matcher of their own), kept out of `intents` so chat matching never sees them.
    review: Mapping[str, Intent] = field(default_factory=dict)

    def threshold(self, intent_id: str) -> float:
        intent = self.intents.get(intent_id)
        if intent is None or intent.threshold is None:
            return self.default_threshold
        return intent.threshold

    def auto_threshold(self, intent_id: str) -> float:
        intent = self.intents.get(intent_id)
        if intent is None or intent.auto_threshold is None:
            return self.default_auto_threshold
        return intent.auto_threshold


@dataclass(frozen=True)
class LibrarySet:
    libraries: Mapping[str, Library]  # by locale; DEFAULT_LOCALE must be present

    def library(self, locale: str) -> Library:
        return self.libraries.get(locale) or self.libraries[DEFAULT_LOCALE]

    def intent(self, locale: str, intent_id: str) -> Intent:
        library = self.libraries.get(locale)
        if library is not None and intent_id in library.intents:
            return library.intents[intent_id]
        return self.libraries[DEFAULT_LOCALE].intents[intent_id]

    def settings_library(self, locale: str, intent_id: str) -> Library:
        """The library whose mode/thresholds apply to ``intent_id`` for a message in ``locale``."""
        library = self.libraries.get(locale)
        if library is not None and intent_id in library.intents:
            return library
        return self.libraries[DEFAULT_LOCALE]

    def review_set(self) -> LibrarySet:
        """The review sections as a LibrarySet of their own, for a review Matcher."""
        return LibrarySet({loc: replace(lib, intents=lib.review, review={}) for loc, lib in self.libraries.items()})

    @functools.cached_property
    def review_matcher(self) -> Matcher:
        """The Matcher of the review sections (csbot/aftersales/reviews.py), built on first use and kept with
        the libraries it indexes (building one costs ~0.1 s; reviews are rare, chat startup should not pay)."""
        from csbot.match import Matcher  # match.py imports this module

        return Matcher(self.review_set())
