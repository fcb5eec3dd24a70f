"""Match stage: Normalized buyer text -> Ranking of library intents with scores. Pure: no I/O.

Every trigger of every locale is normalised once, when the Matcher is built, and encoded as a string of
*units*: a Chinese character, a pinyin syllable, an English word, a size (S/M/XL) or a number each become
one character, so RapidFuzz compares units, not letters ("hi" never matches inside "this", 包油 and 包邮
share their syllables). Each trigger has two encodings: its text (characters and words) and its sound
(syllables and words), which lets homophone typos and typed pinyin reach Chinese triggers.

Per message we look up an inverted index of unit bigrams to shortlist triggers (never a linear scan;
at most SHORTLIST_PER_INTENT of one intent), score the shortlist with RapidFuzz (whole-string ratio, and
containment of a short trigger in a long message) -- skipping a trigger whose cheap upper bound cannot beat
what its intent already holds, which keeps a 10k-trigger library fast without changing any score -- keep
the best trigger per intent, penalise intents whose negative examples fit better than their triggers, and
abstain when the best score is under the intent's threshold or too close to the runner-up. ``rank_parts``
does the same per question of a message that asks several ("包邮吗 什么时候发货").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz

from csbot.library.model import LibrarySet
from csbot.normalize import PINYIN_SYLLABLES, TOKEN, Normalized, normalize

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

#: Float slack on score bounds, so a bound computed in another order of operations never undercuts a score.
BOUND_SLACK = 1e-6

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
        best = self._best_per_intent(message, keep=max(limit, 2))
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
        weight = WORD_WEIGHT if encoded.english else 1.0
        self._entries.append(
            _Entry(intent, trigger, negative, encoded.english, _units(encoded.text, weight), _units(sound, weight))
        )
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
        text, sound = "".join(text_units), "".join(sound_units)
        return _Encoded(text, sound, english, has_cjk, frozenset(text), frozenset(sound))

    # -- scoring -----------------------------------------------------------------------------------------

    def _shortlist(self, message: _Encoded) -> list[int]:
        counts: Counter[int] = Counter()
        postings = self._postings
        # Sorted: the Counter's insertion order breaks ties in the shortlist, and set order varies per process.
        for key in sorted(_keys(message.text) | _keys(message.sound) | message.text_set | message.sound_set):
            found = postings.get(key)
            if found is not None:
                counts.update(found)
        # Share of each trigger's own keys found in the message: a short trigger fully inside the message
        # outranks a long one that merely shares a common bigram (什么, 怎么).
        key_counts = self._key_counts
        # Tuples compare in C (no key function per candidate); -order keeps a stable tie-break. They are all
        # distinct, so a full sort (in C) gives exactly heapq.nlargest's top, without its Python loop.
        ranked = [(count / key_counts[i], -order, i) for order, (i, count) in enumerate(counts.items())]
        ranked.sort(reverse=True)
        entries = self._entries
        taken: dict[str, int] = {}
        shortlist: list[int] = []
        for _, _, i in ranked[:SHORTLIST]:
            entry = entries[i]
            if not entry.negative:
                held = taken.get(entry.intent, 0)
                if held >= SHORTLIST_PER_INTENT:
                    continue
                taken[entry.intent] = held + 1
            shortlist.append(i)
        return shortlist

    def _best_per_intent(self, message: _Encoded, keep: int) -> dict[str, Candidate]:
        """Best trigger per intent over the shortlist, with negative examples applied.

        Exact, but lazy: once an intent holds a score, a further trigger of it is scored only when a cheap
        upper bound of its score (from lengths and the units it shares with the message) could beat that.
        In a big library the shortlist is full of variants of the same few intents, so most are skipped.
        Likewise a trigger of an intent without a score yet is scored only if its bound could place the
        intent among the best ``keep`` (all the caller reads: the top ``limit`` and the runner-up), even
        after a negative example pushed those down: the others' scores never reach the result.
        """
        shortlist = [self._entries[i] for i in self._shortlist(message)]
        suppressed = _suppressed(shortlist, message)
        with_sound = not message.english
        sound_penalty = SOUND_PENALTY if message.has_cjk else 0.0
        best: dict[str, tuple[float, _Entry]] = {}
        leaders: list[tuple[float, str]] = []  # the best `keep` intents so far, best first
        gate = -1.0  # a new intent's bound must beat this to matter (see _gate)
        negatives: list[_Entry] = []
        for entry in shortlist:  # best share first, so an intent's best trigger tends to come early
            if entry.negative:
                negatives.append(entry)
                continue
            held = best.get(entry.intent)
            if held is not None and not _may_beat(entry, message, with_sound, sound_penalty, held[0]):
                continue  # cannot beat the held score; on a tie the earlier trigger stays, as when all are scored
            if held is None and gate >= 0 and not _may_beat(entry, message, with_sound, sound_penalty, gate):
                continue  # cannot reach the best `keep`, even penalised
            score = self._score(entry, message, suppressed)
            if held is None or score > held[0]:
                best[entry.intent] = (score, entry)
                gate = _gate(leaders, entry.intent, score, keep)
        positive = {intent: Candidate(intent, round(score, 1), e.trigger) for intent, (score, e) in best.items()}
        negative: dict[str, float] = {}
        for entry in negatives:
            candidate = positive.get(entry.intent)
            if candidate is None:
                continue  # a negative example only ever pushes down an intent that has a candidate
            floor = max(candidate.score - NEGATIVE_SLACK, negative.get(entry.intent, -1.0))
            if not _may_beat(entry, message, with_sound, sound_penalty, floor - 2 * BOUND_SLACK):
                continue
            negative[entry.intent] = max(self._score(entry, message, suppressed), negative.get(entry.intent, 0.0))
        for intent, candidate in list(positive.items()):
            if negative.get(intent, 0.0) >= candidate.score - NEGATIVE_SLACK:
                penalised = max(0.0, candidate.score - NEGATIVE_PENALTY)
                positive[intent] = Candidate(intent, penalised, candidate.trigger)
        return positive

    def _score(self, entry: _Entry, message: _Encoded, suppressed: set[tuple[str, str]]) -> float:
        text = entry.text
        score = _similarity(message.text, message.text_set, text, (entry.intent, text.units) in suppressed)
        if not message.english and not entry.english:
            penalty = SOUND_PENALTY if message.has_cjk else 0.0
            sound = entry.sound
            # Two syllables inside a sentence are too often another word's (收货人 holds the huo ren of 活人).
            contain = not message.has_cjk or sound.length >= SOUND_CONTAIN_MIN
            if _bound(message.sound, message.sound_set, sound, contain) - penalty <= score:
                return score  # the sound cannot do better than the characters already did
            blocked = not contain or (entry.intent, sound.units) in suppressed
            score = max(score, _similarity(message.sound, message.sound_set, sound, blocked) - penalty)
        return score


def _gate(leaders: list[tuple[float, str]], intent: str, score: float, keep: int) -> float:
    """Record an intent's new best score among the ``keep`` leaders (scores only ever rise); return the
    bound a further intent must beat to matter, or -1 while fewer than ``keep`` intents have a score.

    An intent whose score is at most the keep-th leader's less NEGATIVE_PENALTY (and 0.2 for the rounding
    to one decimal on both sides) stays below every leader even if a negative example penalises them all.
    """
    for at, (_, name) in enumerate(leaders):
        if name == intent:
            leaders[at] = (score, intent)
            break
    else:
        if len(leaders) < keep:
            leaders.append((score, intent))
        elif score > leaders[-1][0]:
            leaders[-1] = (score, intent)
        else:
            return leaders[-1][0] - NEGATIVE_PENALTY - 0.2 if len(leaders) >= keep else -1.0
    leaders.sort(reverse=True)
    return leaders[-1][0] - NEGATIVE_PENALTY - 0.2 if len(leaders) >= keep else -1.0


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


def _may_beat(entry: _Entry, message: _Encoded, with_sound: bool, sound_penalty: float, held: float) -> bool:
    """Could :meth:`Matcher._score` of this entry exceed ``held``? Upper bounds only, text before sound."""
    if _bound(message.text, message.text_set, entry.text, True) > held:
        return True
    if not with_sound or entry.english:
        return False
    sound = entry.sound
    contain = not message.has_cjk or sound.length >= SOUND_CONTAIN_MIN
    return _bound(message.sound, message.sound_set, sound, contain) - sound_penalty > held


def _bound(message: str, message_set: frozenset[str], trigger: _Units, may_contain: bool) -> float:
    """An upper bound of :func:`_similarity`, from lengths and shared units only (no alignment).

    Any alignment (ratio, or partial_ratio's window) matches at most ``shared`` units of the trigger:
    those whose unit occurs in the message at all, counted with the trigger's largest repeat.
    """
    lm, lt = len(message), trigger.length
    present = len(trigger.unit_set & message_set)
    shared = present * trigger.repeat
    if shared > lt:
        shared = lt
    bound = 200.0 * (shared if shared < lm else lm) / (lm + lt + 1e-9)  # Indel ratio: 2 * common / total
    if may_contain and trigger.contain_ok and lt < lm and (lm <= SHORT_MESSAGE or not trigger.single):
        cover = trigger.contain_cost + CONTAIN_COVER * (1 - lt / lm)
        if present == trigger.distinct:  # found, or every unit there in another order (bag)
            contained = 100.0 + EARLY_BONUS - cover
        elif lt >= 3:  # partial_ratio over a window (or a shorter one at an edge) of the message
            contained = 200.0 * shared / (lt + shared) - FUZZY_CONTAIN_PENALTY - cover
        else:
            contained = 0.0
        if contained > bound:
            bound = contained
    return bound + BOUND_SLACK


def _similarity(message: str, message_set: frozenset[str], entry: _Units, suppressed: bool) -> float:
    """Whole-string similarity, or containment of the (shorter) trigger in the message, 0..100."""
    trigger = entry.units
    score = fuzz.ratio(message, trigger)
    lm, lt = len(message), len(trigger)
    if lm < lt and message in trigger:
        return score - FRAGMENT_PENALTY
    if suppressed or lt >= lm or not entry.contain_ok:
        return score
    if entry.single and lm > SHORT_MESSAGE:
        return score  # one character is no evidence inside a longer message (人 in 你们公司有多少人)
    at = message.find(trigger)
    if at >= 0:
        partial = 100.0 + EARLY_BONUS * (1 - at / lm)
    elif lt >= 3:
        partial = fuzz.partial_ratio(trigger, message) - FUZZY_CONTAIN_PENALTY
        if lt >= BAG_MIN_UNITS and entry.unit_set <= message_set:
            partial = max(partial, 100.0 - BAG_PENALTY)
    else:
        return score
    contained = partial - entry.contain_cost - CONTAIN_COVER * (1 - lt / lm)
    return max(score, contained)


def _suppressed(entries: Iterable[_Entry], message: _Encoded) -> set[tuple[str, str]]:
    """Triggers found in the message only as part of a longer trigger of another intent that is also there.

    "运费险怎么用" contains 运费 (shipping_fee) but only inside 运费险 (return_refund): the longer match wins.
    """
    found: list[tuple[str, str]] = []
    for entry in entries:
        if entry.negative:
            continue
        for units, whole in ((entry.text.units, message.text), (entry.sound.units, message.sound)):
            if units and units in whole:
                found.append((entry.intent, units))
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
