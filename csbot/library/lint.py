"""Lint the script library and reply templates together. Reads files; never writes, never sends.

``csbot lint`` prints these problems and exits 1 when there is any, so a shop finds a broken template or
a clashing trigger before a buyer does. Every problem carries a location an editor can jump to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import jinja2

from csbot.aftersales.reviews import forbidden_in
from csbot.library.load import load_library
from csbot.library.model import SPECIAL_INTENTS, TAXONOMY, Library, LibraryError
from csbot.normalize import normalize
from csbot.replies import Renderer, TemplateProblem, sample_variables

MISSING_ATTRIBUTE = re.compile(r"has no attribute '([^']+)'")
LOCATED = re.compile(r"^\S+?\.j2:(\d+): ")


@dataclass(frozen=True)
class Problem:
    location: str  # "zh-CN/presales.yaml:12" or "templates/zh-CN/greeting_1.j2:3"
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def lint(library_root: Path, renderer: Renderer) -> list[Problem]:
    if not library_root.is_dir():
        return [Problem(str(library_root), "script library directory not found")]
    problems: list[Problem] = []
    locales = sorted(p.name for p in library_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for locale in locales:
        try:
            library = load_library(library_root, locale)
        except LibraryError as exc:
            problems.extend(_from_load_error(text) for text in exc.problems)
            continue
        problems.extend(_missing_intents(library))
        problems.extend(_unknown_templates(library, renderer))
        problems.extend(_duplicate_triggers(library))
        review = replace(library, intents=library.review, review={})  # the review section, checked alike
        problems.extend(_unknown_templates(review, renderer))
        problems.extend(_duplicate_triggers(review))
    for locale in _template_locales(renderer, locales):
        for name in renderer.names(locale):
            problems.extend(_template_problems(renderer, locale, name))
            problems.extend(_forbidden_phrases(renderer, locale, name))
    return problems


def _forbidden_phrases(renderer: Renderer, locale: str, name: str) -> list[Problem]:
    """Platforms punish asking buyers to change or delete a review, above all for compensation (好评返现)."""
    path = f"{renderer.templates_dir.name}/{renderer.path_of(locale, name)}"
    source = (renderer.templates_dir / renderer.path_of(locale, name)).read_text(encoding="utf-8", errors="replace")
    return [Problem(f"{path}:{_line_of(source.lower(), phrase)}",
                    f"asks for a changed or removed review ({phrase!r}): platforms forbid it")
            for phrase in forbidden_in(source)]


def _from_load_error(text: str) -> Problem:
    location, _, message = text.partition(": ")
    return Problem(location, message)


def _missing_intents(library: Library) -> list[Problem]:
    where = f"{library.locale}/"
    missing = [i for i in TAXONOMY if i not in library.intents]
    problems = [Problem(where, f"taxonomy intent {i!r} is missing") for i in missing]
    problems += [
        Problem(where, f"special intent {i!r} is missing (the pipeline needs it)")
        for i in SPECIAL_INTENTS
        if i not in library.intents
    ]
    return problems


def _unknown_templates(library: Library, renderer: Renderer) -> list[Problem]:
    return [
        Problem(intent.source, f"intent {intent.id!r}: reply template {name!r} not found ({path})")
        for intent in library.intents.values()
        for name in intent.replies
        if not renderer.exists(library.locale, name)
        for path in [f"{renderer.templates_dir.name}/{renderer.path_of(library.locale, name)}"]
    ]


def _duplicate_triggers(library: Library) -> list[Problem]:
    """The same trigger in two intents makes the matcher flip a coin between them."""
    first_seen: dict[str, tuple[str, str]] = {}
    problems: list[Problem] = []
    for intent in library.intents.values():
        for trigger in intent.triggers:
            key = normalize(trigger).text
            if not key:
                problems.append(Problem(intent.source, f"trigger {trigger!r} is empty after normalisation"))
                continue
            seen = first_seen.setdefault(key, (intent.id, trigger))
            if seen[0] != intent.id:
                problems.append(
                    Problem(
                        intent.source,
                        f"trigger {trigger!r} of {intent.id!r} is the same as {seen[1]!r} of {seen[0]!r}",
                    )
                )
    return problems


def _template_locales(renderer: Renderer, library_locales: list[str]) -> list[str]:
    root = renderer.templates_dir
    found = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    return sorted(found | {loc for loc in library_locales if (root / loc).is_dir()})


def _template_problems(renderer: Renderer, locale: str, name: str) -> list[Problem]:
    path = f"{renderer.templates_dir.name}/{renderer.path_of(locale, name)}"
    source_file = renderer.templates_dir / renderer.path_of(locale, name)
    source = source_file.read_text(encoding="utf-8", errors="replace")
    context = sample_variables()
    try:
        unknown = sorted(renderer.undeclared_variables(locale, name) - context.keys())
    except TemplateProblem as exc:
        return [_located(path, source, exc)]
    problems = [
        Problem(f"{path}:{_line_of(source, variable)}", f"variable {variable!r} is not in the template context")
        for variable in unknown
    ]
    if problems:
        return problems  # rendering would only repeat the same complaint
    try:
        renderer.render(locale, name, context)
    except TemplateProblem as exc:
        problems.append(_located(path, source, exc))
    return problems


def _located(path: str, source: str, exc: TemplateProblem) -> Problem:
    """A Problem at the line Jinja2 reported, or at the line naming the missing attribute."""
    text = str(exc)
    message = LOCATED.sub("", text).split(".j2: ", 1)[-1]
    cause = exc.__cause__
    if isinstance(cause, jinja2.TemplateSyntaxError) and cause.lineno:
        return Problem(f"{path}:{cause.lineno}", cause.message or message)
    match = LOCATED.match(text)
    if match:
        return Problem(f"{path}:{match.group(1)}", message)
    missing = MISSING_ATTRIBUTE.search(text)
    line = _line_of(source, "." + missing.group(1)) if missing else 1
    return Problem(f"{path}:{line}", message)


def _line_of(source: str, needle: str) -> int:
    for number, line in enumerate(source.splitlines(), start=1):
        if needle in line:
            return number
    return 1


def lint_report(problems: list[Problem], totals: Mapping[str, int] | None = None) -> str:
    """Human text for the CLI: one problem per line, or a short all-clear."""
    if not problems:
        extra = "" if not totals else " (" + ", ".join(f"{k} {v}" for k, v in totals.items()) + ")"
        return f"library and templates OK{extra}"
    return "\n".join(str(p) for p in problems)
