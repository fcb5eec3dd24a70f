"""Calibrate: per-intent thresholds from labelled lines, written back as a minimal YAML edit."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from csbot.calibrate import (
    Band,
    Observation,
    Proposal,
    Targets,
    add_calibrate_command,
    calibrate,
    edit_texts,
    passing_band,
    propose,
)
from csbot.library import load_libraries

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "scripts_library"
    shutil.copytree(ROOT / "scripts_library", root)
    return root


def write_labelled(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("\n".join(json.dumps({"text": t, "intent": i}, ensure_ascii=False) for t, i in rows) + "\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("scores", "target", "floor", "expected"),
    [
        ([(90, True), (80, True), (70, True)], 0.95, 60, Band(60, 70, 1.0)),  # all right: down to the floor
        ([(90, True), (80, True), (70, False)], 0.95, 60, Band(70.1, 80, 1.0)),  # just above the wrong one
        ([(90, True), (80, True), (70, True), (65, False)], 0.75, 60, Band(60, 65, 0.75)),  # one wrong tolerated
        ([(90, True), (80, True), (70, True)], 0.95, 75, Band(75, 80, 1.0)),  # never below the floor
        ([(90, False)], 0.95, 60, None),  # nothing reaches the target
        ([(80, True), (80, False), (70, True)], 0.6, 60, Band(60, 70, 2 / 3)),  # equal scores go in together
        ([(80, True), (80, False)], 0.6, 60, None),
    ],
)
def test_passing_band(scores: list[tuple[float, bool]], target: float, floor: float, expected: Band | None) -> None:
    assert passing_band(scores, target, floor) == expected


def test_propose_raises_a_threshold_just_above_the_wrong_lines(library: Path) -> None:
    libraries = load_libraries(library)
    current = libraries.libraries["zh-CN"].threshold("invoice")
    observations = [Observation("invoice", "zh-CN", s, True) for s in (current + 5, 90, 95, 99)]
    observations.append(Observation("invoice", "zh-CN", current + 2, False))
    proposals = propose(libraries, observations, Targets(floor=60))
    thresholds = [(p.intent, p.proposed) for p in proposals if p.key == "threshold"]
    assert thresholds == [("invoice", current + 2.1)]


def test_propose_keeps_a_threshold_the_file_gives_no_reason_to_move(library: Path) -> None:
    libraries = load_libraries(library)
    current = libraries.libraries["zh-CN"].threshold("bargain")
    observations = [Observation("bargain", "zh-CN", s, True) for s in (current + 5, 90, 95, 99, 100)]
    observations.append(Observation("bargain", "zh-CN", current - 20, False))  # abstained today, stays out
    assert propose(libraries, observations, Targets(floor=40)) == []


def test_propose_lowers_a_threshold_to_the_lowest_score_seen_right(library: Path) -> None:
    libraries = load_libraries(library)
    current = libraries.libraries["zh-CN"].threshold("bargain")
    observations = [Observation("bargain", "zh-CN", s, True) for s in (current - 4, 90, 95, 99, 100)]
    observations.append(Observation("bargain", "zh-CN", current - 10, False))
    proposals = propose(libraries, observations, Targets(floor=40))
    assert [(p.key, p.proposed) for p in proposals] == [("threshold", current - 4)]


def test_propose_leaves_intents_with_too_few_lines_alone(library: Path) -> None:
    libraries = load_libraries(library)
    observations = [Observation("invoice", "zh-CN", 61, True)] * 4
    assert propose(libraries, observations, Targets(min_lines=5)) == []


def test_auto_threshold_keeps_wrong_auto_sends_out(library: Path) -> None:
    libraries = load_libraries(library)
    intent = libraries.libraries["zh-CN"].intents["greeting"]
    assert intent.mode == "auto"
    current = libraries.libraries["zh-CN"].auto_threshold("greeting")
    observations = [Observation("greeting", "zh-CN", s, True) for s in (100, 99.5, current + 1, current - 1)]
    observations.append(Observation("greeting", "zh-CN", current, False))  # a wrong line right at the bar
    proposals = {p.key: p.proposed for p in propose(libraries, observations, Targets(auto_floor=90))}
    assert proposals["auto_threshold"] == current + 0.1


def test_edit_changes_only_threshold_lines_and_keeps_comments(library: Path) -> None:
    libraries = load_libraries(library)
    greeting = libraries.libraries["zh-CN"].intents["greeting"]  # has auto_threshold: 95, no threshold
    bargain = libraries.libraries["zh-CN"].intents["bargain"]
    proposals = [
        Proposal("zh-CN", "greeting", greeting.source, "auto_threshold", 95, 96.5, 10, 1.0),
        Proposal("zh-CN", "greeting", greeting.source, "threshold", 72, 68, 10, 1.0),
        Proposal("zh-CN", "bargain", bargain.source, "threshold", 72, 75, 10, 1.0),
    ]
    edits = edit_texts(library, proposals)
    (path, (old, new)), = edits.items()
    removed = [line for line in old.splitlines() if line not in new.splitlines()]
    added = [line for line in new.splitlines() if line not in old.splitlines()]
    assert removed == ["    auto_threshold: 95"]
    assert sorted(added) == sorted(["    auto_threshold: 96.5", "    threshold: 68", "    threshold: 75"])
    assert [line for line in old.splitlines() if line.lstrip().startswith("#")] == [
        line for line in new.splitlines() if line.lstrip().startswith("#")
    ]
    path.write_text(new, encoding="utf-8")
    reloaded = load_libraries(library).libraries["zh-CN"]
    assert reloaded.auto_threshold("greeting") == 96.5
    assert reloaded.threshold("greeting") == 68
    assert reloaded.threshold("bargain") == 75
    assert reloaded.intents["bargain"].triggers == bargain.triggers  # nothing else moved


def test_edit_keeps_a_trailing_comment_on_the_changed_line(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    (root / "zh-CN").mkdir(parents=True)
    text = ("intents:\n"
            "  - id: invoice   # 发票\n"
            "    triggers: [开发票]\n"
            "    replies: [invoice_1]\n"
            "    threshold: 80  # raised after a complaint\n"
            "\n"
            "  - id: closing\n"
            "    triggers: [谢谢]\n"
            "    replies: [closing_1]\n")
    (root / "zh-CN" / "a.yaml").write_text(text, encoding="utf-8")
    proposals = [Proposal("zh-CN", "invoice", "zh-CN/a.yaml:2", "threshold", 80, 77, 9, 1.0),
                 Proposal("zh-CN", "closing", "zh-CN/a.yaml:7", "threshold", 72, 70, 9, 1.0)]
    (_, new), = edit_texts(root, proposals).values()
    assert new == text.replace("threshold: 80  #", "threshold: 77  #") + "    threshold: 70\n"


def test_calibrate_dry_run_changes_nothing(library: Path, tmp_path: Path) -> None:
    rows = [("包邮吗", "shipping_fee"), ("包邮不", "shipping_fee"), ("能包邮吗", "shipping_fee"),
            ("包邮的吧", "shipping_fee"), ("这个包邮吗", "shipping_fee"), ("嗯嗯", "other")]
    labelled = write_labelled(tmp_path / "labelled.jsonl", rows)
    before = {p: p.read_text(encoding="utf-8") for p in library.rglob("*.yaml")}
    proposals, diff = calibrate(library, labelled, Targets(min_lines=3), write=False)
    assert {p: p.read_text(encoding="utf-8") for p in library.rglob("*.yaml")} == before
    assert all(p.intent == "shipping_fee" for p in proposals)
    if proposals:
        assert diff.startswith("--- a/zh-CN/") and "threshold" in diff


def test_cli_registration_and_dry_run(library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_calibrate_command(parser.add_subparsers(required=True))
    rows = [(f"能开{kind}发票吗", "invoice") for kind in ("电子", "纸质", "专用", "普通", "增值税")]
    args = parser.parse_args(["calibrate", str(write_labelled(tmp_path / "l.jsonl", rows)), "--dry-run",
                              "--floor", "50"])

    class Settings:
        library_dir = library

    before = {p: p.read_text(encoding="utf-8") for p in library.rglob("*.yaml")}
    assert args.run(args, Settings()) == 0
    out = capsys.readouterr().out
    assert "dry run" in out or "no threshold changes" in out
    assert {p: p.read_text(encoding="utf-8") for p in library.rglob("*.yaml")} == before


def test_cli_rejects_a_bad_target(library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_calibrate_command(parser.add_subparsers(required=True))
    args = parser.parse_args(["calibrate", str(tmp_path / "missing.jsonl"), "--target", "95"])

    class Settings:
        library_dir = library

    assert args.run(args, Settings()) == 2
    assert "precision" in capsys.readouterr().err
