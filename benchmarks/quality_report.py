"""Regenerate docs/quality.md: dev-set scores, confusion, failure categories, coverage on real buyer turns,
accuracy on three hand-labelled random samples of them (tests/fixtures/real_labels.jsonl and
real_labels_blind2.jsonl, each blind when first scored and tuned on since, and the blind real_labels_blind3.jsonl:
ids and labels only, joined with the text at run time), and the English section (tests/fixtures/en_eval.jsonl by
half, the second set en_holdout.jsonl, the blind third set en_blind3.jsonl, English and mixed real turns,
text-speak probe).

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
#: The second English set (issue 8, round 2): written blind, scored once, then tuned on.
EN_HOLDOUT = ROOT / "tests" / "fixtures" / "en_holdout.jsonl"
#: The third English set: written blind after that round, scored once, never tuned on (the honest figure).
EN_BLIND = ROOT / "tests" / "fixtures" / "en_blind3.jsonl"
#: Hand labels (id and intent only, no text) for a random sample of 300 real buyer turns; blind when first
#: scored (2026-12-04), then tuned on (first round).
REAL_LABELS = ROOT / "tests" / "fixtures" / "real_labels.jsonl"
#: A second sample of 200 real buyer turns (ids not in REAL_LABELS), labelled the same way; blind when first
#: scored (before and after the first round), then tuned on together with REAL_LABELS (second round).
REAL_LABELS_SECOND = ROOT / "tests" / "fixtures" / "real_labels_blind2.jsonl"
#: A third blind sample of 200 real buyer turns (ids in neither sample above), labelled the same way and saved
#: before csbot was run on any of them; never tuned on (the honest figure for real buyers).
REAL_LABELS_BLIND = ROOT / "tests" / "fixtures" / "real_labels_blind3.jsonl"
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
            "Auto-sent means the matcher's auto-send rule (mode `auto` and the auto threshold), ignoring "
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


def real_accuracy_section(matcher: Matcher) -> list[str]:
    heading = "## Accuracy on labelled samples of real turns"
    if not REAL_SET.is_file():
        return [heading, "", f"(Real buyer turns not found at {REAL_SET}: the labelled samples cannot be joined "
                "to their text, section skipped.)", ""]
    return [
        heading,
        "",
        f"Real buyer turns drawn at random from the {REAL_SET.name} ids, each labelled by hand with one intent of "
        "the taxonomy in `shared/eval/README.md` (or an extra library intent such as `opt_out` where one clearly "
        "applies) **before** csbot was run on any of them. The fixtures hold ids and labels only; the text is "
        "joined from the shared file at run time, and this section has aggregates only (research-only licence). "
        "A sample is an honest figure for real buyers only until the library or matcher is tuned on it; after "
        "that, the next measurement needs a new sample.",
        "",
        "How they were labelled: by what an agent would have to answer for the turn itself. The turn's own "
        "words must carry the intent; the neighbouring agent messages were read only to understand them, so "
        "an acknowledgement, an order number or a fragment that only makes sense after the agent's last "
        "message is `other` whatever the conversation is about. Requests the taxonomy has no intent for "
        "(price protection after a price drop, installation visits, account, top-up and membership questions, "
        "merchants asking about the platform) are `other` too: the matcher should abstain on them. "
        "After-sales tickets (pickup, inspection, progress) are `return_refund` unless they are about an "
        "exchange or a fault.",
        "",
        f"### First sample (`{REAL_LABELS.relative_to(ROOT)}`): blind when first scored, tuned on since",
        "",
        "300 turns: `random.Random(20261204).sample` of 300 over all ids, sorted. First scored blind on "
        "2026-12-04: top-1 52.3 %, top-3 73.7 %, confident answers right 70 of 136 (51.5 %), 8 auto-sent, all "
        "right. The round of matcher and library changes that followed was tuned on this sample's failures, so "
        "the figures below, scored with the code as it is now, are no longer a blind measurement, and a second "
        "round was tuned on it together with the second sample; the third sample below is the blind one.",
        "",
        *real_sample_lines(matcher, REAL_LABELS, "first (tuned on since)", failures=True),
        "How to read this (as first measured, 2026-12-04): the dev-set figures above are tuned figures on "
        "hand-written lines; this is what real buyers get. Auto-sending stayed precise because few real turns "
        "reach the auto threshold, but about half of the confident answers an agent is shown were wrong. Most "
        "misses are abstentions on real questions phrased unlike any trigger (long, specific, after-sales "
        "JD turns), confident answers on turns the taxonomy does not cover or on context-dependent fragments, "
        "and a leading 你好/您好 that wins over the request behind it.",
        "",
        f"### Second sample (`{REAL_LABELS_SECOND.relative_to(ROOT)}`): blind when first scored, tuned on since",
        "",
        "200 turns: `random.Random(20261205).sample` of 200 over the ids not in the first sample, sorted; "
        "labelled the same way by another colleague, all 200 saved before csbot was run on any of them. It was "
        "the blind figure for the first round (below); a second round of changes was then tuned on this sample "
        "and the first together, so the figures here, scored with the code as it is now, are no longer a blind "
        "measurement; the third sample below is.",
        "",
        *real_sample_lines(matcher, REAL_LABELS_SECOND, "second (tuned on since)"),
        "What the round tuned on the first sample did to this one (measured once the round was done, "
        "2026-12-04; not regenerated): with the matcher and library from before it (commit a669530), top-1 "
        "52.5 %, top-3 77.0 %, confident answers right 53 of 102 (52.0 %), 9 auto-sent with 1 wrong (a greeting "
        "sent to a buyer who had asked about the product behind it); after it, top-1 56.0 %, top-3 78.0 %, "
        "confident answers right 60 of 104 (57.7 %), 8 auto-sent, none wrong. The round: a greeting in front "
        "of a request no longer answers it (`Matcher._behind_opener`: what is left besides the pleasantries "
        "decides, or an agent does), and generic zh-CN triggers and negatives for the kinds of turns that "
        "failed (after-sales progress, delivery, invoices, product specifics, out-of-taxonomy installation "
        "visits), none equal or close to a real turn. Dev and the English sets stayed as they were but for one "
        "blind English line. On all 5,047 real turns the automatic sends went from 188 to 177: 10 greetings "
        "and 1 shipping-fee answer held back, none added or changed; the share answered confidently went from "
        "47.2 % to 46.4 % (wrong greetings held back).",
        "",
        f"### Third sample (`{REAL_LABELS_BLIND.relative_to(ROOT)}`): blind",
        "",
        "200 turns: `random.Random(20261206).sample` of 200 over the ids in neither the first nor the second "
        "sample (in file order), sorted; labelled the same way by a third colleague, who first read the earlier "
        "labels next to their turns to match their habits on borderline turns, and saved all 200 before csbot "
        "was run on any of them. **Never used for tuning**: this is the honest figure for real buyers now. Do "
        "not tune on it either. First scored on 2026-12-04 with the matcher and library of commit ecedda7, "
        "before the second round (not regenerated): top-1 66.0 %, top-3 79.5 %, confident answers right 71 of "
        "99 (71.7 %), 7 auto-sent, none wrong.",
        "",
        *real_sample_lines(matcher, REAL_LABELS_BLIND, "third (blind)"),
        "What the second round (generic zh-CN triggers and negatives tuned on the first two samples: delivery "
        "chasing, product specifics, pickups and refund timing, invoices; two bare nouns that matched pickups "
        "removed) did here (measured once it was done, 2026-12-04; not regenerated): top-1 66.0 % -> 67.0 %, "
        "top-3 79.5 % -> 80.0 %, confident answers right 71 of 99 -> 72 of 99, 7 auto-sent, none wrong, before "
        "and after. On the samples it was tuned on it gained 3-4 points (first 66.7 % -> 69.2 % of confident "
        "answers right, second 57.7 % -> 62.0 %): most of that was those samples' own phrasing, and one line "
        "carried over. The third sample also scores about 10 points above the second with the same code; one "
        "person labelled each sample, so part of that gap may be labelling, not the matcher.",
        "",
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
    if EN_HOLDOUT.is_file():
        second = evaluate(matcher, read_labelled(EN_HOLDOUT))
        out += [
            "",
            "### Second English set (`tests/fixtures/en_holdout.jsonl`)",
            "",
            f"{second.n} lines written blind by a colleague (6 per intent, 18 `other`), same noise and scoring.",
            "",
            *_eval_table("set", [("second set, now", second)]),
            "",
            "How the set was used (measured 2026-12-04; not regenerated): scored once before anything was changed "
            "for it, 83.3 % top-1, 85.0 % top-3, 0 wrong auto-sends: the honest figure for unseen English. Its "
            "failures were then fixed in two steps, each scored on this set, the English set above and the dev set "
            "(which stayed at 99.0 % / 100 % and 98.7 % / 100 %, 0 wrong auto-sends): typo-tolerant English words in "
            "the matcher, 85.0 % / 87.5 %; generic shop vocabulary (courier names, member/VIP price, preorders, "
            "restocking, what is in the box, washing, height and weight for sizing, combining orders, return "
            "postage, bad service), phrased in the library's own words and checked against near-copies of the "
            "set's lines, 98.3 % / 100 %. So the table above is a tuned figure; a third set, written blind, "
            "gives the next honest one.",
        ]
    if EN_BLIND.is_file():
        blind = evaluate(matcher, read_labelled(EN_BLIND))
        out += [
            "",
            "### Third English set (`tests/fixtures/en_blind3.jsonl`): the honest figure",
            "",
            f"{blind.n} more lines written blind by another colleague (6 per intent, 18 `other`; the writer saw only "
            "the taxonomy, not the library or the other sets). **Never used for tuning.** It was first scored "
            "after the round above, and, for comparison, with the library and matcher from before that round "
            "(commit 9b56728): 81.7 % top-1, 86.7 % top-3, 31 abstained, 0 wrong auto-sends. Now:",
            "",
            *_eval_table("set", [("third set (blind)", blind)]),
            "",
            f"Targets: {EN_TARGETS}. Confident answers stay right (no wrong auto-send on any English set); what "
            "misses goes to an agent. Where it misses:",
            "",
            *intent_table(blind),
            "",
            "Do not tune on this file: measuring the next round needs a fourth blind set.",
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
        "scored 83-91 % top-1 when first scored (above), under the 93 % the tuned sets reach.",
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
