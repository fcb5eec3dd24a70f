"""Match stage: Normalized buyer text -> Ranking of library intents with scores. Pure: no I/O.

Every trigger of every locale is normalised once, when the Matcher is built, and encoded as a string of
*units*: a Chinese character, a pinyin syllable, an English word, a size (S/M/XL) or a number each become
one character, so RapidFuzz compares units, not letters ("hi" never matches inside "this", 包油 and 包邮
share their syllables). Each trigger has two encodings: its text (characters and words) and its sound
(syllables and words), which lets homophone typos and typed pinyin reach Chinese triggers.

Per message we look up an inverted index of unit bigrams to shortlist triggers (never a linear scan;
at most SHORTLIST_PER_INTENT of one intent), score the shortlist with RapidFuzz (whole-string ratio, and
containment of a short trigger in a long message), keep the best trigger per intent, penalise intents whose
negative examples fit better than their triggers, and abstain when the best score is under the intent's
threshold or too close to the runner-up. ``rank_parts`` does the same per question of a message that asks
several ("包邮吗 什么时候发货").

Speed without changing a result: every shortlisted trigger gets a cheap upper bound of its score (one LCS
length per encoding, counted in C); triggers are scored highest bound first, and only while the bound can
still beat what their intent holds or what it takes to reach the caller's top ``limit``; a score that could
only lose is not computed in full (RapidFuzz score_cutoff). Rankings are identical to scoring the whole
shortlist (checked on the dev set and the real turns, at the real size and at 10k triggers).

Typos in English: a word of an English message that no trigger has (pakage, availble, adress) stands for the
one known English word a missing, extra or swapped letter away, found with RapidFuzz (see TYPO_MIN_LENGTH).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain, compress, repeat
from operator import attrgetter, truediv
from typing import NamedTuple

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, LCSseq, Levenshtein

from csbot.library.model import LibrarySet
from csbot.normalize import PINYIN_SYLLABLES, SIZE_LETTERS, TOKEN, Normalized, normalize

#: Shortlist size: the triggers with the largest share of their bigrams in the message are scored.
SHORTLIST = 100
#: ... but at most this many triggers of one intent (its best shares first; negative examples are not
#: capped). In a big library the shortlist fills with variants of a few intents, whose further triggers
#: rarely beat the ones already scored; capping them halves the time per message at 10k triggers. Checked
#: on the dev set (top-1, top-3 and auto-send unchanged) and the real turns (see benchmarks/matcher_notes.md).
SHORTLIST_PER_INTENT = 10
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
#: Typo tolerance (English messages only): a word (stem) no English trigger has, of at least TYPO_MIN_LENGTH
#: letters, stands for the known English word one edit away, when exactly one is: a letter missing or extra, or
#: two neighbours swapped (pakage, adress, recieve; OSA distance 1). Not a replaced letter, nor two edits for
#: long words: on ~1,700 real English words of this repo's docs and templates those corrected real words
#: (receiver/received, instance/insurance, think/thank), this rule none. Also left alone: another first letter
#: (weather/leather) and another form of a known word (charger/charge, arrived/arrive: one starts the other).
TYPO_MIN_LENGTH = 6
#: Distinct unknown words whose correction is remembered (per Matcher).
TYPO_CACHE = 4096

#: Pleasantries: no question of their own beside one (see Matcher._behind_opener and pipeline.question_parts).
PLEASANTRIES = frozenset({"greeting", "closing"})
#: Intents that open a message: when one comes first, what the rest of the message asks decides.
OPENERS = frozenset({"greeting"})
#: Units (characters, English words) the rest of a message needs, besides its opener, to ask something.
OPENER_REST_MIN = 3
#: A rest that comes this close to a pleasantry's threshold is a pleasantry too ("您好，请问这边能咨询吗").
OPENER_NEAR = 5.0
#: How many pleasantries are taken away, one after the other, to find what a message asks ("你好 在吗 亲 …").
OPENER_PASSES = 3

#: Float slack on score bounds, so a bound computed in another order of operations never undercuts a score.
BOUND_SLACK = 1e-6
#: The floor of a trigger whose intent has no score yet and no gate to pass: every score counts.
NO_FLOOR = -math.inf

NUMBER_UNIT = "#"
SIZE_UNIT = "\u00a7"
#: Private-use code points: syllables and known words get fixed codes; unknown words in a message get
#: throwaway codes from plane 16 so they never equal anything in the index. Known codes come from the BMP's
#: private-use area first: a string of BMP characters takes 2 bytes per character instead of 4, and RapidFuzz
#: and str compare those faster (partial_ratio ~1.5x). Only when that area is full do codes go on in plane 15.
#: Codes keep their order either way (BMP area < plane 15 < plane 16, all above every CJK unit), so sorting
#: units gives the same order as with plane-15 codes only.
FIRST_CODE = 0xE000
BMP_CODES = 0xF900 - FIRST_CODE
MORE_CODES = 0xF0000
FIRST_UNKNOWN = 0x100000

UNITS = attrgetter("units")
UNIT_SET = attrgetter("unit_set")
TEXT = attrgetter("text")
SOUND = attrgetter("sound")
TWIN = attrgetter("twin")
TEXT_UNITS = attrgetter("text.units")
SOUND_UNITS = attrgetter("sound.units")


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
    # "confident" | "first_question" (see Matcher._first_question) | "below_threshold" | "ambiguous" | "empty"
    # | "opener" (see Matcher._behind_opener)
    reason: str


@dataclass(frozen=True, slots=True)
class _Units:
    """One encoding (text or sound) of a trigger, with what scoring needs precomputed at build time."""

    units: str
    unit_set: frozenset[str]
    length: int
    distinct: int  # len(unit_set)
    repeat: int  # how often its most repeated unit occurs
    contain_ok: bool  # not empty and not a lone number, which is no evidence inside a sentence
    single: bool  # weighs less than two units: evidence inside a very short message only
    contain_cost: float  # CONTAIN_LENGTH / weighted length


@dataclass(frozen=True, slots=True)
class _Entry:
    """One trigger or negative example, encoded."""

    intent: str
    trigger: str
    negative: bool
    english: bool
    text: _Units
    sound: _Units
    # The sound has the text's length and containment costs (the usual case): see _bounds' ``like``.
    twin: bool


@dataclass(frozen=True, slots=True)
class _Encoded:
    text: str
    sound: str
    english: bool
    has_cjk: bool
    text_set: frozenset[str]
    sound_set: frozenset[str]


class Matcher:
    """Built once from the LibrarySet (the whole index is precomputed); ``rank`` is then cheap and pure."""

    def __init__(self, libraries: LibrarySet) -> None:
        self._libraries = libraries
        self._codes: dict[str, str] = {}
        self._entries: list[_Entry] = []
        self._postings: dict[str, list[int]] = {}
        self._key_counts: list[int] = []
        self._capped: list[str | None] = []  # per entry: its intent if a trigger, None if a negative (never capped)
        self._english_words: set[str] = set()  # stems of the English triggers' words: what a typo may stand for
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
        ranking = self._rank(normalized, limit)
        if ranking.top is not None and ranking.top.intent in OPENERS:
            return self._behind_opener(ranking, limit)
        if ranking.reason == "ambiguous":
            # A tie with a greeting in front ("你好 这个防水吗") is settled by what follows the greeting.
            opener = next((c for c in ranking.candidates[:2] if c.intent in OPENERS), None)
            if opener is not None:
                behind = self._behind_opener(Ranking(normalized, ranking.candidates, opener, "confident"), limit)
                if behind.top is not None and behind.top.intent not in OPENERS:
                    return behind
            return self._first_question(ranking, limit)
        return ranking

    def _first_question(self, ranking: Ranking, limit: int) -> Ranking:
        """Two intents within the margin of each other may be two questions ("默认发什么快递 大概几天到"):
        the reply answers the first one asked first. So when the message has several question parts and the
        first part that confidently asks something (a pleasantry asks nothing) asks one of the two, that is
        the top. Otherwise the message stays ambiguous and an agent answers."""
        tied = {c.intent for c in ranking.candidates[:2]}
        parts = [part for part in map(normalize, split_questions(ranking.normalized.original)) if part.text]
        for part in parts if len(parts) > 1 else ():
            top = self._rank(part, limit).top
            if top is None or top.intent in PLEASANTRIES:
                continue
            if top.intent not in tied:
                break
            whole = next(c for c in ranking.candidates if c.intent == top.intent)
            rest = tuple(c for c in ranking.candidates if c is not whole)
            return Ranking(ranking.normalized, (whole, *rest), whole, "first_question")
        return ranking

    def _rank(self, normalized: Normalized, limit: int) -> Ranking:
        """The ranking of the whole text as it stands (no opener taken away)."""
        if not normalized.text:
            return Ranking(normalized, (), None, "empty")
        message = self._encode(normalized, learn=False)
        best = self._best_per_intent(message, keep=max(limit, 2))
        ordered = sorted(best.values(), key=lambda c: (-c.score, c.intent))
        candidates = tuple(ordered[:limit])
        if not candidates:
            return Ranking(normalized, (), None, "below_threshold")
        top = candidates[0]
        if top.score < self._threshold(normalized, top.intent):
            return Ranking(normalized, candidates, None, "below_threshold")
        margin = self._libraries.library(normalized.lang).margin
        if len(ordered) > 1 and top.score - ordered[1].score < margin:
            return Ranking(normalized, candidates, None, "ambiguous")
        return Ranking(normalized, candidates, top, "confident")

    def _behind_opener(self, ranking: Ranking, limit: int) -> Ranking:
        """A greeting in front of a request is no answer to it ("你好 这个手机支持双卡吗"): what the message
        holds besides its pleasantries decides. The greeting is taken away, then any pleasantry the rest still
        ranks as (or comes within OPENER_NEAR of), up to OPENER_PASSES times. If nothing but pleasantries was
        there, or too little to ask anything ("你好呀 小二", "hi bro"), the greeting stands. If what is left
        ranks confidently, that is the ranking ("hi, can u do a discount?" is bargaining). Otherwise the
        message is not a greeting either: abstain (reason "opener"), and an agent answers what was asked.
        A greeting matched by its sound or fuzzily, or found further in, leaves the ranking as it is."""
        assert ranking.top is not None
        rest, pleasantry = ranking.normalized, ranking.top
        for passes in range(OPENER_PASSES):
            span = _find_ignoring_spaces(rest.text, normalize(pleasantry.trigger).text)
            if span is None or (passes == 0 and self._units(rest.text[: span[0]]) >= OPENER_REST_MIN):
                return ranking  # no exact span to take away (or not in front): what is left is a pleasantry
            # What stood before the opener (亲, excuse me) opens too; a later pleasantry is cut out.
            rest = normalize(f"{rest.text[: span[0]] if passes else ''} {rest.text[span[1]:]}".strip())
            if not rest.text:
                return ranking
            behind = self._rank(rest, limit)
            nearest = behind.top or (behind.candidates[0] if behind.candidates else None)
            if nearest is None or nearest.intent not in PLEASANTRIES or (
                    behind.top is None and nearest.score < self._threshold(rest, nearest.intent) - OPENER_NEAR):
                break  # something other than a pleasantry is left
            pleasantry = nearest
        else:
            return ranking
        if behind.top is not None:
            return Ranking(ranking.normalized, behind.candidates, behind.top, behind.reason)
        if self._units(rest.text) < OPENER_REST_MIN:
            return ranking  # too short to ask anything
        return Ranking(ranking.normalized, ranking.candidates, None, "opener")

    def _threshold(self, normalized: Normalized, intent: str) -> float:
        return self._libraries.settings_library(normalized.lang, intent).threshold(intent)

    def _units(self, text: str) -> int:
        """How many units (characters, English words other than stopwords) a piece of normalised text has."""
        return len(self._encode(normalize(text), learn=False).text) if text.strip() else 0

    def rank_parts(self, normalized: Normalized, limit: int = 3) -> list[Ranking]:
        """One Ranking per question in the message ("包邮吗 什么时候发货"), confident parts best first.

        The original text is split into parts at clause punctuation, at spaces between Chinese clauses and
        after a question particle that ends a question inside a run (有货吗走什么快递). Each part is ranked
        on its own; the confident ones are returned, one per intent (the better part wins), best score
        first. A message of one part, or one where no part is confident, gives ``[rank(normalized)]``, so
        the list is never empty and its first element is what the pipeline would act on anyway.
        """
        parts = [normalize(p) for p in split_questions(normalized.original)]
        parts = [p for p in parts if p.text]
        if len(parts) < 2:
            return [self.rank(normalized, limit)]
        best: dict[str, tuple[int, Ranking]] = {}
        for position, part in enumerate(parts):
            ranking = self.rank(part, limit)
            top = ranking.top
            if top is None:
                continue
            held = best.get(top.intent)
            if held is None or top.score > _top_score(held[1]):
                best[top.intent] = (position, ranking)
        if not best:
            return [self.rank(normalized, limit)]
        ordered = sorted(best.values(), key=lambda row: (-_top_score(row[1]), row[0]))
        return [ranking for _, ranking in ordered]

    def would_auto_send(self, ranking: Ranking) -> bool:
        """The top intent is `mode: auto` and clears its auto threshold, and the message is words only: one that
        also carries data (a link, an order or phone number; ``Normalized.data``) is about that data, which
        the matcher cannot read ("[email] 辛苦你们了", "税号：…"), so an agent confirms the reply."""
        top = ranking.top
        if top is None or ranking.normalized.data:
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
        weight = WORD_WEIGHT if encoded.english else 1.0
        text, heard = _units(encoded.text, weight), _units(sound, weight)
        twin = (heard.length, heard.contain_cost, heard.single) == (text.length, text.contain_cost, text.single) and (
            text.contain_ok or not heard.contain_ok
        )
        self._entries.append(_Entry(intent, trigger, negative, encoded.english, text, heard, twin))
        keys = _keys(encoded.text) | _keys(encoded.sound)
        self._key_counts.append(len(keys))
        self._capped.append(None if negative else intent)
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
                known = len(self._codes)
                found = chr(FIRST_CODE + known if known < BMP_CODES else MORE_CODES + known - BMP_CODES)
                self._codes[key] = found
                return found
            return unknown.setdefault(key, chr(FIRST_UNKNOWN + len(unknown)))

        def word(token: str) -> str:
            if token.isdigit() and not lone_number:
                return NUMBER_UNIT
            if token in SIZE_LETTERS:
                return SIZE_UNIT
            if not english:
                return code("w", token)
            stem = _stem(token)
            if learn:
                if token.isalpha():
                    self._english_words.add(stem)
                return code("w", stem)
            found = self._codes.get("w:" + stem)
            if found is not None:
                return found
            if token.isalpha():  # unknown: maybe a typo of a known word
                stem = self._typo_fix(stem) or stem
            return code("w", stem)

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
        text, sound = "".join(text_units), "".join(sound_units)
        return _Encoded(text, sound, english, has_cjk, frozenset(text), frozenset(sound))

    @functools.cached_property
    def _typo_fix(self) -> Callable[[str], str | None]:
        """The known English word (stem) that an unknown one is a typo of, or None (see TYPO_MIN_LENGTH).

        Built on first use, once the index is complete; memoised per word, as the same typos come back.
        Holds the word lists, not the Matcher.
        """
        by_initial: dict[str, list[str]] = {}
        for known in sorted(self._english_words - ENGLISH_STOPWORDS):
            by_initial.setdefault(known[0], []).append(known)

        @functools.lru_cache(maxsize=TYPO_CACHE)
        def fix(word: str) -> str | None:
            if len(word) < TYPO_MIN_LENGTH or word in ENGLISH_STOPWORDS:
                return None
            near = process.extract(word, by_initial.get(word[0], ()), scorer=OSA.distance, score_cutoff=1, limit=None)
            typos = [
                known
                for known, _, _ in near
                if not (word.startswith(known) or known.startswith(word))  # another form of it
                and (len(known) != len(word) or Levenshtein.distance(word, known) != 1)  # a replaced letter
            ]
            return typos[0] if len(typos) == 1 else None  # none, or two equally close

        return fix

    # -- scoring -----------------------------------------------------------------------------------------

    def _shortlist(self, message: _Encoded) -> list[int]:
        # Sorted: the Counter's insertion order breaks ties in the shortlist, and set order varies per process.
        keys = sorted(_keys(message.text) | _keys(message.sound) | message.text_set | message.sound_set)
        # One Counter over the chained postings: the counting loop runs in C, in the same order as one
        # update per key would.
        counts = Counter(chain.from_iterable(map(self._postings.get, keys, repeat(()))))
        # Share of each trigger's own keys found in the message: a short trigger fully inside the message
        # outranks a long one that merely shares a common bigram (什么, 怎么). Computed by map() in C.
        triggers = list(counts)
        shares = list(map(truediv, counts.values(), map(self._key_counts.__getitem__, triggers)))
        # Best share first, ties in insertion order: a stable sort of the positions by share, whose keys are
        # bare floats (compared in C; the same order as sorting (share, -order) tuples, at half the cost).
        ranked = sorted(range(len(shares)), key=shares.__getitem__, reverse=True)[:SHORTLIST]
        capped = self._capped
        taken: dict[str, int] = {}
        shortlist: list[int] = []
        for i in map(triggers.__getitem__, ranked):
            intent = capped[i]
            if intent is not None:
                held = taken.get(intent, 0)
                if held >= SHORTLIST_PER_INTENT:
                    continue
                taken[intent] = held + 1
            shortlist.append(i)
        return shortlist

    def _best_per_intent(self, message: _Encoded, keep: int) -> dict[str, Candidate]:
        """Best trigger per intent over the shortlist, with negative examples applied.

        Exact for every intent that can reach the result, but lazy: a trigger is scored only when a cheap
        upper bound of its score (from its LCS with the message, see ``_bounds``) beats its floor:
        the score its intent already holds (in a big library the shortlist is full of variants of the same
        few intents, so most are skipped), and the gate: once ``keep`` intents hold a score, an intent
        whose score stays under every one of them cannot reach the top ``limit`` or be the runner-up (all
        the caller reads). A leader can only lose NEGATIVE_PENALTY to a negative example of its intent
        that is in the shortlist, so only those leaders are counted as penalised. Scores below the floor
        are not even computed exactly (see ``_score``): such an intent is left out of the result.
        """
        shortlist = list(map(self._entries.__getitem__, self._shortlist(message)))
        suppressed = _suppressed(shortlist, message)
        sound_penalty = SOUND_PENALTY if message.has_cjk else 0.0
        penalisable = {entry.intent for entry in shortlist if entry.negative}
        text_bounds, sound_bounds = _entry_bounds(message, shortlist)
        uppers = [
            text if entry.english or text >= sound - sound_penalty else sound - sound_penalty
            for entry, text, sound in zip(shortlist, text_bounds, sound_bounds, strict=True)
        ]
        # Highest bound first: the likely leaders are scored first, which raises the gate early, and once a
        # bound is under the gate so are all after it. Ties keep the shortlist order (best share first).
        bounded = sorted(
            (at for at, entry in enumerate(shortlist) if not entry.negative), key=uppers.__getitem__, reverse=True
        )
        best: dict[str, tuple[float, int, _Entry]] = {}
        leaders: list[tuple[float, str]] = []  # the `keep` intents with the best worst-case score, best first
        gate = NO_FLOOR  # what an intent's score must beat to matter (see _gate)
        for at in bounded:
            bound, entry = uppers[at], shortlist[at]
            if bound <= gate:
                break
            held = best.get(entry.intent)
            if held is None:
                floor = gate
            elif bound <= held[0]:
                continue
            else:
                # A trigger later in the shortlist must beat the held score; an earlier one wins a tie, so its
                # score must come back exact even when equal to the held one.
                floor = held[0] if at > held[1] else held[0] - BOUND_SLACK
                if gate > floor:
                    floor = gate
            score = _score(entry, message, suppressed, floor, text_bounds[at], sound_bounds[at])
            if score <= floor:
                continue
            if held is not None and (score < held[0] or (score == held[0] and at > held[1])):
                continue  # on a tie the trigger earlier in the shortlist stays, as when scored in order
            best[entry.intent] = (score, at, entry)
            worst = score - NEGATIVE_PENALTY if entry.intent in penalisable else score
            gate = _gate(leaders, entry.intent, worst, keep)
        positive = {intent: Candidate(intent, round(score, 1), e.trigger) for intent, (score, _, e) in best.items()}
        negative: dict[str, float] = {}
        for at, entry in enumerate(shortlist):
            candidate = positive.get(entry.intent) if entry.negative else None
            if candidate is None:
                continue  # a negative example only ever pushes down an intent that has a candidate
            floor = max(candidate.score - NEGATIVE_SLACK, negative.get(entry.intent, -1.0)) - 2 * BOUND_SLACK
            if uppers[at] <= floor:
                continue
            score = _score(entry, message, suppressed, floor, text_bounds[at], sound_bounds[at])
            negative[entry.intent] = max(score, negative.get(entry.intent, 0.0))
        for intent, candidate in list(positive.items()):
            if negative.get(intent, 0.0) >= candidate.score - NEGATIVE_SLACK:
                penalised = max(0.0, candidate.score - NEGATIVE_PENALTY)
                positive[intent] = Candidate(intent, penalised, candidate.trigger)
        return positive


def _score(
    entry: _Entry,
    message: _Encoded,
    suppressed: set[tuple[str, str]],
    floor: float,
    text_bound: float,
    sound_bound: float,
) -> float:
    """The entry's score for the message when it is above ``floor``; otherwise some value <= ``floor``.

    The caller only ever keeps a score that beats ``floor``, so the work that could only produce a lower
    one is skipped: an encoding whose bound (from :func:`_bounds`) is under the floor, and a partial
    alignment that cannot beat it (RapidFuzz's score_cutoff).
    """
    score = NO_FLOOR
    if text_bound > floor:
        text = entry.text
        suppress = bool(suppressed) and (entry.intent, text.units) in suppressed
        score = _similarity(message.text, message.text_set, text, suppress, floor, text_bound)
    if not message.english and not entry.english:
        penalty = SOUND_PENALTY if message.has_cjk else 0.0
        base = score if score > floor else floor
        if sound_bound - penalty <= base:
            return score  # the sound cannot do better than the characters already did, or than needed
        sound = entry.sound
        # Two syllables inside a sentence are too often another word's (收货人 holds the huo ren of 活人).
        contain = not message.has_cjk or sound.length >= SOUND_CONTAIN_MIN
        blocked = not contain or (bool(suppressed) and (entry.intent, sound.units) in suppressed)
        sound_floor = base + penalty - BOUND_SLACK
        similarity = _similarity(message.sound, message.sound_set, sound, blocked, sound_floor, sound_bound)
        score = max(score, similarity - penalty)
    return score


def _gate(leaders: list[tuple[float, str]], intent: str, worst: float, keep: int) -> float:
    """Record an intent's new worst-case score (its score, less NEGATIVE_PENALTY if a negative example of
    it is in the shortlist; only ever rising) among the ``keep`` leaders; return the gate: what a further
    intent's score must beat to matter, or NO_FLOOR while fewer than ``keep`` intents have a score.

    An intent whose score is at most every leader's worst case less 0.2 (the rounding to one decimal on
    both sides) stays below each of them in the Ranking, however the negative examples fall.
    """
    for at, (_, name) in enumerate(leaders):
        if name == intent:
            leaders[at] = (worst, intent)
            break
    else:
        if len(leaders) < keep:
            leaders.append((worst, intent))
        elif worst > leaders[-1][0]:
            leaders[-1] = (worst, intent)
        else:
            return leaders[-1][0] - 0.2
    leaders.sort(reverse=True)
    return leaders[-1][0] - 0.2 if len(leaders) >= keep else NO_FLOOR


def _units(units: str, weight: float) -> _Units:
    length = len(units) * weight
    return _Units(
        units=units,
        unit_set=frozenset(units),
        length=len(units),
        distinct=len(set(units)),
        repeat=max(Counter(units).values(), default=1),
        contain_ok=units != NUMBER_UNIT * len(units),
        single=length < 2,
        contain_cost=CONTAIN_LENGTH / length if length else 0.0,
    )


def _entry_bounds(message: _Encoded, entries: list[_Entry]) -> tuple[list[float], list[float]]:
    """Upper bounds of each entry's text and sound similarity with the message (see :func:`_bounds`);
    the sound's is -inf for an English message, which has none."""
    text = _bounds(message.text, message.text_set, list(map(TEXT, entries)), 0)
    if message.english:
        return text.bounds, [NO_FLOOR] * len(entries)
    contain_min = SOUND_CONTAIN_MIN if message.has_cjk else 0
    sounds = list(map(SOUND, entries))
    twins = list(map(TWIN, entries)) if len(message.sound) == len(message.text) else None
    return text.bounds, _bounds(message.sound, message.sound_set, sounds, contain_min, text, twins).bounds


class _Bounds(NamedTuple):
    bounds: list[float]  # per trigger, an upper bound of its _similarity with the message
    common: list[int]  # per trigger, its LCS length with the message
    bags: list[bool]  # per trigger, whether every one of its units is in the message


def _bounds(
    message: str,
    message_set: frozenset[str],
    triggers: list[_Units],
    contain_min: int,
    like: _Bounds | None = None,
    twins: list[bool] | None = None,
) -> _Bounds:
    """Upper bounds of :func:`_similarity` of each trigger with the message; cheap: no alignment.

    Each comes from one LCS length (longest common subsequence, counted in C): the whole-string ratio is
    2 * LCS / (both lengths); any window of the message shares at most that LCS with the trigger, so a
    partial alignment scores at most 2 * LCS / (trigger length + LCS); only a trigger that is a
    subsequence of the message (LCS = its length) can be found in it, and only one whose every unit is in
    the message can score as a bag. A trigger shorter than ``contain_min`` is never looked for inside.

    ``like`` and ``twins``: the same entries' bounds in another encoding of a message of the same length
    (the text, for the sound), and which entries have the same length and costs there. The bound grows
    with the LCS and the bag only, so a twin whose LCS is no longer and that is no more of a bag (and
    ``contain_min`` is never lower here) reuses that bound: valid, and most sounds are such twins.
    """
    lm = len(message)
    common = list(map(LCSseq.similarity, map(UNITS, triggers), repeat(message)))
    bags = list(map(message_set.issuperset, map(UNIT_SET, triggers)))
    bounds: list[float] = []
    for at, (trigger, lcs, bag) in enumerate(zip(triggers, common, bags, strict=True)):
        if twins is not None and like is not None and twins[at] and lcs <= like.common[at] and like.bags[at] >= bag:
            bounds.append(like.bounds[at])
            continue
        lt = trigger.length
        bound = 200.0 * lcs / (lm + lt) if lm + lt else 100.0  # fuzz.ratio: the Indel similarity
        if lt < lm and lt >= contain_min and trigger.contain_ok and (lm <= SHORT_MESSAGE or not trigger.single):
            cover = trigger.contain_cost + CONTAIN_COVER * (1 - lt / lm)
            if lcs == lt:  # found, or the partial alignment is perfect
                contained = 100.0 + EARLY_BONUS - cover
            elif lt >= 3:  # partial_ratio over a window (or a shorter one at an edge) of the message
                contained = 200.0 * lcs / (lt + lcs) - FUZZY_CONTAIN_PENALTY - cover
                if bag and lt >= BAG_MIN_UNITS and 100.0 - BAG_PENALTY - cover > contained:
                    contained = 100.0 - BAG_PENALTY - cover
            else:
                contained = 0.0  # a one- or two-unit trigger is only ever found whole
            if contained > bound:
                bound = contained
        bounds.append(bound + BOUND_SLACK)
    return _Bounds(bounds, common, bags)


def _similarity(
    message: str,
    message_set: frozenset[str],
    entry: _Units,
    suppressed: bool,
    floor: float = NO_FLOOR,
    bound: float = math.inf,
) -> float:
    """Whole-string similarity, or containment of the (shorter) trigger in the message, 0..100.

    Exact when above ``floor``, otherwise some value <= ``floor``: containment, the costliest part, is
    looked for only when its ``bound`` (from :func:`_bounds`) beats both the whole-string ratio and
    ``floor``, and the partial alignment only for a score that could.
    """
    trigger = entry.units
    score = fuzz.ratio(message, trigger)
    lm, lt = len(message), entry.length
    if lm < lt and message in trigger:
        return score - FRAGMENT_PENALTY
    if suppressed or lt >= lm or not entry.contain_ok or bound <= (score if score > floor else floor):
        return score
    if entry.single and lm > SHORT_MESSAGE:
        return score  # one character is no evidence inside a longer message (人 in 你们公司有多少人)
    at = message.find(trigger)
    if at >= 0:
        partial = 100.0 + EARLY_BONUS * (1 - at / lm)
    elif lt >= 3:
        bag = lt >= BAG_MIN_UNITS and entry.unit_set <= message_set
        # The partial ratio counts only if, less its costs, it beats the ratio and the floor; with a bag
        # (every unit present) only if it beats the bag's score too. Below `need` RapidFuzz may stop early
        # and return 0, which then loses every max() below, as the exact value would have.
        need = max(score, floor) + FUZZY_CONTAIN_PENALTY + entry.contain_cost + CONTAIN_COVER * (1 - lt / lm)
        need -= BOUND_SLACK
        if bag:
            need = max(need, 100.0 - BAG_PENALTY + FUZZY_CONTAIN_PENALTY)
        found = fuzz.partial_ratio(trigger, message, score_cutoff=need) if need <= 100.0 else 0.0
        partial = found - FUZZY_CONTAIN_PENALTY
        if bag:
            partial = max(partial, 100.0 - BAG_PENALTY)
    else:
        return score
    contained = partial - entry.contain_cost - CONTAIN_COVER * (1 - lt / lm)
    return max(score, contained)


def _suppressed(entries: Iterable[_Entry], message: _Encoded) -> set[tuple[str, str]]:
    """Triggers found in the message only as part of a longer trigger of another intent that is also there.

    "运费险怎么用" contains 运费 (shipping_fee) but only inside 运费险 (return_refund): the longer match wins.
    """
    entries = list(entries)
    found: list[tuple[str, str]] = []
    for encoding, whole in ((TEXT_UNITS, message.text), (SOUND_UNITS, message.sound)):
        # The substring tests run in C (map); only the triggers found are looked at in Python.
        strings = list(map(encoding, entries))
        for entry, string in compress(zip(entries, strings, strict=True), map(whole.__contains__, strings)):
            if string and not entry.negative:
                found.append((entry.intent, string))
    if len(found) < 2:
        return set()
    # Longest first: each found trigger needs checking only against the longer ones before it.
    ordered = sorted(set(found), key=lambda f: -len(f[1]))
    suppressed: set[tuple[str, str]] = set()
    for at, (intent, units) in enumerate(ordered):
        for other, longer in ordered[:at]:
            if other != intent and len(longer) > len(units) and units in longer:
                suppressed.add((intent, units))
                break
    return suppressed


#: Where one question ends and the next may start: clause punctuation (full- and half-width) and line breaks.
CLAUSE_BREAK = re.compile(r"[，,。？?！!；;、~～\n\r…]+|(?<!\d)\.+(?!\d)")  # not the . of 3.5
#: A space between two Chinese characters separates clauses (包邮吗 什么时候发货); between words it does not.
CJK_SPACE = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")
#: 吗 ends a question; when two more Chinese characters follow in the same run, a second question starts.
AFTER_MA = re.compile(r"(?<=[吗嘛])(?=[\u3400-\u9fff]{2})")


def split_questions(text: str) -> list[str]:
    """Raw buyer text -> its question parts, in order (not normalised; empty parts dropped)."""
    parts: list[str] = []
    for clause in CLAUSE_BREAK.split(text):
        for piece in CJK_SPACE.split(clause):
            parts.extend(p.strip() for p in AFTER_MA.split(piece) if p.strip())
    return parts


def _find_ignoring_spaces(text: str, part: str) -> tuple[int, int] | None:
    """Where `part` occurs in `text` when spaces do not count ("你好请问" in "你好 请问…"): (start, end) in
    `text`, or None. Between English words a space does count: "hi" is not found in "this"."""
    if not part:
        return None
    if part.isascii():
        found = re.search(rf"(?<![a-z0-9]){re.escape(part)}(?![a-z0-9])", text)
        return None if found is None else found.span()
    pattern = r"\s*".join(map(re.escape, part.replace(" ", "")))
    found = re.search(pattern, text)
    return None if found is None else found.span()


def _top_score(ranking: Ranking) -> float:
    return ranking.top.score if ranking.top is not None else 0.0


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
