"""Evaluation: figures on a hand-made labelled list, checked by hand against shared/eval/README.md."""

import json
from pathlib import Path

import pytest

from csbot.evaluate import evaluate, format_report, read_labelled, report_json
from csbot.library import Intent, Library, LibrarySet
from csbot.match import Matcher


def _intent(intent_id: str, trigger: str, mode: str) -> Intent:
    return Intent(
        id=intent_id,
        label=intent_id,
        triggers=(trigger,),
        negatives=(),
        replies=("x",),
        mode="auto" if mode == "auto" else "suggest",
        threshold=None,
        auto_threshold=None,
        escalate=False,
        source="test",
    )


@pytest.fixture
def matcher() -> Matcher:
    intents = [
        _intent("greeting", "在吗", "auto"),
        _intent("shipping_fee", "包邮吗", "auto"),
        _intent("bargain", "便宜点", "suggest"),
        _intent("opt_out", "别发了", "auto"),  # outside the taxonomy: scored as "other"
    ]
    library = Library("zh-CN", {i.id: i for i in intents}, default_threshold=70, default_auto_threshold=95, margin=3)
    return Matcher(LibrarySet({"zh-CN": library}))


ROWS = [
    ("在吗", "greeting"),  # 1 right, auto-sent right
    ("包邮吗", "shipping_fee"),  # 2 right, auto-sent right
    ("便宜点", "bargain"),  # 3 right, suggest mode: not auto-sent
    ("包邮吗", "greeting"),  # 4 wrong (shipping_fee), not in top 3, wrong auto-send
    ("嗯嗯", "other"),  # 5 right: abstains (empty)
    ("别发了", "other"),  # 6 right (opt_out counts as other) but its auto-send on an other line is wrong
    ("天气", "bargain"),  # 7 wrong: abstains on an in-scope line
    ("在吗", "other"),  # 8 wrong: greeting on an other line, wrong auto-send
]


def test_figures_by_hand(matcher: Matcher) -> None:
    report = evaluate(matcher, ROWS)
    assert report.n == 8
    assert report.top1 == 5 / 8  # lines 1, 2, 3, 5, 6
    assert report.top3 == 5 / 8  # top-3 adds nothing: line 4 has only shipping_fee, other lines as top-1
    assert (report.abstained, report.abstain_rate) == (2, 2 / 8)  # lines 5, 7
    assert report.auto_sent == 5  # lines 1, 2, 4, 6, 8
    assert report.auto_send_precision == 2 / 5
    assert (report.wrong_auto_send, report.wrong_auto_send_rate) == (3, 3 / 8)


def test_per_intent_by_hand(matcher: Matcher) -> None:
    per_intent = evaluate(matcher, ROWS).per_intent
    assert per_intent["greeting"] == {  # labelled on lines 1 and 4, predicted on lines 1 and 8
        "n": 2,
        "correct": 1,
        "recall": 1 / 2,
        "precision": 1 / 2,
        "confusion": {"greeting": 1, "shipping_fee": 1},
    }
    assert per_intent["bargain"]["confusion"] == {"bargain": 1, "abstain": 1}
    assert per_intent["bargain"]["recall"] == 1 / 2
    other = per_intent["other"]
    assert (other["n"], other["correct"]) == (3, 2)
    assert other["confusion"] == {"abstain": 1, "other": 1, "greeting": 1}
    assert other["precision"] == 2 / 3  # abstained/other on lines 5, 6, 7; line 7 was bargain
    assert "promotion" not in per_intent  # no line carries that label


def test_nothing_auto_sent_leaves_precision_undefined(matcher: Matcher) -> None:
    report = evaluate(matcher, [("便宜点", "bargain"), ("嗯", "other")])
    assert report.auto_sent == 0 and report.auto_send_precision is None
    assert report.top1 == 1.0
    assert "undefined" in format_report(report)
    assert report_json(report)["auto_send_precision"] is None


def test_report_json_and_text(matcher: Matcher) -> None:
    report = evaluate(matcher, ROWS)
    data = report_json(report)
    assert {"n", "top1", "top3", "abstain_rate", "auto_send_precision", "wrong_auto_send_rate", "per_intent"} <= set(
        data
    )
    json.dumps(data)  # serialisable as is
    text = format_report(report)
    assert "62.5%" in text and "37.50%" in text  # top-1 5/8, wrong auto-sends 3/8
    assert "greeting 1" in text  # the other line answered as greeting shows in the confusion column


def test_read_labelled(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"text": "包邮吗", "intent": "shipping_fee"}\n\n{"text": "嗯", "intent": "other"}\n', encoding="utf-8"
    )
    assert read_labelled(path) == [("包邮吗", "shipping_fee"), ("嗯", "other")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "x", "intent": "other"', "not valid JSON"),
        ('{"text": "x"}', "`text` and `intent`"),
        ('["x", "other"]', "expected an object"),
        ('{"text": "x", "intent": "weather"}', "unknown intent 'weather'"),
    ],
)
def test_read_labelled_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"text": "ok", "intent": "other"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"set\.jsonl:2: .*{message}"):
        read_labelled(path)
