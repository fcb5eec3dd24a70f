"""Render stage: library template name + variables -> reply text. Sandboxed Jinja2, no I/O beyond loading templates.

Templates live under ``templates/{locale}/{name}.j2``. They are written by the shop, not by buyers, but we
still render them in Jinja2's ``SandboxedEnvironment`` (a template cannot reach Python internals) with
``StrictUndefined`` (a missing variable is an error that ``csbot lint`` reports, never a silent blank).
Buyer-supplied text (nick, message) only ever arrives as *variables*, so it is printed, never evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

#: Longest reply we will ever emit; a runaway template (loops) is cut off with an error, not sent.
MAX_REPLY_CHARS = 2000


class TemplateProblem(Exception):
    """A template is missing, does not compile, or needs a variable the context lacks."""


@dataclass(frozen=True)
class Reply:
    template: str  # "zh-CN/greeting_1"
    text: str


class Renderer:
    """Loads ``templates/`` once; ``render(locale, name, variables)`` is cheap afterwards."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self._env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(templates_dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # chat text, not HTML; the console escapes on display
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

    @staticmethod
    def path_of(locale: str, name: str) -> str:
        return f"{locale}/{name}.j2"

    def exists(self, locale: str, name: str) -> bool:
        return (self.templates_dir / self.path_of(locale, name)).is_file()

    def names(self, locale: str) -> list[str]:
        base = self.templates_dir / locale
        return sorted(p.relative_to(base).with_suffix("").as_posix() for p in base.rglob("*.j2"))

    def undeclared_variables(self, locale: str, name: str) -> set[str]:
        """Top-level names the template reads (for lint: each must be in the documented context)."""
        path = self.path_of(locale, name)
        try:
            source = (self.templates_dir / path).read_text(encoding="utf-8")
            return set(meta.find_undeclared_variables(self._env.parse(source)))
        except (OSError, jinja2.TemplateSyntaxError) as exc:
            raise TemplateProblem(f"{path}: {exc}") from exc

    def render(self, locale: str, name: str, variables: Mapping[str, Any]) -> Reply:
        path = self.path_of(locale, name)
        try:
            text = self._env.get_template(path).render(**variables)
        except jinja2.TemplateNotFound as exc:
            raise TemplateProblem(f"{path}: template not found") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem(f"{path}:{exc.lineno}: {exc.message}") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateProblem(f"{path}: {exc.message}") from exc
        except jinja2.sandbox.SecurityError as exc:
            raise TemplateProblem(f"{path}: unsafe operation refused: {exc}") from exc
        text = text.strip()
        if len(text) > MAX_REPLY_CHARS:
            raise TemplateProblem(f"{path}: rendered {len(text)} characters, over {MAX_REPLY_CHARS}")
        return Reply(template=f"{locale}/{name}", text=text)


def sample_variables() -> dict[str, Any]:
    """The documented template context, filled with demo values.

    This is the contract between the pipeline and template authors: ``variables_for`` in
    ``pipeline.py`` builds exactly these keys, and ``csbot lint`` renders every template against
    this sample, so a template that reads anything else fails lint.
    """
    return {
        "shop": {
            "name": "示例小店",
            "agent_name": "小美",
            "hours_text": "每天 08:30-23:00",
            "next_open": "明天 08:30",
            "bargain_ceiling": 10,
            "couriers": [
                {"name": "申通", "fee": 8},
                {"name": "EMS", "fee": 15},
                {"name": "顺丰", "fee": 22},
            ],
            "topup_link": "https://shop.example/topup",
            "free_shipping_over": 99,
        },
        "buyer": {"nick": "小王"},
        "intent": "greeting",
        # only in reminder templates (templates/*/reminder_*.j2); the order fields are filled from the
        # order's events, and are empty for a conversation follow-up
        "reminder": {
            "kind": "payment",
            "order_id": "o-1",
            "amount": "199.00",
            "items": [{"title": "羊毛围巾", "qty": 1}],
            "items_text": "羊毛围巾",
            "auto_close_at": "明天 10:00",
        },
    }
