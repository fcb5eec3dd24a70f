"""Console: learning from agents' feedback. Proposes library changes from the accept/edit/reject history;
a supervisor approves them, and only then are they written into `scripts_library/` (and `templates/`)
as small line insertions, so `git diff` shows exactly what was learned. Nothing is applied blindly.

- trigger: a buyer phrasing agents answered with an intent's suggestion (accepted or edited) at least
  `min_repeats` times, that the intent does not already have;
- variant: the same edited text sent for an intent at least `min_repeats` times -> a new reply template;
- low_acceptance: an intent whose suggestions were accepted (or edited) less than `low_rate` of the time
  over at least `min_decided` decisions: flagged for a human, never changed automatically.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from sqlalchemy import select

from csbot.console.auth import require_supervisor
from csbot.errors import Conflict, MalformedEvent
from csbot.library import LibraryError, LibrarySet, load_libraries
from csbot.normalize import normalize
from csbot.store.db import Tx
from csbot.store.models import Conversation, Message, Suggestion

Kind = Literal["trigger", "variant", "low_acceptance"]
MAX_TRIGGER_CHARS = 30
_PRIVATE = re.compile(r"\d{5,}|@|https?://")  # phone / order numbers, e-mails, links: never a trigger


@dataclass(frozen=True)
class Feedback:
    shop_id: str
    intent: str
    status: str  # accepted | edited | rejected
    buyer_text: str | None
    final_text: str | None


@dataclass(frozen=True)
class Proposal:
    kind: Kind
    locale: str
    intent: str
    text: str
    evidence: int  # how many decisions support it
    detail: str = ""

    @property
    def id(self) -> str:
        """Stable across runs, so an approval names exactly what the supervisor saw."""
        raw = f"{self.kind}|{self.locale}|{self.intent}|{self.text}"
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


class LearnError(Exception):
    pass


async def history(tx: Tx) -> list[Feedback]:
    query = (
        select(Conversation.shop_id, Suggestion.intent, Suggestion.status, Message.text, Suggestion.final_text)
        .join(Conversation, Conversation.id == Suggestion.conversation_id)
        .outerjoin(Message, Message.id == Suggestion.message_id)
        .where(Suggestion.status.in_(("accepted", "edited", "rejected")), Suggestion.intent.is_not(None))
        .order_by(Suggestion.id)
    )
    return [Feedback(shop, intent or "", status, text, final) for shop, intent, status, text, final
            in (await tx.execute(query)).all()]


def propose(feedback: Sequence[Feedback], libraries: LibrarySet, locale_of: Callable[[str], str], *,
            min_repeats: int = 2, min_decided: int = 5, low_rate: float = 0.5) -> list[Proposal]:
    """Pure: the proposals the history supports, strongest first within each kind."""
    phrasings: Counter[tuple[str, str, str]] = Counter()
    edits: Counter[tuple[str, str, str]] = Counter()
    decided: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for f in feedback:
        locale = locale_of(f.shop_id)
        decided[(locale, f.intent)][f.status] += 1
        if f.status in ("accepted", "edited") and f.buyer_text:
            phrasings[(locale, f.intent, f.buyer_text.strip())] += 1
        if f.status == "edited" and f.final_text:
            edits[(locale, f.intent, f.final_text.strip())] += 1

    out: list[Proposal] = []
    known: dict[tuple[str, str], set[str]] = {}
    for (locale, intent, text), n in phrasings.most_common():
        if n < min_repeats or len(text) > MAX_TRIGGER_CHARS or _PRIVATE.search(text):
            continue
        if (locale, intent) not in known:
            intent_def = libraries.intent(locale, intent)
            known[(locale, intent)] = {normalize(t).text for t in intent_def.triggers}
        if normalize(text).text not in known[(locale, intent)]:
            out.append(Proposal("trigger", locale, intent, text, n, "buyer phrasing answered with this intent"))
    out += [Proposal("variant", locale, intent, text, n, "agents sent this edit repeatedly")
            for (locale, intent, text), n in edits.most_common() if n >= min_repeats]
    for (locale, intent), counts in sorted(decided.items()):
        total = sum(counts.values())
        rate = (counts["accepted"] + counts["edited"]) / total
        if total >= min_decided and rate < low_rate:
            out.append(Proposal("low_acceptance", locale, intent, f"{rate:.0%}", total,
                                f"accepted {counts['accepted']}, edited {counts['edited']}, "
                                f"rejected {counts['rejected']}"))
    return out


def apply(proposals: Sequence[Proposal], libraries: LibrarySet, *, library_dir: Path, templates_dir: Path,
          approved_by: str, today: date) -> list[Path]:
    """Write approved triggers / variants into the YAML (and a template per variant); returns changed files.
    The library is reloaded afterwards; if it no longer loads, every file is restored and LearnError raised."""
    originals: dict[Path, str | None] = {}

    def edit(path: Path) -> list[str]:
        if path not in originals:
            originals[path] = path.read_text(encoding="utf-8") if path.exists() else None
        return path.read_text(encoding="utf-8").splitlines(keepends=True)

    note = f"  # learned, approved by {approved_by} {today.isoformat()}"
    try:
        for p in proposals:
            if p.kind == "low_acceptance":
                continue
            intent = libraries.intent(p.locale, p.intent)
            file_part, _, line_part = intent.source.rpartition(":")
            path = library_dir / file_part
            lines = edit(path)
            if p.kind == "trigger":
                value = json.dumps(p.text, ensure_ascii=False)  # a JSON string is a valid YAML scalar
            else:
                value = f"{p.intent}_learned_{p.id[:6]}"
                template = templates_dir / p.locale / f"{value}.j2"
                originals.setdefault(template, None)
                template.write_text("{% raw %}" + p.text.replace("{% endraw %}", "") + "{% endraw %}\n",
                                    encoding="utf-8")
            _insert(lines, int(line_part) - 1, p.intent, "triggers" if p.kind == "trigger" else "replies",
                    f"{value}{note}")
            path.write_text("".join(lines), encoding="utf-8")
        load_libraries(library_dir)
    except (LibraryError, LearnError, OSError, ValueError) as exc:
        for path, text in originals.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text, encoding="utf-8")
        raise LearnError(f"not applied: {exc}") from exc
    return sorted(originals)


def _insert(lines: list[str], near: int, intent: str, key: str, value: str) -> None:
    """Append `- value` to the `key:` list of the intent block `- id: intent` (searched from `near`)."""
    start = next((i for i in range(max(0, near - 2), len(lines)) if re.match(rf"\s*- id:\s*{re.escape(intent)}\s*$",
                                                                           lines[i])), None)
    if start is None:
        raise LearnError(f"intent {intent} not found in its file")
    item_indent = len(lines[start]) - len(lines[start].lstrip())
    for i in range(start + 1, len(lines)):
        stripped = lines[i].lstrip()
        indent = len(lines[i]) - len(stripped)
        if stripped.startswith("- ") and indent <= item_indent:
            break  # the next intent: no such key in this block
        flow = re.match(rf"(\s*{key}:\s*\[)(.*?)(\])(.*)$", lines[i].rstrip("\n"))
        if flow and indent > item_indent:  # `replies: [a, b]` -> `replies: [a, b, new]  # note`
            items, note = value.split("  # ", 1) if "  # " in value else (value, "")
            comment = flow.group(4) or (f"  # {note}" if note else "")
            lines[i] = f"{flow.group(1)}{flow.group(2)}, {items}{flow.group(3)}{comment}\n"
            return
        if stripped.rstrip() == f"{key}:":
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j].lstrip().startswith("- ")
                                      and len(lines[j]) - len(lines[j].lstrip()) > indent):
                j += 1
            while j > i + 1 and not lines[j - 1].strip():
                j -= 1
            lines.insert(j, " " * (indent + 2) + f"- {value}\n")
            return
    raise LearnError(f"intent {intent} has no '{key}:' list to extend")


# --- HTTP ------------------------------------------------------------------------------------------


def proposal_json(p: Proposal) -> dict[str, Any]:
    return {"id": p.id, "kind": p.kind, "locale": p.locale, "intent": p.intent, "text": p.text,
            "evidence": p.evidence, "detail": p.detail}


async def current_proposals(request: web.Request) -> list[Proposal]:
    from csbot.keys import db_key, deps_key, settings_key

    settings = request.app[settings_key]
    async with request.app[db_key].read() as tx:
        feedback = await history(tx)
    libraries = request.app[deps_key].libraries

    def locale_of(shop_id: str) -> str:
        shop = settings.shop(shop_id)
        return shop.locale if shop is not None else "zh-CN"

    return propose(feedback, libraries, locale_of)


async def proposals_api(request: web.Request) -> web.Response:
    """GET /api/learn/proposals (supervisors)."""
    from csbot.keys import identity_key
    from csbot.web.middlewares import json_response

    require_supervisor(request[identity_key])
    return json_response({"proposals": [proposal_json(p) for p in await current_proposals(request)]})


async def approve_api(request: web.Request) -> web.Response:
    """POST /api/learn/proposals/approve {"ids": [...]} (supervisors): write them into the library files."""
    from csbot.keys import clock_key, deps_key, identity_key, settings_key
    from csbot.web.api import _json_body
    from csbot.web.middlewares import json_response

    identity = request[identity_key]
    require_supervisor(identity)
    ids = (await _json_body(request)).get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise MalformedEvent("ids", "a non-empty list of proposal ids")
    # Recomputed here, never taken from the client: only what the history supports can be written.
    chosen = [p for p in await current_proposals(request) if p.id in set(ids)]
    if len(chosen) != len(set(ids)):
        raise Conflict({"ids": sorted(set(ids) - {p.id for p in chosen}), "problem": "no longer proposed"})
    settings = request.app[settings_key]
    try:
        changed = apply(chosen, request.app[deps_key].libraries, library_dir=settings.library_dir,
                        templates_dir=settings.templates_dir, approved_by=identity.name,
                        today=request.app[clock_key].now().date())
    except LearnError as exc:
        raise Conflict(str(exc)) from None
    return json_response({"applied": [proposal_json(p) for p in chosen], "files": [str(p) for p in changed],
                          "note": "the matcher picks the change up on the next start (csbot serve)"})
