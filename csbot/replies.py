"""Render stage: library template name + variables -> reply text. Sandboxed Jinja2, no I/O beyond loading templates.

Templates live under ``templates/{locale}/{name}.j2``. They are written by the shop, not by buyers, but we
still render them in Jinja2's ``SandboxedEnvironment`` (a template cannot reach Python internals) with
``StrictUndefined`` (a missing variable is an error that ``csbot lint`` reports, never a silent blank).
Buyer-supplied text (nick, message) only ever arrives as *variables*, so it is printed, never evaluated.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

#: Longest reply we will ever emit; a runaway template (loops) is cut off with an error, not sent.
MAX_REPLY_CHARS = 2000
#: Longest string or list an operator or a filter may build inside a template (before it is printed).
MAX_VALUE_LEN = 4096
#: Largest whole number a template may pass to a call or a filter (range(), center(), indent(), …).
#: With MAX_VALUE_LEN it bounds what one step can build (replace, expandtabs: their product, ~16 M).
MAX_INT_ARG = 4096
#: Loop iterations plus calls one rendering may make: nested loops multiply, this does not.
MAX_STEPS = 20_000
# The rendering's step counter rides in the template context under a name no template can write.
_BUDGET = "csbot render budget"
# Width or precision in a %-format or a str.format spec: digits or a `*` taken from the arguments.
_PERCENT_SPEC = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateProblem(Exception):
    """A template is missing, does not compile, needs a variable the context lacks, tried something the
    sandbox refuses, or grew past a size limit."""


@dataclass(frozen=True)
class Reply:
    template: str  # "zh-CN/greeting_1"
    text: str


class _Budget:
    def __init__(self) -> None:
        self.steps = 0

    def spend(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise SecurityError(f"template took more than {MAX_STEPS} loop iterations and calls")


def _budget(context: Context) -> _Budget:
    budget = context.get(_BUDGET)
    if not isinstance(budget, _Budget):  # rendered outside Renderer.render: a fresh allowance
        budget = _Budget()
    return budget


def _sized(value: Any) -> Any:
    if isinstance(value, str | list | tuple | dict | set) and len(value) > MAX_VALUE_LEN:
        raise SecurityError(f"template built a value of {len(value)} items, over {MAX_VALUE_LEN}")
    return value


def _small_ints(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_INT_ARG:
            raise SecurityError(f"argument {arg} is over the template limit {MAX_INT_ARG}")


def _safe_format(spec: str) -> None:
    for width, precision in _PERCENT_SPEC.findall(spec):
        _small_ints(int(n) if n.isdigit() else MAX_INT_ARG + 1 if n == "*" else 0 for n in (width, precision))


class _LimitedSandbox(SandboxedEnvironment):
    """Jinja2's sandbox (no private attributes, no unsafe callables) plus size and work limits, so that
    `{% for i in range(10**7) %}`, `'x' * 10**9` or nested loops fail fast instead of eating the server.

    Jinja folds constant expressions at compile time unless the operator is intercepted, so intercepting
    `*`, `**`, `%` and `+` also keeps `'x' * 10**9` from being built while the template compiles."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)  # lipsum(n) builds n paragraphs; no reply needs it
        for name, func in list(self.filters.items()):
            self.filters[name] = _limited_filter(func)
        self.filters["csbot_step"] = _step_through
        self.filters["csbot_sized"] = _sized

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = _Metered().visit(super()._parse(source, name, filename))
        assert isinstance(tree, nodes.Template)
        return tree

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _budget(__context).spend()
        _small_ints((*args, *kwargs.values()))
        return _sized(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_VALUE_LEN:
                    raise SecurityError(f"template repeats a value to over {MAX_VALUE_LEN} items")
        elif operator == "**":
            if isinstance(right, int | float) and (abs(right) > 64 or (isinstance(left, int) and abs(left) > 2**64)):
                raise SecurityError("template raises to a power too large")
        elif operator == "%" and isinstance(left, str):
            _safe_format(left)
        return _sized(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # `'{:>1000000000}'.format(x)` would allocate before any size check: refuse wide specs up front.
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            for _, _, spec, _ in string.Formatter().parse(value.__self__):
                if spec and ("{" in spec or any(int(n) > MAX_INT_ARG for n in re.findall(r"\d+", spec))):
                    raise SecurityError("str.format spec too wide (or taken from an argument)")
        return wrapped


class _Metered(NodeTransformer):
    """Every {% for %} iterates through csbot_step, which charges the rendering's step budget; every `~`
    concatenation goes through csbot_sized (Jinja compiles `~` to a plain join no sandbox hook sees)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        loop = self.generic_visit(node)
        assert isinstance(loop, nodes.For)
        loop.iter = nodes.Filter(loop.iter, "csbot_step", [], [], None, None, lineno=loop.lineno)
        return loop

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        return nodes.Filter(self.generic_visit(node), "csbot_sized", [], [], None, None, lineno=node.lineno)


def _limited_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    # A filter that receives the context/environment first (jinja_pass_arg) has the value second.
    skip = 2 if hasattr(func, "jinja_pass_arg") else 1
    aggregates = getattr(func, "__name__", "") in ("do_join", "sync_do_join", "do_sum", "sync_do_sum")

    @functools.wraps(func)
    def limited(*args: Any, **kwargs: Any) -> Any:
        _small_ints((*args[skip:], *kwargs.values()))
        if aggregates:  # join and sum build the total of their items (plus separators): check it first
            items = list(args[skip - 1])
            separator = args[skip] if len(args) > skip and isinstance(args[skip], str) else kwargs.get("d", "")
            total = sum(len(i) if isinstance(i, str | list | tuple) else 1 for i in items)
            if total + len(items) * len(str(separator)) > MAX_VALUE_LEN:
                raise SecurityError(f"{func.__name__} would build over {MAX_VALUE_LEN} items")
            args = (*args[:skip - 1], items, *args[skip:])
        return _sized(func(*args, **kwargs))

    return limited


@jinja2.pass_context
def _step_through(context: Context, iterable: Any) -> Iterator[Any]:
    budget = _budget(context)
    for item in iterable:
        budget.spend()
        yield item


class Renderer:
    """Loads ``templates/`` once; ``render(locale, name, variables)`` is cheap afterwards."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self._env = _LimitedSandbox(
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
        """Render one template; every way it can fail (missing, syntax, undefined variable, refused by the
        sandbox, over a limit, a runtime error in the template) is a TemplateProblem naming it."""
        path = self.path_of(locale, name)
        try:
            chunks = self._env.get_template(path).generate({**variables, _BUDGET: _Budget()})
            text = _bounded_join(chunks, path)
        except jinja2.TemplateNotFound as exc:
            raise TemplateProblem(f"{path}: template not found") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem(f"{path}:{exc.lineno}: {exc.message}") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateProblem(f"{path}: {exc.message}") from exc
        except SecurityError as exc:
            raise TemplateProblem(f"{path}: unsafe operation refused: {exc}") from exc
        except TemplateProblem:
            raise
        except (ArithmeticError, MemoryError, RecursionError, LookupError, TypeError, ValueError) as exc:
            # A template's own runtime error (1/0, a bad filter argument, recursion): its author's to fix.
            raise TemplateProblem(f"{path}: {type(exc).__name__}: {str(exc)[:200]}") from exc
        text = text.strip()
        if len(text) > MAX_REPLY_CHARS:
            raise TemplateProblem(f"{path}: rendered {len(text)} characters, over {MAX_REPLY_CHARS}")
        return Reply(template=f"{locale}/{name}", text=text)


def _bounded_join(chunks: Iterator[str], path: str) -> str:
    """Join the rendered output, stopping as soon as it is certainly too long (leading and trailing
    whitespace is stripped afterwards, so allow as much again of it)."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > 2 * MAX_REPLY_CHARS:
            raise TemplateProblem(f"{path}: output grew past {MAX_REPLY_CHARS} characters; rendering stopped")
        out.append(chunk)
    return "".join(out)


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
