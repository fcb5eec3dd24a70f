"""Match stage: Normalized buyer text -> Ranking of library intents with scores. Pure: no I/O.

Every trigger of every locale is normalised once, when the Matcher is built, and encoded as a string of
*units*: a Chinese character, a pinyin syllable, an English word, a size (S/M/XL) or a number each become
one character, so RapidFuzz compares units, not letters ("hi" never matches inside "this", 包油 and 包邮
share their syllables). Each trigger has two encodings: its text (characters and words) and its sound
(syllables and words), which lets homophone typos and typed pinyin reach Chinese triggers.

Per message we look up an inverted index of unit bigrams to shortlist triggers (never a linear scan),
score the shortlist with RapidFuzz (whole-string ratio, and containment of a short trigger in a long
message), keep the best trigger per intent, penalise intents whose negative examples fit better than their
triggers, and abstain when the best score is under the intent's threshold or too close to the runner-up.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz

from csbot.library.model import LibrarySet
from csbot.normalize import PINYIN_SYLLABLES, TOKEN, Normalized, normalize

#: Shortlist size: the triggers with the largest share of their bigrams in the message are scored.
SHORTLIST = 100
#: Containment (a trigger found inside a longer message) loses CONTAIN_LENGTH / trigger length points, so
#: a two-character keyword is weaker evidence than a five-character phrase, and up to CONTAIN_COVER
#: points as the trigger covers less of the message.
CONTAIN_LENGTH = 24.0
CONTAIN_COVER = 6.0
#: Buyers state the topic first (优惠券领了怎么用不了, 换货的新件什么时候寄出): a trigger found at the start
#: of the message gains up to EARLY_BONUS points over one found at its end. Small: it breaks near-ties.
EARLY_BONUS = 5.0
#: A trigger found inside the message only approximately (partial_ratio < 100) is weaker still.
FUZZY_CONTAIN_PENALTY = 6.0
#: Matching by sound only costs against matching the characters: different words share syllables
#: (麻烦 has the "ma" of 吗). Typed pinyin has nothing but sound and pays nothing.
SOUND_PENALTY = 6.0
SOUND_CONTAIN_MIN = 3
#: An intent whose negative example fits the message (nearly) as well as its best trigger is pushed down.
NEGATIVE_SLACK = 2.0
NEGATIVE_PENALTY = 30.0
#: A one-unit trigger (谢 from 谢谢) may be found inside a message only this short (行，谢啦).
SHORT_MESSAGE = 3
#: A message that is only a piece of a trigger (好的 of 好的谢谢) is a fragment, not a request.
FRAGMENT_PENALTY = 15.0
#: Every unit of a trigger present in the message, in another order (地址能改吗 ~ 改地址), scores like a
#: fuzzy containment less this penalty; needs a trigger of at least BAG_MIN_UNITS units.
BAG_PENALTY = 10.0
BAG_MIN_UNITS = 3
#: English words that say nothing about the request; dropped so "when will my order be shipped" meets
#: "when will my order ship" on what matters.
ENGLISH_STOPWORDS = frozenset(
    "i me my we our you your it its this that these those a an the is are was were be been am do does did "
    "will would can could shall should may might please pls plz to of for in on at by with and or so "
    "there here what".split()  # not "just", "not", "dont": they change the meaning
)
#: English words carry more meaning than one Chinese character; count each as this many units of length.
WORD_WEIGHT = 2.0

NUMBER_UNIT = "#"
SIZE_UNIT = "\u00a7"
SIZE_WORDS = frozenset({"xs", "s", "m", "l", "xl", "xxl", "xxxl"})  # "s" only ever stands alone in Chinese
#: Private-use code points: syllables and known words get fixed codes; unknown words in a message get
#: throwaway codes from plane 16 so they never equal anything in the index.
FIRST_CODE = 0xF0000
FIRST_UNKNOWN = 0x100000


@dataclass(frozen=True)
class Candidate:
    intent: str
    score: float  # 0..100
    trigger: str  # the library trigger, as written, that matched best


@dataclass(frozen=True)
class Ranking:
    normalized: Normalized
    candidates: tuple[Candidate, ...]  # best first, one per intent
    top: Candidate | None  # None = abstain
    reason: str  # "confident" | "below_threshold" | "ambiguous" | "empty"


@dataclass(frozen=True)
class _Entry:
    """One trigger or negative example, encoded."""

    intent: str
    trigger: str
    negative: bool
    english: bool
    text: str
    sound: str


@dataclass(frozen=True)
class _Encoded:
    text: str
    sound: str
    english: bool
    has_cjk: bool


class Matcher:
    """Built once from the LibrarySet (the whole index is precomputed); ``rank`` is then cheap and pure."""

    def __init__(self, libraries: LibrarySet) -> None:
        self._libraries = libraries
        self._codes: dict[str, str] = {}
        self._entries: list[_Entry] = []
        self._postings: dict[str, list[int]] = {}
        self._key_counts: list[int] = []
        for library in libraries.libraries.values():
            for intent in library.intents.values():
                for trigger in intent.triggers:
                    self._add(intent.id, trigger, negative=False)
                for negative in intent.negatives:
                    self._add(intent.id, negative, negative=True)

    @property
    def trigger_count(self) -> int:
        return sum(1 for entry in self._entries if not entry.negative)

    def rank(self, normalized: Normalized, limit: int = 3) -> Ranking:
        if not normalized.text:
            return Ranking(normalized, (), None, "empty")
        message = self._encode(normalized, learn=False)
        best = self._best_per_intent(message)
        ordered = sorted(best.values(), key=lambda c: (-c.score, c.intent))
        candidates = tuple(ordered[:limit])
        if not candidates:
            return Ranking(normalized, (), None, "below_threshold")
        top = candidates[0]
        library = self._libraries.settings_library(normalized.lang, top.intent)
        if top.score < library.threshold(top.intent):
            return Ranking(normalized, candidates, None, "below_threshold")
        margin = self._libraries.library(normalized.lang).margin
        if len(ordered) > 1 and top.score - ordered[1].score < margin:
            return Ranking(normalized, candidates, None, "ambiguous")
        return Ranking(normalized, candidates, top, "confident")

    def would_auto_send(self, ranking: Ranking) -> bool:
        top = ranking.top
        if top is None:
            return False
        lang = ranking.normalized.lang
        intent = self._libraries.intent(lang, top.intent)
        library = self._libraries.settings_library(lang, top.intent)
        return intent.mode == "auto" and top.score >= library.auto_threshold(top.intent)

    # -- index -------------------------------------------------------------------------------------------

    def _add(self, intent: str, trigger: str, *, negative: bool) -> None:
        normalized = normalize(trigger)
        if not normalized.text:
            return
        encoded = self._encode(normalized, learn=True)
        sound = encoded.sound
        if normalized.text.endswith("吗") and len(sound) > 2:
            # By sound, a final 吗 (ma) is also the 麻 of 麻烦 or the 码 of 尺码: don't let it align.
            sound = sound[:-1]
        index = len(self._entries)
        self._entries.append(_Entry(intent, trigger, negative, encoded.english, encoded.text, sound))
        keys = _keys(encoded.text) | _keys(encoded.sound)
        self._key_counts.append(len(keys))
        for key in keys:
            self._postings.setdefault(key, []).append(index)

    def _encode(self, normalized: Normalized, *, learn: bool) -> _Encoded:
        english = normalized.lang == "en"
        tokens = TOKEN.findall(normalized.text)
        # Numbers match any number (300卖不卖 ~ 100卖不卖), except a text that is only a number ("88").
        lone_number = len(tokens) == 1
        unknown: dict[str, str] = {}

        def code(kind: str, token: str) -> str:
            key = f"{kind}:{token}"
            found = self._codes.get(key)
            if found is not None:
                return found
            if learn:
                self._codes[key] = found = chr(FIRST_CODE + len(self._codes))
                return found
            return unknown.setdefault(key, chr(FIRST_UNKNOWN + len(unknown)))

        def word(token: str) -> str:
            if token.isdigit() and not lone_number:
                return NUMBER_UNIT
            if token in SIZE_WORDS:
                return SIZE_UNIT
            return code("w", _stem(token) if english else token)

        has_cjk = any(not t.isascii() for t in tokens)
        if english:
            # Keep the stopwords only when they are all there is ("hi there" keeps "hi").
            tokens = [t for t in tokens if t not in ENGLISH_STOPWORDS] or tokens
        text_units = [unit for t in tokens for unit in (list(t) if not t.isascii() else [word(t)])]
        if english:
            sound_units = text_units
        else:
            sound_units = [code("s", s) if s in PINYIN_SYLLABLES else word(s) for s in normalized.pinyin.split()]
            if not has_cjk:  # typed pinyin: its "text" is its sound
                text_units = sound_units
        return _Encoded("".join(text_units), "".join(sound_units), english, has_cjk)

    # -- scoring -----------------------------------------------------------------------------------------

    def _shortlist(self, message: _Encoded) -> list[int]:
        counts: Counter[int] = Counter()
        for key in _keys(message.text) | _keys(message.sound) | set(message.text) | set(message.sound):
            counts.update(self._postings.get(key, ()))
        # Share of each trigger's own keys found in the message: a short trigger fully inside the message
        # outranks a long one that merely shares a common bigram (什么, 怎么).
        key_counts = self._key_counts
        return heapq.nlargest(SHORTLIST, counts, key=lambda i: counts[i] / key_counts[i])

    def _best_per_intent(self, message: _Encoded) -> dict[str, Candidate]:
        shortlist = [self._entries[i] for i in self._shortlist(message)]
        suppressed = _suppressed(shortlist, message)
        positive: dict[str, Candidate] = {}
        negative: dict[str, float] = {}
        for entry in shortlist:
            score = self._score(entry, message, suppressed)
            if entry.negative:
                negative[entry.intent] = max(score, negative.get(entry.intent, 0.0))
            elif entry.intent not in positive or score > positive[entry.intent].score:
                positive[entry.intent] = Candidate(entry.intent, round(score, 1), entry.trigger)
        for intent, candidate in list(positive.items()):
            if negative.get(intent, 0.0) >= candidate.score - NEGATIVE_SLACK:
                penalised = max(0.0, candidate.score - NEGATIVE_PENALTY)
                positive[intent] = Candidate(intent, penalised, candidate.trigger)
        return positive

    def _score(self, entry: _Entry, message: _Encoded, suppressed: set[tuple[str, str]]) -> float:
        weight = WORD_WEIGHT if entry.english else 1.0
        score = _similarity(message.text, entry.text, weight, (entry.intent, entry.text) in suppressed)
        if not message.english and not entry.english:
            penalty = SOUND_PENALTY if message.has_cjk else 0.0
            # Two syllables inside a sentence are too often another word's (收货人 holds the huo ren of 活人).
            contain = not message.has_cjk or len(entry.sound) >= SOUND_CONTAIN_MIN
            sound = _similarity(
                message.sound, entry.sound, weight, not contain or (entry.intent, entry.sound) in suppressed
            )
            score = max(score, sound - penalty)
        return score


def _similarity(message: str, trigger: str, weight: float, suppressed: bool) -> float:
    """Whole-string similarity, or containment of the (shorter) trigger in the message, 0..100."""
    score = fuzz.ratio(message, trigger)
    if len(message) < len(trigger) and message in trigger:
        return score - FRAGMENT_PENALTY
    if suppressed or len(trigger) >= len(message):
        return score
    length = len(trigger) * weight
    if trigger == NUMBER_UNIT * len(trigger):
        return score  # a number alone is no evidence of anything inside a sentence
    if length < 2 and len(message) > SHORT_MESSAGE:
        return score  # one character is no evidence inside a longer message (人 in 你们公司有多少人)
    at = message.find(trigger)
    if at >= 0:
        partial = 100.0 + EARLY_BONUS * (1 - at / len(message))
    elif len(trigger) >= 3:
        partial = fuzz.partial_ratio(trigger, message) - FUZZY_CONTAIN_PENALTY
        if len(trigger) >= BAG_MIN_UNITS and set(trigger) <= set(message):
            partial = max(partial, 100.0 - BAG_PENALTY)
    else:
        return score
    contained = partial - CONTAIN_LENGTH / length - CONTAIN_COVER * (1 - len(trigger) / len(message))
    return max(score, contained)


def _suppressed(entries: Iterable[_Entry], message: _Encoded) -> set[tuple[str, str]]:
    """Triggers found in the message only as part of a longer trigger of another intent that is also there.

    "运费险怎么用" contains 运费 (shipping_fee) but only inside 运费险 (return_refund): the longer match wins.
    """
    found: list[tuple[str, str]] = []
    for entry in entries:
        if entry.negative:
            continue
        for units, whole in ((entry.text, message.text), (entry.sound, message.sound)):
            if units and units in whole:
                found.append((entry.intent, units))
    return {
        (intent, units)
        for intent, units in found
        if any(other != intent and len(longer) > len(units) and units in longer for other, longer in found)
    }


def _keys(units: str) -> set[str]:
    """Index keys: unit bigrams; a one-unit string is its own key."""
    if len(units) == 1:
        return {units}
    return {units[i : i + 2] for i in range(len(units) - 1)}


def _stem(word: str) -> str:
    """Tiny English stemmer: plurals and -ing ("refunds", "tracking"); not -ed, "ordered" is not "order"."""
    if len(word) > 6 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word
