"""Regenerate docs/quality.md: dev-set scores, confusion, failure categories, the hand-written hard Chinese sets
(tests/fixtures/zh_hard_*.jsonl), coverage on real buyer turns, accuracy on hand-labelled random samples of them
(tests/fixtures/real_labels*.jsonl: ids and labels only, joined with the text at run time), and the English
section (tests/fixtures/en_eval.jsonl by half, the later sets written blind, English and mixed real turns,
text-speak probe). Which sets were tuned on and which are still blind is kept below (EN_SETS, REAL_SAMPLES,
ZH_HARD_*) and stated in the report.

    python benchmarks/quality_report.py            # writes docs/quality.md
    python benchmarks/quality_report.py --stdout   # prints it instead

Only aggregate figures are written. The real buyer turns (shared/data, research-only licence) are read at
run time and never quoted; failure categories are illustrated with made-up examples, not dev or real lines.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEV_SET, REAL_SET, ROOT, dev_rows, read_jsonl, real_libraries  # noqa: E402

from csbot.evaluate import ABSTAIN, LABELS, OTHER, EvalReport, evaluate, read_labelled  # noqa: E402
from csbot.library import TAXONOMY, Library, LibrarySet  # noqa: E402
from csbot.match import TYPO_MIN_LENGTH, Matcher, Ranking  # noqa: E402
from csbot.normalize import normalize  # noqa: E402

OUT = ROOT / "docs" / "quality.md"
EN_EVAL = ROOT / "tests" / "fixtures" / "en_eval.jsonl"
#: English sets after the first, each written blind by another colleague: (file, how written, status now).
EN_BLIND = ROOT / "tests" / "fixtures" / "en_blind5.jsonl"
EN_SETS = (
    (ROOT / "tests" / "fixtures" / "en_holdout.jsonl", "second", "tuned on (round 2)"),
    (ROOT / "tests" / "fixtures" / "en_blind3.jsonl", "third", "tuned on (round 3)"),
    (ROOT / "tests" / "fixtures" / "en_blind4.jsonl", "fourth, vocabulary varied on purpose", "tuned on (round 4)"),
    (EN_BLIND, "fifth, overseas buyers of Chinese shops", "**blind**: never tuned on"),
    (ROOT / "tests" / "fixtures" / "en_blind6.jsonl", "sixth, UK, US, Indian, Singaporean and Filipino English",
     "tuned on (round 5)"),
)
#: (round, tuned on, measured on, before, after), as recorded when measured.
EN_ROUNDS = (
    ("2: English typos; generic shop vocabulary", "first and second sets", "third set",
     "81.7 % / 86.7 %", "88.3 % / 91.7 %"),
    ("3: many more ways to say each intent (1,277 triggers)", "sets 1-3", "fourth set",
     "76.7 % / 85.8 %", "85.0 % / 93.3 %"),
    ("3 (same round)", "sets 1-3", "fifth set", "77.5 % / 84.2 %", "89.2 % / 95.0 %"),
    ("4: the fourth set's kinds of misses (403 triggers, 105 negatives)", "sets 1-4", "fifth set",
     "89.2 % / 95.0 %", "90.0 % / 95.0 %"),
    ("none: the sixth set, written blind, scored as it came", "-", "sixth set", "-", "86.7 % / 92.5 %"),
    ("5: the sixth set's kinds of misses (191 triggers, 61 negatives)", "sets 1-4, 6", "fifth set",
     "90.0 % / 95.0 %", "90.0 % / 94.2 %"),
)
#: Hand labels (id and intent only, no text) for random samples of real buyer turns, each labelled before csbot
#: was run on it: (file, how its ids were drawn, status). See real_accuracy_section.
REAL_LABELS = ROOT / "tests" / "fixtures" / "real_labels.jsonl"
REAL_SAMPLES = (
    (REAL_LABELS, "`random.Random(20261204).sample` of 300 over all ids", "tuned on (rounds 1-4)"),
    (ROOT / "tests" / "fixtures" / "real_labels_blind2.jsonl",
     "`Random(20261205)`, 200 of the ids not in the first", "tuned on (rounds 2-4)"),
    (ROOT / "tests" / "fixtures" / "real_labels_blind3.jsonl",
     "`Random(20261206)`, 200 of the ids in neither", "tuned on (rounds 3-4)"),
    (ROOT / "tests" / "fixtures" / "real_labels_blind4.jsonl",
     "`Random(20261207)`, 200 of the ids in none of the three", "tuned on (rounds 3-4)"),
    (ROOT / "tests" / "fixtures" / "real_labels_blind5.jsonl",
     "`Random(20261208)`, 200 of the ids in none of the four", "tuned on (round 4)"),
)
#: The blind sample: never tuned on (the honest figure for real buyers now).
REAL_LABELS_BLIND = ROOT / "tests" / "fixtures" / "real_labels_blind6.jsonl"
REAL_BLIND_DRAWN = "`Random(20261209)`, 200 of the ids in none of the five"
#: Hand-written hard Chinese messages (the held-out kind the eval README announces), each set written blind by a
#: colleague who saw only the taxonomy and the dev set: (file, shops, status now).
ZH_HARD_BLIND = ROOT / "tests" / "fixtures" / "zh_hard_c.jsonl"
ZH_HARD_SETS = (
    (ROOT / "tests" / "fixtures" / "zh_hard_a.jsonl",
     "A: apparel, shoes, cosmetics, snacks, baby products; Taobao style",
     "tuned on (rounds 3-4)"),
    (ROOT / "tests" / "fixtures" / "zh_hard_b.jsonl", "B: phones, small appliances, furniture, tea, books; JD and "
     "WeChat-shop style", "tuned on (round 4)"),
    (ZH_HARD_BLIND, "C: sports, pets, fresh fruit and seafood, jewellery, toys, car accessories; Taobao, Pinduoduo "
     "and Douyin style, dialect words", "**blind**: never tuned on"),
    (ROOT / "tests" / "fixtures" / "zh_hard_d.jsonl", "D: household and kitchen, digital accessories, stationery, "
     "plants, camping; some Cantonese", "tuned on (round 5)"),
    (ROOT / "tests" / "fixtures" / "zh_hard_e.jsonl", "E: clothing, bags, watches, supplements, pet food, "
     "instruments, second-hand; terse phone typing and abbreviations", "tuned on (round 6)"),
    (ROOT / "tests" / "fixtures" / "zh_hard_f.jsonl", "F: groceries, baby goods, sportswear, appliances, car "
     "accessories, books; Sichuan, northeastern and Shanghainese words, voice input",
     "tuned on (round 7, not kept)"),
    (ROOT / "tests" / "fixtures" / "zh_hard_g.jsonl", "G: cosmetics, jewellery, home textiles, formula, fresh food, "
     "phones, gifts; internet slang, Taiwan and Hong Kong buyers", "tuned on (round 8, not kept)"),
    (ROOT / "tests" / "fixtures" / "zh_hard_h.jsonl", "H: garden, printers and office supplies, wine, pet supplies, "
     "eyewear, bicycles, party goods; wholesale buyers, Henan and Shandong words", "tuned on (round 8, not kept)"),
    (ROOT / "tests" / "fixtures" / "zh_hard_i.jsonl", "I: medical devices, health food, fishing gear, calligraphy "
     "supplies, flowers and gifts; elderly buyers and their children, handwriting-input typos, pinyin initials",
     "**blind**: never tuned on"),
    (ROOT / "tests" / "fixtures" / "zh_hard_j.jsonl", "J: games and cards, figurines and blind boxes, cosplay, "
     "keyboards and PC parts, tickets, custom printing, cold-chain fruit; students, Chinese mixed with English, "
     "wrong pinyin-input candidates, stickers and order numbers", "**blind**: never tuned on"),
)
#: (round, tuned on, measured on, before, after): top-1 / top-3 as recorded when measured (680280f = before round 3).
ZH_HARD_ROUNDS = (
    ("3: first question of a tie (matcher)", "-", "B", "80.5 % / 94.5 %", "83.0 % / 94.5 %"),
    ("3: first question of a tie (matcher)", "-", "C", "78.0 % / 93.5 %", "78.5 % / 93.5 %"),
    ("3: zh-CN library round on set A and real samples 1-4", "A, real 1-4", "B", "83.0 % / 94.5 %",
     "89.0 % / 97.5 %"),
    ("3 (both steps)", "A, real 1-4", "C", "78.0 % / 93.5 %", "82.5 % / 95.0 %"),
    ("4: zh-CN library round on sets A-B and real samples 1-5; no automatic reply to a message carrying data",
     "A-B, real 1-5", "C", "82.5 % / 95.0 %", "82.0 % / 95.5 %"),
    ("5: Cantonese words read as Mandarin (normaliser)", "-", "D", "77.0 % / 93.5 %", "78.5 % / 94.5 %"),
    ("5: zh-CN library round on set D (no real turns read)", "D", "C", "82.0 % / 95.5 %", "85.0 % / 96.0 %"),
    ("5 (same round)", "D", "E", "78.0 % / 96.0 %", "80.0 % / 96.0 %"),
    ("5 (same round)", "D", "F", "79.5 % / 94.0 %", "81.0 % / 95.0 %"),
    ("5 (same round)", "D", "G", "81.0 % / 96.5 %", "82.5 % / 96.5 %"),
    ("5 (same round)", "D", "H", "73.5 % / 93.5 %", "75.0 % / 95.5 %"),
    ("6: zh-CN library round on set E", "D-E", "C", "85.0 % / 96.0 %", "86.5 % / 96.5 %"),
    ("6 (same round)", "D-E", "F", "81.0 % / 95.0 %", "83.5 % / 96.5 %"),
    ("6 (same round)", "D-E", "G", "82.5 % / 96.5 %", "83.5 % / 96.5 %"),
    ("6 (same round)", "D-E", "H", "75.0 % / 95.5 %", "76.0 % / 96.0 %"),
    ("7, **not kept**: zh-CN library round on set F (+427 triggers)", "D-F", "C", "86.5 % / 96.5 %",
     "86.5 % / 96.0 %"),
    ("7, not kept (same round)", "D-F", "G", "83.5 % / 96.5 %", "84.5 % / 96.0 %"),
    ("7, not kept (same round)", "D-F", "H", "76.0 % / 96.0 %", "76.0 % / 95.5 %"),
    ("8, **not kept**: zh-CN library round on sets G-H (+321 triggers, +37 negatives; G 83.5 -> 99.0 %, "
     "H 76.0 -> 98.0 %)", "G-H", "C", "86.5 % / 96.5 %", "86.5 % / 96.0 %"),
    ("8, not kept (same round; one wrong automatic reply, none before)", "G-H", "I", "84.0 % / 96.5 %",
     "85.0 % / 96.5 %"),
    ("8, not kept (same round)", "G-H", "J", "89.0 % / 98.5 %", "88.5 % / 99.0 %"),
)
#: Where triggers and negatives cannot help (what the round-5 to round-8 tuners ran into), made-up examples.
MATCHER_LIMITS = (
    "Every number is one unit (so 300卖不卖 meets 100卖不卖): a trigger with a number matches any number, and "
    "quantity or specification patterns (304不锈钢, 只有五个) cannot be written safely.",
    "Matching by sound joins common syllables: 多少克 ~ 多少可(以), 怎么养 ~ 怎么样, 我要去消费 ~ 我要取消; while a "
    "homophone typo such as 油费 for 邮费 pays the sound penalty and stays under the threshold even with a "
    "trigger.",
    "A short keyword early in a long message (坏了, 拍了, 运费怎么算) can outweigh the request made later in it; a "
    "negative fixes one phrasing at a time.",
    "A tie within the margin goes to the first clause that asks anything (`Matcher._first_question`), which may "
    "be background (前面问了三遍发货时间……帮我接个真人).",
    "Pinyin typed inside a Chinese sentence (…you huo mei) is matched by sound alone and loses to other words of "
    "the same syllables (有活动吗); a pinyin trigger for it cost the real samples (round 8).",
    "No negation: 没有问题 contains 有问题, 质量不错 is one character from 质量不好; negatives cover the common forms.",
    "English stopwords are dropped before matching, so \"is there a charger\" reads as \"the charger\", and "
    "\"change it to black\" (after delivery) as \"change to black\" (before shipping).",
)
#: Changes tried this session and measured, with what they did; none was kept.
NOT_TAKEN = (
    "The first question asked always wins over a better-scoring later one: top-1 down on dev (99.7 -> 99.0 %), "
    "sets A, B and real samples 1, 3, 4; labellers do not consistently label the first question.",
    "A greeting or thank-you matched only fuzzily inside a long message dropped: ±0.5 point on every set.",
    "A character n-gram naive Bayes over the triggers as a second opinion for below-threshold answers: on "
    "real samples 1-5 it rescued about as many `other` lines as right ones.",
    "Every threshold lowered by 2, 4, 6 or 8 points: no set gained top-1 and the real samples lost 1.5-7 points; "
    "a per-intent search over the pooled tuning sets found at most 2 lines to gain for any intent.",
    "Abstaining on a short reply to the agent's question (the real turns' `context_before`): such answers are "
    "right 82-88 % of the time, as often as the rest.",
    "Chinese numerals read as digits before more measure words (瓶盒根袋张台…): blind sets C and F each 0.5 "
    "point lower.",
    "English stopwords kept as words (it, there, what; or is, are, do, does): every English set lower, the blind "
    "fifth 90.0 -> 89.2 % and 85.0 %; the English triggers are written for matching without them.",
)
#: The issue's targets for the English set (tests/test_english.py asserts the same).
EN_TARGETS = "top-1 >= 93 %, top-3 >= 98 %, wrong auto-sends <= 0.5 % of lines"
#: How English buyers shorten words; applied to the en library's own triggers as a robustness probe.
TEXT_SPEAK = ((r"\byou\b", "u"), (r"\byour\b", "ur"), (r"\bare\b", "r"), (r"\bplease\b", "pls"),
              (r"\bthanks\b", "thx"), (r"\bhow\b", "hw"), (r"'", ""), (r"\bwhat\b", "wat"))
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

#: Made-up messages that show each failure category (never lines from the dev set or the real data).
ILLUSTRATIONS = {
    "abstained: below threshold": "“这个东西夏天用会不会闷” — a product question phrased with no trigger-like words",
    "abstained: ambiguous": "“退了吧还是换一个呢” — refund and exchange triggers score within the margin",
    "abstained: nothing left after normalisation": "“嗯嗯嗯～～” — fillers and punctuation only (right for `other`)",
    "wrong intent": "“换的新尺码什么时候寄出” — an exchange question whose ship-time words outscore the rest",
    "answered an `other` line": "“你们店在哪个城市” — a trigger fragment (在哪) matches where no intent applies",
}


def intent_table(report: EvalReport) -> list[str]:
    """Per-intent rows: n, right, recall, precision and what each label was confused with."""
    out = ["| label | n | right | recall | precision | confused with |", "|---|---|---|---|---|---|"]
    for label, row in report.per_intent.items():
        confusion = row["confusion"]
        assert isinstance(confusion, dict)
        wrong = ", ".join(f"{p} {c}" for p, c in confusion.items()
                          if p != label and not (label == OTHER and p in (ABSTAIN, OTHER)))
        precision = row["precision"]
        out.append(f"| {label} | {row['n']} | {row['correct']} | {row['recall']:.0%} | "
                   f"{'-' if precision is None else f'{precision:.0%}'} | {wrong or '-'} |")
    return out


def pct(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.1%}"


def leave_out(libraries: LibrarySet, rows: list[tuple[str, str]]) -> tuple[int, int, EvalReport]:
    """(dev lines equal to a trigger after normalisation, triggers removed, eval without those triggers)."""
    dev_texts = {normalize(text).text for text, _ in rows}
    trigger_texts = {
        normalize(t).text for lib in libraries.libraries.values() for i in lib.intents.values() for t in i.triggers
    }
    identical = sum(1 for text, _ in rows if normalize(text).text in trigger_texts)
    removed = 0
    new: dict[str, Library] = {}
    for locale, lib in libraries.libraries.items():
        intents = {}
        for intent in lib.intents.values():
            kept = tuple(t for t in intent.triggers if normalize(t).text not in dev_texts)
            removed += len(intent.triggers) - len(kept)
            intents[intent.id] = replace(intent, triggers=kept)
        new[locale] = replace(lib, intents=intents)
    return identical, removed, evaluate(Matcher(LibrarySet(new)), rows)


def failure_categories(matcher: Matcher, rows: list[tuple[str, str]]) -> tuple[Counter[str], Counter[str]]:
    categories: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for text, label in rows:
        ranking = matcher.rank(normalize(text))
        predicted = ranking.top.intent if ranking.top else None
        predicted = predicted if predicted in TAXONOMY or predicted is None else OTHER
        if label == OTHER:
            if predicted not in (None, OTHER):
                categories["answered an `other` line"] += 1
                pairs[f"other → {predicted}"] += 1
            continue
        if predicted == label:
            continue
        if predicted is None:
            key = {"empty": "abstained: nothing left after normalisation", "ambiguous": "abstained: ambiguous"}
            categories[key.get(ranking.reason, "abstained: below threshold")] += 1
            pairs[f"{label} → abstain ({ranking.reason})"] += 1
        else:
            categories["wrong intent"] += 1
            pairs[f"{label} → {predicted}"] += 1
    return categories, pairs


def coverage(matcher: Matcher) -> dict[str, object]:
    texts = [str(r["text"]) for r in read_jsonl(REAL_SET)]
    reasons: Counter[str] = Counter()
    intents: Counter[str] = Counter()
    collisions: Counter[tuple[str, str]] = Counter()
    auto = multi = first = 0
    for text in texts:
        normalized = normalize(text)
        ranking: Ranking = matcher.rank(normalized)
        reasons[ranking.reason if ranking.top is None else "confident"] += 1
        first += ranking.reason == "first_question"
        if ranking.top is not None:
            intents[ranking.top.intent] += 1
            auto += matcher.would_auto_send(ranking)
            confident_parts = [r for r in matcher.rank_parts(normalized) if r.top is not None]
            multi += len(confident_parts) > 1
        if ranking.reason == "ambiguous" and len(ranking.candidates) > 1:
            a, b = sorted((ranking.candidates[0].intent, ranking.candidates[1].intent))
            collisions[(a, b)] += 1
    return {"n": len(texts), "reasons": reasons, "intents": intents, "collisions": collisions, "auto": auto,
            "multi": multi, "first": first}


def render() -> str:
    libraries = real_libraries()
    matcher = Matcher(libraries)
    rows = dev_rows()
    report = evaluate(matcher, rows)
    identical, removed, held_out = leave_out(libraries, rows)
    categories, pairs = failure_categories(matcher, rows)
    out: list[str] = [
        "# Matching quality",
        "",
        f"Generated by `python benchmarks/quality_report.py` on {date.today().isoformat()} "
        f"({matcher.trigger_count} triggers). Regenerate it after changing the script library or the matcher.",
        "",
        "## Dev set (`shared/eval/dev.jsonl`)",
        "",
        "| lines | top-1 | top-3 | abstained | auto-sent | auto-send precision | wrong auto-sends |",
        "|---|---|---|---|---|---|---|",
        f"| {report.n} | {pct(report.top1)} | {pct(report.top3)} | {report.abstained} ({pct(report.abstain_rate)}) "
        f"| {report.auto_sent} | {pct(report.auto_send_precision)} | {report.wrong_auto_send} "
        f"({report.wrong_auto_send_rate:.2%} of all lines) |",
        "",
        f"Leave-out check: {identical} of {report.n} dev lines are, after normalisation, identical to a library "
        f"trigger. With every trigger identical to a dev line removed from the index ({removed} triggers), "
        f"top-1 is {pct(held_out.top1)}, top-3 {pct(held_out.top3)}, wrong auto-sends "
        f"{held_out.wrong_auto_send} ({held_out.wrong_auto_send_rate:.2%}). The gap to the full-library figure "
        "is the part of the dev score that is recall of known phrasings rather than matching; held-out sets "
        "will land nearer the leave-out figure.",
        "",
        "### Per intent",
        "",
        *intent_table(report),
    ]
    out += [
        "",
        "### What still fails, and why",
        "",
        "Counts on the dev set; the examples are made up to show the kind of message, they are not dev lines.",
        "",
        "| category | lines | the kind of message (made-up example) |",
        "|---|---|---|",
    ]
    for category, count in categories.most_common():
        out.append(f"| {category} | {count} | {ILLUSTRATIONS.get(category, '')} |")
    if not categories:
        out.append("| (none) | 0 | |")
    out += ["", "Label → prediction pairs behind them: "
            + (", ".join(f"{p} ({c})" for p, c in pairs.most_common()) or "none") + ".", ""]
    out += zh_hard_section(matcher)
    if REAL_SET.is_file():
        cov = coverage(matcher)
        n = int(cov["n"])  # type: ignore[call-overload]
        reasons: Counter[str] = cov["reasons"]  # type: ignore[assignment]
        intents: Counter[str] = cov["intents"]  # type: ignore[assignment]
        collisions: Counter[tuple[str, str]] = cov["collisions"]  # type: ignore[assignment]
        confident = reasons["confident"]
        out += [
            "## Coverage on real buyer turns (`shared/data/real_buyer_messages.jsonl`)",
            "",
            f"{n} buyer turns from two public research corpora (Taobao ECD, JD JDDC), unlabelled here, read "
            "at run time; research-only licence, so this section has aggregates only and no text. "
            "Auto-sent means the matcher's auto-send rule (mode `auto`, the auto threshold, no data in the "
            "message), ignoring "
            "business hours and shop settings.",
            "",
            "| turns | confident intent | would be auto-sent | two or more confident questions | abstained |",
            "|---|---|---|---|---|",
            f"| {n} | {confident} ({confident / n:.1%}) | {cov['auto']} ({int(cov['auto']) / n:.1%}) "  # type: ignore[call-overload]
            f"| {cov['multi']} ({int(cov['multi']) / n:.1%}) | {n - confident} ({(n - confident) / n:.1%}) |",  # type: ignore[call-overload]
            "",
            "Abstentions by reason: "
            + ", ".join(f"{r} {c} ({c / n:.1%})" for r, c in reasons.most_common() if r != "confident")
            + " (`empty`: nothing left after normalisation, e.g. only masks, emoji or an order number; "
            "`below_threshold`: no trigger close enough; `ambiguous`: two intents within the margin). "
            f"{cov['first']} of the confident turns were two intents within the margin that are two questions "
            "of the message: the first one asked is the answer (`Matcher._first_question`).",
            "",
            "Confident intents: " + ", ".join(f"{i} {c / n:.1%}" for i, c in intents.most_common()) + ".",
            "",
            "Colliding intent pairs (ambiguous turns, top two candidates): "
            + (", ".join(f"{a} / {b} ({c})" for (a, b), c in collisions.most_common(8)) or "none") + ".",
            "",
            "How to read this: the corpora are mostly after-sales JD chat with many turns that are not "
            "questions at all (order numbers, acknowledgements, fragments), so a low confident share is "
            "expected; the number to watch is the auto-sent share, which must stay small and precise. "
            "Their labels are hidden by design: this is coverage, not accuracy.",
            "",
        ]
    else:
        out += [f"(Real buyer turns not found at {REAL_SET}: coverage section skipped.)", ""]
    out += real_accuracy_section(matcher)
    out += english_section(libraries, matcher)
    out.append(f"Sources: dev set {DEV_SET.name}, English set {EN_EVAL.name}, real turns {REAL_SET.name}.")
    return "\n".join(out) + "\n"


def zh_hard_section(matcher: Matcher) -> list[str]:
    """The hand-written hard Chinese sets: all scored now, the rounds as measured, the blind set in detail."""
    sets = [(path, shops, status) for path, shops, status in ZH_HARD_SETS if path.is_file()]
    if not sets:
        return ["(Hand-written hard sets not found: section skipped.)", ""]
    out = [
        "## Hand-written hard Chinese messages, written blind",
        "",
        "The dev set's README says final quality is measured on held-out sets of the same kind. Colleagues each "
        "wrote one such set of 200 lines (10 per in-scope intent, 30 `other`) without seeing the library, the "
        "matcher or any other fixture: only the taxonomy and the dev set, checked for no near copy of a dev line "
        "(RapidFuzz ratio under 85). Each carries the dev set's noise (traditional characters, typos and "
        "homophones, pinyin, emoji, full width, long messages, two questions in one) and was scored before "
        "anything was tuned on it.",
        "",
        "| set | status | lines | top-1 | top-3 | abstained | auto-sent | wrong auto-sends |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| `{path.name}` ({shops}) | {status} | {r.n} | {pct(r.top1)} | {pct(r.top3)} | {r.abstained} "
          f"| {r.auto_sent} | {r.wrong_auto_send} |"
          for path, shops, status in sets for r in [evaluate(matcher, read_labelled(path))]),
        "",
        "Each round measured on a set it had not seen (top-1 / top-3 as recorded then; not regenerated). "
        "Against the dev set's 98.7 % before round 3, the first scores are the size of the gap between "
        "phrasings the library has seen and new ones:",
        "",
        "| round | tuned on | measured on | before | after |",
        "|---|---|---|---|---|",
        *(f"| {r} | {t} | {m} | {b} | {a} |" for r, t, m, b, a in ZH_HARD_ROUNDS),
        "",
        "### What a library round cannot fix",
        "",
        "The colleagues who ran rounds 5-8 noted where a phrase could not help, because of how the matcher reads "
        "(made-up examples):",
        "",
        *(f"- {line}" for line in MATCHER_LIMITS),
        "",
        "Measured on the tuned sets and the real samples, then once on the blind sets, and not taken (2026-12-04):",
        "",
        *(f"- {line}" for line in NOT_TAKEN),
        "",
    ]
    if ZH_HARD_BLIND.is_file():
        blind = evaluate(matcher, read_labelled(ZH_HARD_BLIND))
        categories, pairs = failure_categories(matcher, read_labelled(ZH_HARD_BLIND))
        out += [
            f"### The blind set (`{ZH_HARD_BLIND.name}`) per intent",
            "",
            *intent_table(blind),
            "",
            "Where it fails: " + (", ".join(f"{c} {n}" for c, n in categories.most_common()) or "nowhere")
            + "; label → prediction pairs: " + (", ".join(f"{p} ({c})" for p, c in pairs.most_common(12)) or "none")
            + ". Do not tune on it: the next round needs a new blind set.",
            "",
        ]
    return out


def real_labelled_rows(labels: Path) -> tuple[list[tuple[str, str]], int]:
    """(text, label) for each id in a labels file, text joined from REAL_SET at run time; and ids not found.

    Sorted by id. The fixture holds ids and labels only; the text never leaves the shared file.
    """
    texts = {str(r["id"]): str(r["text"]) for r in read_jsonl(REAL_SET)}
    rows: list[tuple[str, str]] = []
    missing = 0
    for record in sorted(read_jsonl(labels), key=lambda r: str(r["id"])):
        text = texts.get(str(record["id"]))
        if text is None:
            missing += 1
            continue
        rows.append((text, str(record["intent"])))
    return rows, missing


def wilson(right: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a share right / n (n > 0)."""
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def real_accuracy(matcher: Matcher, rows: list[tuple[str, str]]) -> dict[str, object]:
    """Confident-answer precision and failure kinds on labelled real turns (labels as stored, opt_out … kept).

    A confident answer (a top-1 intent, not abstained) is right when it is the line's label; on a line
    labelled `other` every confident answer is wrong, whatever intent it names.
    """
    confident = right = 0
    kinds: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    wrong_on_other: Counter[str] = Counter()
    for text, label in rows:
        ranking = matcher.rank(normalize(text), limit=3)
        if ranking.top is None:
            if label != OTHER:
                kinds[f"abstained on an in-scope line ({ranking.reason})"] += 1
            continue
        confident += 1
        predicted = ranking.top.intent
        if label != OTHER and predicted == label:
            right += 1
            continue
        pairs[f"{label} → {predicted}"] += 1
        if label == OTHER:
            kinds["confident answer on an `other` line"] += 1
            wrong_on_other[predicted] += 1
        elif predicted == "greeting":
            kinds["wrong intent: the polite opener outranks the request"] += 1
        else:
            kinds["wrong intent: another in-scope intent"] += 1
    return {"confident": confident, "right": right, "kinds": kinds, "pairs": pairs,
            "wrong_on_other": wrong_on_other}


#: Made-up messages for each failure kind on real turns (never a real turn: the licence forbids quoting them).
REAL_ILLUSTRATIONS = {
    "confident answer on an `other` line": "a service the taxonomy has no intent for (price protection after a "
    "price drop, an installation visit, a phone top-up) or a fragment that only makes sense after the agent's "
    "last message, matched on one shared word",
    "wrong intent: the polite opener outranks the request": "“您好 请问耳机盒子里有说明书吗” — the opener "
    "scores as `greeting` above the product question behind it",
    "wrong intent: another in-scope intent": "“寄回的衣服售后弄好没” — after-sales "
    "progress read as logistics because of parcel words",
    "abstained on an in-scope line (below_threshold)": "“这个插头英标的能用吗” — a long, specific question "
    "with no trigger close enough",
    "abstained on an in-scope line (ambiguous)": "“退了重拍还是直接换呢” — two intents within the margin",
    "abstained on an in-scope line (empty)": "nothing left after normalisation",
    "abstained on an in-scope line (opener)": "“您好 这款冬天穿会冷吗” — a greeting in front of a question "
    "nothing else matches: the matcher holds back the greeting and an agent answers",
}


def real_sample_lines(matcher: Matcher, labels: Path, name: str, failures: bool = False) -> list[str]:
    """One labelled real sample scored now: the metrics table (first column `name`), Wilson intervals,
    confident-answer precision, label distribution and per-intent table; with `failures`, also where it fails.

    Aggregates only: the text is joined from REAL_SET at run time and never written.
    """
    if not labels.is_file():
        return [f"(No labels at {labels}: sample skipped.)", ""]
    rows, missing = real_labelled_rows(labels)
    if not rows:
        return ["(No labelled id found in the real turns: sample skipped.)", ""]
    # Scored as the dev set: a label outside the taxonomy (opt_out …) counts as `other`, like a prediction.
    scored_rows = [(text, label if label in LABELS else OTHER) for text, label in rows]
    report = evaluate(matcher, scored_rows)
    extra = Counter(label for _, label in rows if label not in LABELS)
    acc = real_accuracy(matcher, rows)
    confident, right = int(acc["confident"]), int(acc["right"])  # type: ignore[call-overload]
    kinds: Counter[str] = acc["kinds"]  # type: ignore[assignment]
    pairs: Counter[str] = acc["pairs"]  # type: ignore[assignment]
    wrong_on_other: Counter[str] = acc["wrong_on_other"]  # type: ignore[assignment]
    n = report.n
    lo1, hi1 = wilson(round(report.top1 * n), n)
    labels_seen = Counter(label for _, label in rows)
    in_scope = n - labels_seen[OTHER]
    out = [
        "| sample | lines | top-1 | top-3 | abstained | auto-sent | auto-send precision | wrong auto-sends |",
        "|---|---|---|---|---|---|---|---|",
        f"| {name} | {n} | {pct(report.top1)} | {pct(report.top3)} | {report.abstained} "
        f"({pct(report.abstain_rate)}) | {report.auto_sent} | {pct(report.auto_send_precision)} "
        f"| {report.wrong_auto_send} ({report.wrong_auto_send_rate:.2%} of all lines) |",
        "",
        f"Top-1 95 % interval (Wilson): {lo1:.1%}-{hi1:.1%}."
        + (f" {missing} labelled ids were not found in the real turns and are left out." if missing else "")
        + (" Labels outside the taxonomy, scored as `other`: "
           + ", ".join(f"{k} {c}" for k, c in extra.most_common()) + "." if extra else ""),
        "",
    ]
    if confident:
        lo, hi = wilson(right, confident)
        out += [
            f"**Precision of confident answers: {right} of {confident} ({right / confident:.1%}, 95 % interval "
            f"{lo:.1%}-{hi:.1%}).** A confident answer is a top-1 intent (not abstained), whether it would be "
            "suggested or auto-sent; it is right when it is the line's label, and every confident answer on a "
            f"line labelled `other` is wrong. The sample has {in_scope} in-scope lines and {labels_seen[OTHER]} "
            f"`other` lines; {wrong_on_other.total()} of the `other` lines were answered confidently "
            f"({', '.join(f'{p} {c}' for p, c in wrong_on_other.most_common(5)) or 'none'})"
            + (f"; {outside} of them with an intent outside the taxonomy ("
               + ", ".join(sorted(p for p in wrong_on_other if p not in TAXONOMY))
               + "), which top-1 scores as right, as on the dev set, and this precision counts as wrong"
               if (outside := sum(c for p, c in wrong_on_other.items() if p not in TAXONOMY)) else "")
            + ".",
            "",
        ]
    else:
        out += ["Precision of confident answers: undefined (nothing answered confidently).", ""]
    out += [
        "Label distribution: " + ", ".join(f"{label} {c}" for label, c in labels_seen.most_common()) + ".",
        "",
        "Per intent:",
        "",
        *intent_table(report),
        "",
    ]
    if failures:
        out += [
            "Where it fails (counts on the sample; the examples are made up to show the kind of message, they "
            "are not real turns):",
            "",
            "| kind | lines | the kind of message (made-up example or description) |",
            "|---|---|---|",
        ]
        out += [f"| {kind} | {count} | {REAL_ILLUSTRATIONS.get(kind, '')} |" for kind, count in kinds.most_common()]
        if not kinds:
            out.append("| (none) | 0 | |")
        out += [
            "",
            "Most frequent label → prediction pairs among wrong confident answers: "
            + (", ".join(f"{p} ({c})" for p, c in pairs.most_common(10)) or "none") + ".",
            "",
        ]
    return out


#: Each round's blind measurement, as recorded when it was made (not regenerated: the code has moved on).
#: (round, tuned on, measured on, before: top-1 / top-3 / confident right / auto-sent, wrong; after: the same)
REAL_ROUNDS = (
    ("none yet", "-", "first sample (2026-12-04)", "-", "52.3 % / 73.7 % / 70 of 136 (51.5 %) / 8, 0 wrong"),
    ("1: greeting in front of a request; generic triggers", "first sample", "second sample",
     "52.5 % / 77.0 % / 53 of 102 (52.0 %) / 9, 1 wrong", "56.0 % / 78.0 % / 60 of 104 (57.7 %) / 8, 0 wrong"),
    ("2: generic triggers and negatives", "first and second", "third sample",
     "66.0 % / 79.5 % / 71 of 99 (71.7 %) / 7, 0 wrong", "67.0 % / 80.0 % / 72 of 99 (72.7 %) / 7, 0 wrong"),
    ("3, first step alone: first question of a tie (matcher)", "-", "fifth sample",
     "72.0 % / 88.0 % / 63 of 88 (71.6 %) / 6, 2 wrong", "72.0 % / 88.0 % / 63 of 89 (70.8 %) / 6, 2 wrong"),
    ("3, first step alone", "-", "sixth sample",
     "62.0 % / 78.5 % / 58 of 92 (63.0 %) / 4, 0 wrong", "61.0 % / 77.5 % / 58 of 95 (61.1 %) / 4, 0 wrong"),
    ("3: first question of a tie; zh-CN library round", "samples 1-4, zh set A", "fifth sample",
     "72.0 % / 88.0 % / 63 of 88 (71.6 %) / 6, 2 wrong", "74.5 % / 91.5 % / 65 of 90 (72.2 %) / 6, 2 wrong"),
    ("3 (same round)", "samples 1-4, zh set A", "sixth sample",
     "62.0 % / 78.5 % / 58 of 92 (63.0 %) / 4, 0 wrong", "62.0 % / 78.5 % / 58 of 92 (63.0 %) / 4, 0 wrong"),
    ("4: zh-CN library round; no automatic reply to a message carrying data", "samples 1-5, zh sets A-B",
     "sixth sample", "62.0 % / 78.5 % / 58 of 92 (63.0 %) / 4, 0 wrong",
     "62.0 % / 78.5 % / 58 of 93 (62.4 %) / 3, 0 wrong"),
    ("5-6: zh-CN library rounds on hand-written sets D and E (no real turn read); Cantonese words",
     "zh sets D-E", "sixth sample", "62.0 % / 78.5 % / 58 of 93 (62.4 %) / 3, 0 wrong",
     "61.5 % / 78.5 % / 57 of 94 (60.6 %) / 3, 0 wrong"),
)


def real_accuracy_section(matcher: Matcher) -> list[str]:
    heading = "## Accuracy on labelled samples of real turns"
    if not REAL_SET.is_file():
        return [heading, "", f"(Real buyer turns not found at {REAL_SET}: the labelled samples cannot be joined "
                "to their text, section skipped.)", ""]
    rows = [(path, drawn, status) for path, drawn, status in (*REAL_SAMPLES,
            (REAL_LABELS_BLIND, REAL_BLIND_DRAWN, "**blind**: never tuned on")) if path.is_file()]
    table = ["| sample | drawn | status | lines | top-1 | top-3 | confident answers right | auto-sent "
             "| wrong auto-sends |",
             "|---|---|---|---|---|---|---|---|---|"]
    for path, drawn, status in rows:
        labelled, _ = real_labelled_rows(path)
        scored = [(text, label if label in LABELS else OTHER) for text, label in labelled]
        report = evaluate(matcher, scored)
        acc = real_accuracy(matcher, labelled)
        confident, right = int(acc["confident"]), int(acc["right"])  # type: ignore[call-overload]
        table.append(f"| `{path.name}` | {drawn} | {status} | {report.n} | {pct(report.top1)} | {pct(report.top3)} "
                     f"| {right} of {confident} ({pct(right / confident if confident else None)}) "
                     f"| {report.auto_sent} | {report.wrong_auto_send} |")
    return [
        heading,
        "",
        f"Real buyer turns drawn at random from the {REAL_SET.name} ids, each labelled by hand with one intent of "
        "the taxonomy in `shared/eval/README.md` (or an extra library intent such as `opt_out` where one clearly "
        "applies) **before** csbot was run on any of them, one colleague per sample. The fixtures hold ids and "
        "labels only; the text is joined from the shared file at run time, and this section has aggregates only "
        "(research-only licence). A sample is an honest figure for real buyers only until the library or matcher "
        "is tuned on it; after that, the next measurement needs a new sample.",
        "",
        "How they were labelled: by what an agent would have to answer for the turn itself. The turn's own "
        "words must carry the intent; the neighbouring agent messages were read only to understand them, so "
        "an acknowledgement, an order number or a fragment that only makes sense after the agent's last "
        "message is `other` whatever the conversation is about. Requests the taxonomy has no intent for "
        "(price protection after a price drop, installation visits, account, top-up and membership questions, "
        "merchants asking about the platform) are `other` too: the matcher should abstain on them. "
        "After-sales tickets (pickup, inspection, progress) are `return_refund` unless they are about an "
        "exchange or a fault. 40-50 % of each sample is `other`.",
        "",
        "All samples, scored with the code as it is now. A confident answer is a top-1 intent (not abstained), "
        "suggested or auto-sent; it is right when it is the line's label, and every confident answer on a line "
        "labelled `other` is wrong. Top-1 counts an abstention on an `other` line as right, as on the dev set.",
        "",
        *table,
        "",
        "### Each round, measured on a sample it had not seen",
        "",
        "Figures recorded when each measurement was made (top-1 / top-3 / confident answers right / auto-sent); "
        "not regenerated.",
        "",
        "| round | tuned on | measured on | before | after |",
        "|---|---|---|---|---|",
        *(f"| {r} | {t} | {m} | {b} | {a} |" for r, t, m, b, a in REAL_ROUNDS),
        "",
        "What the rounds show: rounds 1 and 2 gained 3-6 points of confident-answer precision on the samples "
        "they were tuned on and 1-6 points on the next blind one. Round 3 gained 2.5 points of top-1 on the "
        "fifth sample and nothing on the sixth; round 4 gained 6.5 points on the fifth sample, on which it was "
        "tuned, and nothing on the sixth; rounds 5-6, tuned on hand-written sets only, moved the sixth by one line "
        "(a confident answer more, and wrong). Most of a round's gain on its own samples is their own phrasing: "
        "real turns are long, specific and varied, and a library of phrases learns them one at a time. What "
        "did carry over is on hand-written messages (the section above) and safety: the two wrong automatic "
        "replies of the fifth sample were data the buyer sent after a pleasantry or a field name, and a "
        "message carrying data is no longer answered automatically. Samples none of which had been tuned on "
        "differed by 10 points with the same code (commit 680280f: third 67.0 %, fourth 65.0 %, fifth 72.0 %, "
        "sixth 62.0 % top-1); with one labeller per sample, part of that is labelling.",
        "",
        f"### The blind sample in detail (`{REAL_LABELS_BLIND.relative_to(ROOT)}`)",
        "",
        *real_sample_lines(matcher, REAL_LABELS_BLIND, "sixth (blind)", failures=True),
    ]


def _eval_table(first: str, rows: list[tuple[str, EvalReport]]) -> list[str]:
    """A scores table: header (its first column named `first`), then one row per (name, report)."""
    return [f"| {first} | lines | top-1 | top-3 | abstained | auto-sent | auto-send precision | wrong auto-sends |",
            "|---|---|---|---|---|---|---|---|", *(_eval_row(name, report) for name, report in rows)]


def _eval_row(name: str, report: EvalReport) -> str:
    return (f"| {name} | {report.n} | {pct(report.top1)} | {pct(report.top3)} | {report.abstained} "
            f"| {report.auto_sent} | {pct(report.auto_send_precision)} | {report.wrong_auto_send} "
            f"({report.wrong_auto_send_rate:.2%}) |")


def text_speak_probe(libraries: LibrarySet, matcher: Matcher) -> tuple[int, int]:
    """(en triggers that text-speak changes, of those still ranked top-1 as their own intent)."""
    changed = kept = 0
    for intent in libraries.library("en").intents.values():
        for trigger in intent.triggers:
            variant = trigger
            for pattern, short in TEXT_SPEAK:
                variant = re.sub(pattern, short, variant)
            if variant == trigger:
                continue
            changed += 1
            top = matcher.rank(normalize(variant)).top
            kept += top is not None and top.intent == intent.id
    return changed, kept


def english_real_turns(matcher: Matcher) -> dict[str, tuple[int, int, int]]:
    """Per group ("en": detected English; "mixed": Chinese with a Latin word): (turns, confident, auto-sent)."""
    groups: dict[str, list[int]] = {"en": [0, 0, 0], "mixed": [0, 0, 0]}
    for record in read_jsonl(REAL_SET):
        text = str(record["text"])
        normalized = normalize(text)
        if normalized.lang == "en":
            group = groups["en"]
        elif LATIN_WORD.search(text) and CJK.search(text):
            group = groups["mixed"]
        else:
            continue
        ranking = matcher.rank(normalized)
        group[0] += 1
        group[1] += ranking.top is not None
        group[2] += matcher.would_auto_send(ranking)
    return {name: (n, confident, auto) for name, (n, confident, auto) in groups.items()}


def english_section(libraries: LibrarySet, matcher: Matcher) -> list[str]:
    if not EN_EVAL.is_file():
        return [f"(English set not found at {EN_EVAL}: English section skipped.)", ""]
    rows = read_labelled(EN_EVAL)
    whole, odd, even = (evaluate(matcher, part) for part in (rows, rows[0::2], rows[1::2]))
    english_lines = sum(1 for text, _ in rows if normalize(text).lang == "en")
    lookalikes = sorted(t for i in libraries.library("en").intents.values() for t in i.triggers
                        if normalize(t).lang != "en")
    changed, kept = text_speak_probe(libraries, matcher)
    out = [
        "## English (`tests/fixtures/en_eval.jsonl`)",
        "",
        f"{whole.n} hand-written English buyer messages ({english_lines} detected as English, the rest mixed "
        "Chinese/English on purpose), 8-12 per intent and 30 `other`, with the noise English buyers type: "
        "lowercase, no punctuation, typos, `u`/`pls`/`thx`/`hw`, emoji, order numbers, two questions in one "
        "message. Same format and scoring as the dev set. Targets (issue 8): " + EN_TARGETS + ".",
        "",
        *_eval_table("part", [("all", whole), ("odd lines (tuned on)", odd), ("even lines (held out first)", even)]),
        "",
        "How the set was used (measured while tuning, 2026-11-23; not regenerated): the set was written before "
        "any library change and scored 86.0 % top-1, 91.5 % top-3, 0 wrong auto-sends with the library as it "
        "was. The library was then tuned on the odd lines only; after that first round the held-out even lines "
        "scored 91.0 % top-1, 96.0 % top-3, 0 wrong auto-sends (the odd lines 99.0 % / 100 %): that gap is the "
        "honest estimate for unseen English phrasing. A further fresh set of 78 made-up lines, scored once "
        "before it was used for anything, gave 89.7 % top-1, 93.6 % top-3, 0 wrong auto-sends. The even lines "
        "and that fresh set were then used for a second round (colour/color spellings, size and number "
        "wildcards, phrases that outweigh single words), so the table above is no longer a held-out figure "
        "for them; expect new English phrasing near 90 % top-1.",
        "",
        "### Per intent (all lines)",
        "",
        *intent_table(whole),
    ]
    sets = [(path, written, status) for path, written, status in EN_SETS if path.is_file()]
    blind = evaluate(matcher, read_labelled(EN_BLIND)) if EN_BLIND.is_file() else None
    out += [
        "",
        "### Sets written blind, and each round measured on one it had not seen",
        "",
        "Each later set was written by another colleague who saw only the taxonomy (and the dev set's English "
        "lines), not the library or the other sets: 6 lines per intent, 18 `other`, the same noise. Each was "
        "scored before anything was tuned on it; a set tuned on since is no longer a blind figure.",
        "",
        "| set | status | lines | top-1 | top-3 | abstained | auto-sent | wrong auto-sends |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| `{path.name}` ({written}) | {status} | {r.n} | {pct(r.top1)} | {pct(r.top3)} | {r.abstained} "
          f"| {r.auto_sent} | {r.wrong_auto_send} |"
          for path, written, status in sets for r in [evaluate(matcher, read_labelled(path))]),
        "",
        "Figures recorded when each measurement was made (top-1 / top-3; not regenerated):",
        "",
        "| round | tuned on | measured on | before | after |",
        "|---|---|---|---|---|",
        *(f"| {r} | {t} | {m} | {b} | {a} |" for r, t, m, b, a in EN_ROUNDS),
        "",
    ]
    if blind is not None:
        out += [
            f"Targets: {EN_TARGETS}. Where the blind set (`{EN_BLIND.name}`) misses:",
            "",
            *intent_table(blind),
            "",
            "Do not tune on it: measuring the next round needs a new blind set.",
        ]
    out += [
        "",
        "### What limits English matching",
        "",
        f"- Text-speak: of the {changed} en triggers that change when written the way buyers shorten them "
        f"(you→u, your→ur, are→r, please→pls, thanks→thx, how→hw, what→wat, no apostrophes), {kept} "
        f"({kept / changed:.0%}) still rank their own intent first: `normalize.TEXT_SPEAK` writes the common "
        "short forms out in English messages before matching."
        if changed else "- Text-speak probe: no en trigger contains a word buyers shorten.",
        f"- Pinyin look-alikes: {len(lookalikes)} en triggers are detected as pinyin, not English "
        f"({', '.join(f'`{t}`' for t in lookalikes) or 'none'}; only `fapiao` is meant as pinyin). English "
        "shop words that split into syllables (`human`, `sale`, `courier`, `size`) are listed in "
        "`normalize.ENGLISH_LOOKALIKES`, so a message made only of them is English.",
        "- Typos: an English word no trigger has, of at least "
        f"{TYPO_MIN_LENGTH} letters, is read as the one known word a letter missing, extra or two swapped away "
        "(pakage, adress, recieve; `match.TYPO_MIN_LENGTH`). A replaced letter (packege), a shorter word (refnd) "
        "or a word with two such known neighbours stays unknown: those rules keep real words from being "
        "'corrected' into shop words (think/thank, receiver/received).",
        "- Unseen phrasing: the matcher knows only words the library has seen; English lines written blind "
        "scored 77-91 % top-1 when first scored (above), under the 93 % the tuned sets reach.",
        "",
    ]
    if REAL_SET.is_file():
        turns = english_real_turns(matcher)
        en_n, en_confident, en_auto = turns["en"]
        mixed_n, mixed_confident, mixed_auto = turns["mixed"]
        out += [
            "### English in the real buyer turns",
            "",
            "Aggregates only (research-only licence). The corpora are Chinese marketplaces: English buyers "
            "barely occur, so this measures how little English there is, not how well it is answered; "
            "the quality figures are the hand-written set above.",
            "",
            "| group | turns | confident intent | would be auto-sent |",
            "|---|---|---|---|",
            f"| detected English | {en_n} | {en_confident} | {en_auto} |",
            f"| mixed (Chinese with a Latin word; answered as Chinese) | {mixed_n} | {mixed_confident} "
            f"({mixed_confident / mixed_n:.1%}) | {mixed_auto} |" if mixed_n else "| mixed | 0 | - | - |",
            "",
            "Detected-English turns are nearly all acknowledgements (`ok`), platform masks and codes: `other` "
            "lines, where abstaining is right. In mixed turns the Latin words are mostly product codes, model "
            "names and platform ids inside Chinese sentences, not English.",
            "",
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdout", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.stdout:
        print(text, end="")
    else:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
