"""Evaluate stage: labelled buyer messages -> accuracy / abstention / auto-send figures. Pure except read_labelled.

Scoring follows shared/eval/README.md exactly: a predicted intent outside the taxonomy (opt_out, offline…)
counts as ``other``; an ``other`` line is right only when the matcher abstains (or predicts such an
intent), for top-3 as for top-1; an auto-send is right only when its intent is the line's in-scope label;
and auto-send precision is undefined (None), not 100 %, when nothing was auto-sent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from csbot.library.model import TAXONOMY
from csbot.match import Matcher, Ranking
from csbot.normalize import normalize

OTHER = "other"
ABSTAIN = "abstain"
LABELS = (*TAXONOMY, OTHER)


@dataclass(frozen=True)
class EvalReport:
    n: int
    top1: float
    top3: float
    abstained: int
    abstain_rate: float
    auto_sent: int
    auto_send_precision: float | None  # None when nothing was auto-sent
    wrong_auto_send: int
    wrong_auto_send_rate: float  # wrong auto-sends / all lines
    # label -> {"n", "correct", "recall", "precision", "confusion": {predicted: count}}; "abstain" is a
    # predicted key, and a non-taxonomy prediction (opt_out …) is counted as "other".
    per_intent: dict[str, dict[str, object]]


def read_labelled(path: Path) -> list[tuple[str, str]]:
    """(text, intent) pairs from a JSON Lines file of {"text": ..., "intent": ...}; blank lines skipped."""
    rows: list[tuple[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected an object with `text` and `intent`")
        text, intent = record.get("text"), record.get("intent")
        if not isinstance(text, str) or not isinstance(intent, str) or not intent:
            raise ValueError(f"{path}:{number}: `text` and `intent` must both be strings")
        if intent not in LABELS:
            raise ValueError(f"{path}:{number}: unknown intent {intent!r}")
        rows.append((text, intent))
    return rows


@dataclass(frozen=True)
class _Outcome:
    label: str
    predicted: str  # an in-scope intent, "other" (non-taxonomy intent) or "abstain"
    top1: bool
    top3: bool
    auto_sent: bool


def evaluate(matcher: Matcher, rows: Iterable[tuple[str, str]]) -> EvalReport:
    outcomes = [_judge(label, matcher.rank(normalize(text), limit=3), matcher) for text, label in rows]
    n = len(outcomes)
    auto = [o for o in outcomes if o.auto_sent]
    wrong_auto = sum(1 for o in auto if not (o.label != OTHER and o.predicted == o.label))
    abstained = sum(1 for o in outcomes if o.predicted == ABSTAIN)
    return EvalReport(
        n=n,
        top1=_share(sum(o.top1 for o in outcomes), n),
        top3=_share(sum(o.top3 for o in outcomes), n),
        abstained=abstained,
        abstain_rate=_share(abstained, n),
        auto_sent=len(auto),
        auto_send_precision=(len(auto) - wrong_auto) / len(auto) if auto else None,
        wrong_auto_send=wrong_auto,
        wrong_auto_send_rate=_share(wrong_auto, n),
        per_intent=_per_intent(outcomes),
    )


def _judge(label: str, ranking: Ranking, matcher: Matcher) -> _Outcome:
    predicted = ABSTAIN if ranking.top is None else _scored(ranking.top.intent)
    if label == OTHER:
        right = predicted in (ABSTAIN, OTHER)
        return _Outcome(label, predicted, right, right, matcher.would_auto_send(ranking))
    in_top3 = label in [c.intent for c in ranking.candidates[:3]]
    return _Outcome(label, predicted, predicted == label, in_top3, matcher.would_auto_send(ranking))


def _scored(intent: str) -> str:
    """A predicted intent as scored: one outside the taxonomy (opt_out, offline …) counts as other."""
    return intent if intent in TAXONOMY else OTHER


def _per_intent(outcomes: list[_Outcome]) -> dict[str, dict[str, object]]:
    table: dict[str, dict[str, object]] = {}
    for label in LABELS:
        mine = [o for o in outcomes if o.label == label]
        if not mine:
            continue
        correct = sum(o.top1 for o in mine)
        # Predictions "of" this label: for other, every abstention or non-taxonomy intent.
        predicted_as = [
            o for o in outcomes if (o.predicted in (ABSTAIN, OTHER) if label == OTHER else o.predicted == label)
        ]
        table[label] = {
            "n": len(mine),
            "correct": correct,
            "recall": correct / len(mine),
            "precision": sum(o.top1 for o in predicted_as) / len(predicted_as) if predicted_as else None,
            "confusion": dict(Counter(o.predicted for o in mine).most_common()),
        }
    return table


def _share(count: int, n: int) -> float:
    return count / n if n else 0.0


def report_json(report: EvalReport) -> dict[str, object]:
    return {
        "n": report.n,
        "top1": round(report.top1, 4),
        "top3": round(report.top3, 4),
        "abstained": report.abstained,
        "abstain_rate": round(report.abstain_rate, 4),
        "auto_sent": report.auto_sent,
        "auto_send_precision": None if report.auto_send_precision is None else round(report.auto_send_precision, 4),
        "wrong_auto_send": report.wrong_auto_send,
        "wrong_auto_send_rate": round(report.wrong_auto_send_rate, 4),
        "per_intent": report.per_intent,
    }


def format_report(report: EvalReport) -> str:
    precision = (
        "undefined (nothing auto-sent)" if report.auto_send_precision is None else f"{report.auto_send_precision:.1%}"
    )
    lines = [
        f"lines               {report.n}",
        f"top-1 accuracy      {report.top1:.1%}",
        f"top-3 accuracy      {report.top3:.1%}",
        f"abstained           {report.abstained} ({report.abstain_rate:.1%})",
        f"auto-sent           {report.auto_sent}, precision {precision}",
        f"wrong auto-sends    {report.wrong_auto_send} ({report.wrong_auto_send_rate:.2%} of all lines)",
        "",
        f"{'label':<14}{'n':>4}{'ok':>5}{'recall':>8}{'prec':>7}  confused with",
    ]
    for label, row in report.per_intent.items():
        precision_cell = "-" if row["precision"] is None else f"{row['precision']:.0%}"
        confusion = row["confusion"]
        assert isinstance(confusion, dict)
        wrong = ", ".join(
            f"{p} {c}" for p, c in confusion.items() if p != label and not (label == OTHER and p in (ABSTAIN, OTHER))
        )
        lines.append(
            f"{label:<14}{row['n']:>4}{row['correct']:>5}{row['recall']:>8.0%}{precision_cell:>7}  {wrong or '-'}"
        )
    return "\n".join(lines)
