"""Load the script library: scripts_library/{locale}/*.yaml -> LibrarySet. Reads files; no other I/O.

Every problem is collected (not just the first) and reported as "zh-CN/presales.yaml:12: message", so a
shop editing its scripts sees all mistakes at once. Line numbers come from PyYAML's node marks: we compose
the node tree and validate it ourselves instead of loading plain dicts, which would lose them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from csbot.library.model import DEFAULT_LOCALE, Intent, Library, LibraryError, LibrarySet, Mode

#: Used when a locale's files set no ``defaults:``.
FALLBACK_THRESHOLD = 70.0
FALLBACK_AUTO_THRESHOLD = 92.0
FALLBACK_MARGIN = 3.0

INTENT_KEYS = frozenset(
    {"id", "label", "triggers", "negatives", "replies", "mode", "threshold", "auto_threshold", "escalate"}
)
DEFAULT_KEYS = frozenset({"threshold", "auto_threshold", "margin"})
TOP_KEYS = frozenset({"intents", "defaults", "review"})  # review: topics of buyers' reviews (aftersales/reviews.py)
INTENT_ID = re.compile(r"[a-z][a-z0-9_]*")
TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


@dataclass
class _Collector:
    """Problems and results gathered while reading one locale."""

    locale: str
    problems: list[str] = field(default_factory=list)
    intents: dict[str, Intent] = field(default_factory=dict)
    review: dict[str, Intent] = field(default_factory=dict)
    defaults: dict[str, float] = field(default_factory=dict)
    defaults_at: str | None = None

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")


def load_libraries(root: Path) -> LibrarySet:
    """Every locale directory under ``root`` (scripts_library/); zh-CN is required."""
    if not root.is_dir():
        raise LibraryError([f"{root}: script library directory not found"])
    locales = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    problems: list[str] = []
    libraries: dict[str, Library] = {}
    if DEFAULT_LOCALE not in locales:
        problems.append(f"{root}: the default locale directory {DEFAULT_LOCALE}/ is missing")
    for locale in locales:
        try:
            libraries[locale] = load_library(root, locale)
        except LibraryError as exc:
            problems.extend(exc.problems)
    if problems:
        raise LibraryError(problems)
    return LibrarySet(libraries=libraries)


def load_library(root: Path, locale: str) -> Library:
    collector = _Collector(locale)
    files = sorted([*(root / locale).glob("*.yaml"), *(root / locale).glob("*.yml")])
    if not files:
        collector.problem(f"{locale}/", "no .yaml files")
    for path in files:
        _read_file(collector, root, path)
    if collector.problems:
        raise LibraryError(collector.problems)
    return Library(
        locale=locale,
        intents=dict(collector.intents),
        default_threshold=collector.defaults.get("threshold", FALLBACK_THRESHOLD),
        default_auto_threshold=collector.defaults.get("auto_threshold", FALLBACK_AUTO_THRESHOLD),
        margin=collector.defaults.get("margin", FALLBACK_MARGIN),
        review=dict(collector.review),
    )


def _read_file(collector: _Collector, root: Path, path: Path) -> None:
    name = path.relative_to(root).as_posix()
    try:
        document = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        collector.problem(f"{name}:{line}", f"YAML syntax error: {exc.problem or exc.context}")
        return
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        collector.problem(name, f"cannot read: {exc}")
        return
    if document is None:
        return  # an empty file is allowed (e.g. a placeholder)
    if not isinstance(document, MappingNode):
        collector.problem(_at(name, document), "the file must be a mapping with an `intents:` list")
        return
    for key_node, value in document.value:
        key = _scalar_text(key_node)
        if key == "intents":
            _read_intents(collector, name, value)
        elif key == "review":
            _read_intents(collector, name, value, into=collector.review)
        elif key == "defaults":
            _read_defaults(collector, name, value)
        else:
            collector.problem(_at(name, key_node), f"unknown top-level key {key!r} (allowed: {sorted(TOP_KEYS)})")


def _read_defaults(collector: _Collector, name: str, node: Node) -> None:
    where = _at(name, node)
    if collector.defaults_at is not None:
        collector.problem(where, f"`defaults:` already set in {collector.defaults_at}; keep one per locale")
        return
    collector.defaults_at = where
    if not isinstance(node, MappingNode):
        collector.problem(where, "`defaults:` must be a mapping of threshold, auto_threshold, margin")
        return
    for key_node, value_node in node.value:
        key = _scalar_text(key_node)
        if key not in DEFAULT_KEYS:
            collector.problem(_at(name, key_node), f"unknown defaults key {key!r} (allowed: {sorted(DEFAULT_KEYS)})")
            continue
        number = _score(collector, name, value_node, f"defaults.{key}")
        if number is not None:
            collector.defaults[key] = number


def _read_intents(collector: _Collector, name: str, node: Node, into: dict[str, Intent] | None = None) -> None:
    target = collector.intents if into is None else into
    if not isinstance(node, SequenceNode):
        collector.problem(_at(name, node), "`intents:` must be a list")
        return
    for item in node.value:
        intent = _read_intent(collector, name, item)
        if intent is None:
            continue
        previous = target.get(intent.id)
        if previous is not None:
            collector.problem(intent.source, f"intent {intent.id!r} is already defined at {previous.source}")
        else:
            target[intent.id] = intent


def _read_intent(collector: _Collector, name: str, node: Node) -> Intent | None:
    where = _at(name, node)
    if not isinstance(node, MappingNode):
        collector.problem(where, "each intent must be a mapping with at least `id` and `replies`")
        return None
    fields: dict[str, Node] = {}
    for key_node, value_node in node.value:
        key = _scalar_text(key_node)
        if key not in INTENT_KEYS:
            collector.problem(_at(name, key_node), f"unknown intent key {key!r} (allowed: {sorted(INTENT_KEYS)})")
        else:
            fields[key] = value_node
    before = len(collector.problems)
    intent_id = _text(collector, name, fields.get("id"), "id", where)
    if intent_id is not None and not INTENT_ID.fullmatch(intent_id):
        collector.problem(_at(name, fields["id"]), f"id {intent_id!r} must be lowercase letters, digits, _")
    label = _text(collector, name, fields.get("label"), "label", where, required=False) or intent_id or ""
    triggers = _texts(collector, name, fields.get("triggers"), "triggers")
    negatives = _texts(collector, name, fields.get("negatives"), "negatives")
    replies = _texts(collector, name, fields.get("replies"), "replies")
    if "replies" not in fields or not replies:
        collector.problem(where, f"intent {intent_id!r}: `replies:` must list at least one template name")
    for reply, reply_node in zip(replies, _items(fields.get("replies")), strict=False):
        if not TEMPLATE_NAME.fullmatch(reply) or ".." in reply:
            collector.problem(_at(name, reply_node), f"reply {reply!r} is not a template name")
    mode = _text(collector, name, fields.get("mode"), "mode", where, required=False) or "suggest"
    if mode not in ("suggest", "auto"):
        collector.problem(_at(name, fields["mode"]), f"mode must be `suggest` or `auto`, not {mode!r}")
    threshold = _score(collector, name, fields.get("threshold"), "threshold")
    auto_threshold = _score(collector, name, fields.get("auto_threshold"), "auto_threshold")
    escalate = _flag(collector, name, fields.get("escalate"), "escalate")
    if len(collector.problems) > before or intent_id is None:
        return None
    return Intent(
        id=intent_id,
        label=label,
        triggers=tuple(triggers),
        negatives=tuple(negatives),
        replies=tuple(replies),
        mode=cast(Mode, mode),
        threshold=threshold,
        auto_threshold=auto_threshold,
        escalate=escalate,
        source=where,
    )


def _at(name: str, node: Node) -> str:
    return f"{name}:{node.start_mark.line + 1}"


def _scalar_text(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else f"<{type(node).__name__}>"


def _value(node: Node) -> object:
    """The Python value of a scalar node, typed as YAML resolves it (int, float, bool, str, None)."""
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except ConstructorError as exc:
        return exc


def _text(
    collector: _Collector, name: str, node: Node | None, key: str, where: str, *, required: bool = True
) -> str | None:
    if node is None:
        if required:
            collector.problem(where, f"missing `{key}:`")
        return None
    value = _value(node) if isinstance(node, ScalarNode) else None
    if not isinstance(value, str) or not value.strip():
        collector.problem(_at(name, node), f"`{key}:` must be a non-empty string")
        return None
    return value.strip()


def _items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def _texts(collector: _Collector, name: str, node: Node | None, key: str) -> list[str]:
    if node is None:
        return []
    if not isinstance(node, SequenceNode):
        collector.problem(_at(name, node), f"`{key}:` must be a list of strings")
        return []
    out: list[str] = []
    for item in node.value:
        value = _value(item) if isinstance(item, ScalarNode) else None
        # Numbers are fine as triggers ("618"); YAML would otherwise hand us an int.
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(item.value)
        if not isinstance(value, str) or not value.strip():
            collector.problem(_at(name, item), f"each entry of `{key}:` must be a non-empty string")
            continue
        out.append(value.strip())
    return out


def _score(collector: _Collector, name: str, node: Node | None, key: str) -> float | None:
    if node is None:
        return None
    value = _value(node) if isinstance(node, ScalarNode) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        collector.problem(_at(name, node), f"`{key}:` must be a number from 0 to 100")
        return None
    return float(value)


def _flag(collector: _Collector, name: str, node: Node | None, key: str) -> bool:
    if node is None:
        return False
    value = _value(node) if isinstance(node, ScalarNode) else None
    if not isinstance(value, bool):
        collector.problem(_at(name, node), f"`{key}:` must be true or false")
        return False
    return value
