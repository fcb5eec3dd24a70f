"""Calibrate: labelled buyer messages -> per-intent thresholds, proposed as an edit of scripts_library YAML.

Reads the library and a labelled JSON Lines file; writes only the ``threshold:`` / ``auto_threshold:``
lines of the intents it changes (a missing one is added as the intent's last key), so comments, order and
layout survive and the result reads as a small diff for review. ``--dry-run`` prints that diff only.

Per intent, from the lines whose top candidate is that intent (ambiguous ones excluded: they abstain
whatever the threshold):

- ``threshold``: the lowest thresholds (never below ``floor``) at which the lines predicted as the intent
  are still right at least ``target`` of the time (a wrong line is one labelled otherwise, ``other``
  included) form a band between two observed scores. A threshold already in the band stays (the file is
  no evidence for moving it); one above it comes down to the band's top (the lowest score seen right);
  one below it goes up just enough to shut out the lines that break the target.
- ``auto_threshold`` (``mode: auto`` intents): the same with ``auto_target``, never below ``auto_floor``
  nor below the threshold, on the lines that would be auto-sent.

An intent with fewer than ``min_lines`` such lines is left alone: a handful of examples is no evidence.
A threshold only decides between "this intent" and "abstain"; it never reorders candidates, so each
intent can be calibrated on its own.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from csbot.library import LibraryError, LibrarySet, load_libraries

if TYPE_CHECKING:
    from csbot.match import Matcher

# The matcher (OpenCC, pypinyin) is imported where it is used, so registering the command on the CLI's
# parser costs nothing for the other commands.

DEFAULT_TARGET = 0.95
DEFAULT_AUTO_TARGET = 1.0
DEFAULT_FLOOR = 60.0
DEFAULT_AUTO_FLOOR = 90.0
DEFAULT_MIN_LINES = 5
SCORE_STEP = 0.1  # the matcher rounds scores to one decimal
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

SOURCE = re.compile(r"^(?P<file>.+):(?P<line>\d+)$")
ITEM = re.compile(r"^(?P<indent>\s*)-\s+\S")
KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_]+):(?P<rest>.*)$")


@dataclass(frozen=True)
class Observation:
    """One labelled line whose top candidate (not ambiguous) is ``intent``."""

    intent: str
    locale: str  # the library whose settings apply to it
    score: float
    correct: bool


@dataclass(frozen=True)
class Proposal:
    locale: str
    intent: str
    source: str  # "zh-CN/presales.yaml:6", where the intent starts
    key: str  # "threshold" | "auto_threshold"
    current: float  # the effective value today (the intent's own or the locale default)
    proposed: float
    lines: int  # labelled lines predicted as this intent
    precision: float  # at the proposed value, on those lines


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    precision: float  # of the lines accepted anywhere in the band


@dataclass(frozen=True)
class Targets:
    target: float = DEFAULT_TARGET
    auto_target: float = DEFAULT_AUTO_TARGET
    floor: float = DEFAULT_FLOOR
    auto_floor: float = DEFAULT_AUTO_FLOOR
    min_lines: int = DEFAULT_MIN_LINES


def observe(matcher: Matcher, libraries: LibrarySet, rows: Iterable[tuple[str, str]]) -> list[Observation]:
    from csbot.evaluate import OTHER
    from csbot.normalize import normalize

    out: list[Observation] = []
    for text, label in rows:
        normalized = normalize(text)
        ranking = matcher.rank(normalized, limit=2)
        if not ranking.candidates or ranking.reason in ("ambiguous", "empty"):
            continue
        top = ranking.candidates[0]
        library = libraries.settings_library(normalized.lang, top.intent)
        out.append(Observation(top.intent, library.locale, top.score, label == top.intent and label != OTHER))
    return out


def passing_band(scores: Sequence[tuple[float, bool]], target: float, floor: float) -> Band | None:
    """The lowest band of thresholds (>= floor) whose accepted lines are right at least ``target`` of the time.

    Every threshold in ``[low, high]`` accepts the same lines (those scoring >= high): ``high`` is the lowest
    score where precision still meets the target, ``low`` lies just above the next score down (or is the
    floor). None when no score >= floor meets the target.
    """
    ordered = sorted(scores, reverse=True)
    right = 0
    found: tuple[int, float, float] | None = None  # (index after the band's last line, score, precision)
    for count, (score, correct) in enumerate(ordered, start=1):
        right += correct
        if score < floor:
            break
        last_of_score = count == len(ordered) or ordered[count][0] < score
        if last_of_score and right / count >= target:
            found = (count, score, right / count)
    if found is None:
        return None
    count, high, precision = found
    below = ordered[count][0] if count < len(ordered) else None
    low = floor if below is None else max(floor, round(below + SCORE_STEP, 1))
    return Band(min(low, high), high, precision)


def _choose(current: float, band: Band) -> float | None:
    """The threshold to propose: None when ``current`` is already in the band, else its nearest end."""
    if band.low <= current <= band.high:
        return None  # no evidence for a change: the same lines pass either way
    return band.high if current > band.high else band.low


def propose(libraries: LibrarySet, observations: list[Observation], targets: Targets) -> list[Proposal]:
    proposals: list[Proposal] = []
    groups: dict[tuple[str, str], list[Observation]] = {}
    for o in observations:
        groups.setdefault((o.locale, o.intent), []).append(o)
    for (locale, intent_id), group in sorted(groups.items()):
        if len(group) < targets.min_lines:
            continue
        library = libraries.libraries[locale]
        intent = library.intents[intent_id]
        scores = [(o.score, o.correct) for o in group]
        band = passing_band(scores, targets.target, targets.floor)
        if band is None:
            continue  # nothing reaches the target: leave the threshold for a person to look at
        current = library.threshold(intent_id)
        threshold = _choose(current, band)
        if threshold is not None:
            proposals.append(Proposal(locale, intent_id, intent.source, "threshold", current, threshold,
                                      len(group), band.precision))
        if intent.mode != "auto":
            continue
        auto_band = passing_band(scores, targets.auto_target, max(targets.auto_floor, threshold or current))
        if auto_band is None:
            continue
        current_auto = library.auto_threshold(intent_id)
        auto = _choose(current_auto, auto_band)
        if auto is not None:
            proposals.append(Proposal(locale, intent_id, intent.source, "auto_threshold", current_auto, auto,
                                      len(group), auto_band.precision))
    return proposals


def edit_texts(root: Path, proposals: list[Proposal]) -> dict[Path, tuple[str, str]]:
    """{file: (old text, new text)} with only the proposals' key lines replaced or added."""
    by_file: dict[Path, list[Proposal]] = {}
    for p in proposals:
        match = SOURCE.match(p.source)
        if match is None:
            raise ValueError(f"intent {p.intent!r} has no file:line source ({p.source!r})")
        by_file.setdefault(root / match["file"], []).append(p)
    out: dict[Path, tuple[str, str]] = {}
    for path, mine in by_file.items():
        old = path.read_text(encoding="utf-8")
        lines = old.splitlines(keepends=True)
        # Bottom-up, so an added line never shifts the start of an intent still to edit.
        for p in sorted(mine, key=lambda p: (-_line_of(p), p.key)):
            _set_key(lines, _line_of(p) - 1, p.key, p.proposed)
        out[path] = (old, "".join(lines))
    return out


def _line_of(p: Proposal) -> int:
    match = SOURCE.match(p.source)
    assert match is not None
    return int(match["line"])


def _set_key(lines: list[str], start: int, key: str, value: float) -> None:
    """Set ``key: value`` in the intent mapping that starts at ``lines[start]`` (a "- id: …" item)."""
    item = ITEM.match(lines[start])
    if item is None or lines[start][item.end() - 1] in "{[":
        raise ValueError(f"line {start + 1}: expected a block-style list item, found {lines[start].strip()!r}")
    item_indent = len(item["indent"])
    key_indent = item.end() - 1  # the item's keys line up with the text after "- "
    end, last_key = start + 1, start
    while end < len(lines):
        stripped = lines[end].strip()
        if stripped and not stripped.startswith("#"):
            if len(lines[end]) - len(lines[end].lstrip()) <= item_indent:
                break  # the next item, or the end of the list
            last_key = end
        end += 1
    rendered = _number(value)
    for i in range(start, end):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if i != start and indent != key_indent:
            continue  # a list entry or a nested key, not one of the intent's own keys
        found = KEY_LINE.match(line[key_indent:])
        if found is None or found["key"] != key or found["indent"]:
            continue
        comment = re.search(r"\s+#.*$", found["rest"].rstrip("\n"))
        newline = "\n" if line.endswith("\n") else ""
        lines[i] = f"{line[:key_indent]}{key}: {rendered}{comment.group(0) if comment else ''}{newline}"
        return
    if not lines[last_key].endswith("\n"):
        lines[last_key] += "\n"
    lines.insert(last_key + 1, f"{' ' * key_indent}{key}: {rendered}\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def unified_diff(root: Path, edits: dict[Path, tuple[str, str]]) -> str:
    chunks: list[str] = []
    for path, (old, new) in sorted(edits.items()):
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        chunks.extend(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                           f"a/{name}", f"b/{name}"))
    return "".join(chunks)


def calibrate(root: Path, labelled: Path, targets: Targets, *, write: bool) -> tuple[list[Proposal], str]:
    """Load, measure, propose; write the files when ``write``. Returns the proposals and the diff."""
    from csbot.evaluate import read_labelled
    from csbot.match import Matcher

    libraries = load_libraries(root)
    matcher = Matcher(libraries)
    proposals = propose(libraries, observe(matcher, libraries, read_labelled(labelled)), targets)
    edits = edit_texts(root, proposals)
    diff = unified_diff(root, edits)
    if write:
        for path, (_, new) in edits.items():
            path.write_text(new, encoding="utf-8")
    return proposals, diff


# --- command line -----------------------------------------------------------------------------------


class _Settings(Protocol):
    @property
    def library_dir(self) -> Path: ...


def add_calibrate_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``csbot calibrate`` on the CLI's subparsers."""
    p = sub.add_parser("calibrate", help="propose per-intent thresholds from a labelled JSONL file")
    p.add_argument("file", type=Path, help="labelled JSON Lines ({text, intent}), e.g. a held-back set")
    p.add_argument("--target", type=float, default=DEFAULT_TARGET, help="precision each intent must keep")
    p.add_argument("--auto-target", type=float, default=DEFAULT_AUTO_TARGET,
                   help="precision of auto-sent replies (default 1.0: no wrong auto-send on the file)")
    p.add_argument("--floor", type=float, default=DEFAULT_FLOOR, help="never propose a threshold below this")
    p.add_argument("--auto-floor", type=float, default=DEFAULT_AUTO_FLOOR,
                   help="never propose an auto_threshold below this")
    p.add_argument("--min-lines", type=int, default=DEFAULT_MIN_LINES,
                   help="leave an intent alone with fewer labelled lines predicted as it")
    p.add_argument("--dry-run", action="store_true", help="print the proposed diff; change no file")
    p.set_defaults(run=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace, settings: _Settings) -> int:
    targets = Targets(args.target, args.auto_target, args.floor, args.auto_floor, args.min_lines)
    if not (0 < targets.target <= 1 and 0 < targets.auto_target <= 1):
        print("csbot: --target and --auto-target are precisions in (0, 1]", file=sys.stderr)
        return EXIT_USAGE
    try:
        proposals, diff = calibrate(settings.library_dir, args.file, targets, write=not args.dry_run)
    except (OSError, ValueError) as exc:
        print(f"csbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LibraryError as exc:
        print(f"csbot: the script library cannot be loaded:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    if not proposals:
        print("no threshold changes: every intent already meets its target (or has too few lines)")
        return EXIT_OK
    for p in proposals:
        print(f"{p.locale}/{p.intent}: {p.key} {_number(p.current)} -> {_number(p.proposed)}  "
              f"({p.lines} lines, precision {p.precision:.1%})")
    print()
    print(diff, end="")
    if args.dry_run:
        print("\n(dry run: no file changed)")
    else:
        print(f"\nwritten under {settings.library_dir}; review with `git diff` and run `csbot eval` again")
    return EXIT_OK
