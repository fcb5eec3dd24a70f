"""Template injection and runaway templates: buyer text is printed, never evaluated; library templates run in
a sandbox with size and work limits, and whatever they try is a TemplateProblem (a library error), not a 500
and not executed code."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.config import bundled_dir
from csbot.keys import db_key
from csbot.library import LibrarySet
from csbot.library.lint import lint
from csbot.match import Matcher
from csbot.replies import MAX_INT_ARG, MAX_REPLY_CHARS, Renderer, TemplateProblem, sample_variables
from csbot.store import repo
from tests.conftest import AUTH, Receiver, Signer, make_settings, message_event

Client = TestClient[Any, Any]

# Text a buyer may type as a nick or a message, hoping it is evaluated somewhere.
BUYER_PAYLOADS = [
    "{{ ''.__class__.__mro__ }}",
    "{% for x in range(10) %}X{% endfor %}",
    "<script>alert(1)</script>",
    "{{ 7*7 }}{{ config }}",
    "{0.__class__}%s%n",
]

# The usual server-side template injection payloads, as a template a shop (or an approved edit) might contain.
SSTI = {
    "mro_subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler_globals": "{{ cycler.__init__.__globals__ }}",
    "template_reference": "{{ self._TemplateReference__context }}",
    "config": "{{ config }}",
    "lipsum_globals": "{{ lipsum.__globals__ }}",
    "format_attribute": "{{ '{0.__class__}'.format(buyer) }}",
    "format_map_attribute": "{{ '{x.__class__.__init__}'.format_map({'x': buyer}) }}",
    "attr_filter": "{{ buyer|attr('__class__') }}",
    "joiner_globals": "{{ joiner.__init__.__globals__.os }}",
    "namespace_init": "{{ namespace.__init__ }}",
    "request": "{{ request.application.__globals__ }}",
}

# Templates that would eat memory or CPU: each must stop with a TemplateProblem, fast.
RUNAWAY = {
    "big_range": "{% for i in range(10**7) %}x{% endfor %}",
    "repeat": "{{ 'x' * 10**9 }}",
    "repeat_list": "{{ ([1] * 10**8)|length }}",
    "nested_loops": "{% for a in range(4000) %}{% for b in range(4000) %}{% endfor %}{% endfor %}",
    "nested_string_loops": "{% set s = 'ab' * 2000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "long_output": "{% for a in range(4000) %}xyz{% endfor %}",
    "doubling_concat": "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                       "{% endfor %}{{ ns.s|length }}",
    "doubling_plus": "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
                     "{% endfor %}{{ ns.s|length }}",
    "center": "{{ 'x'|center(10**9) }}",
    "str_method_width": "{{ 'x'.ljust(1000000000) }}",
    "percent_width": "{{ '%1000000000s' % 'x' }}",
    "percent_star": "{{ '%*s' % (1000000000, 'x') }}",
    "format_width": "{{ '{:>1000000000}'.format('x') }}",
    "join_amplifies": "{{ range(4000)|join('x' * 4000) }}",
    "replace_amplifies": "{{ ('x' * 4000)|replace('x', 'y' * 4000)|length }}",
    "sum_of_lists": "{{ ([[1] * 4000] * 4000)|sum(start=[])|length }}",
    "exponential_macro": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "infinite_recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "division_by_zero": "{{ 1 / 0 }}",
}


def renderer_with(tmp_path: Path, templates: dict[str, str]) -> Renderer:
    for name, source in templates.items():
        path = tmp_path / "zh-CN" / f"{name}.j2"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return Renderer(tmp_path)


@pytest.mark.parametrize("name", sorted(SSTI))
def test_ssti_payloads_in_templates_are_refused_not_executed(tmp_path: Path, name: str) -> None:
    renderer = renderer_with(tmp_path, SSTI)
    with pytest.raises(TemplateProblem) as caught:
        renderer.render("zh-CN", name, sample_variables())
    message = str(caught.value)
    assert message.startswith(f"zh-CN/{name}.j2: ")
    assert "unsafe" in message or "undefined" in message, message  # SecurityError or UndefinedError
    assert "<class" not in message and "function" not in message  # nothing evaluated leaked into the message


@pytest.mark.parametrize("name", sorted(RUNAWAY))
def test_runaway_templates_fail_with_a_clear_problem(tmp_path: Path, name: str) -> None:
    renderer = renderer_with(tmp_path, RUNAWAY)
    with pytest.raises(TemplateProblem) as caught:
        renderer.render("zh-CN", name, sample_variables())
    assert str(caught.value).startswith(f"zh-CN/{name}.j2: ")


def test_limits_leave_ordinary_templates_alone(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {
        "ordinary": "{% for c in shop.couriers %}{{ c.name }}{{ c.fee }}元{% if not loop.last %} {% endif %}"
                    "{% endfor %}|{{ '%s元' % shop.free_shipping_over }}|{{ '{}号'.format(3) }}"
                    "|{{ range(3)|join('-') }}|{{ '=' * 10 }}|{{ 2 ** 10 }}|{{ buyer.nick ~ '亲' }}",
        "at_the_limit": f"{{% for i in range({MAX_INT_ARG}) %}}{{% endfor %}}{{{{ 'y' * {MAX_REPLY_CHARS} }}}}",
    })
    assert renderer.render("zh-CN", "ordinary", sample_variables()).text == (
        "申通8元 EMS15元 顺丰22元|99元|3号|0-1-2|==========|1024|小王亲")
    assert renderer.render("zh-CN", "at_the_limit", sample_variables()).text == "y" * MAX_REPLY_CHARS


def test_buyer_text_in_variables_is_printed_literally(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"hello": "你好 {{ buyer.nick }}！"})
    for payload in BUYER_PAYLOADS:
        variables = sample_variables() | {"buyer": {"nick": payload}}
        assert renderer.render("zh-CN", "hello", variables).text == f"你好 {payload}！"


def test_lint_reports_injected_and_runaway_templates(tmp_path: Path) -> None:
    shutil.copytree(bundled_dir("templates"), tmp_path / "templates")
    broken = {"greeting_1": SSTI["cycler_globals"], "greeting_2": RUNAWAY["nested_loops"]}
    for name, source in broken.items():
        (tmp_path / "templates" / "zh-CN" / f"{name}.j2").write_text(source, encoding="utf-8")
    problems = lint(bundled_dir("scripts_library"), Renderer(tmp_path / "templates"))
    located = {p.location for p in problems}
    assert {"templates/zh-CN/greeting_1.j2", "templates/zh-CN/greeting_2.j2"} <= {
        loc.split(":")[0] for loc in located}, problems


async def test_buyer_payloads_reach_the_buyer_as_literal_text(database_url: str, receiver: Receiver,
                                                              clock: FrozenClock, sign: Signer,
                                                              knowledge: tuple[LibrarySet, Matcher],
                                                              aiohttp_client: Callable[..., Any]) -> None:
    libraries, matcher = knowledge
    settings = make_settings(database_url, receiver.url, locale="en")  # the en greeting prints the nick
    client: Client = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    for i, payload in enumerate(BUYER_PAYLOADS):
        event = message_event("hello", conversation_id=f"c-{i}", buyer_id=f"b-{i}", nick=payload)
        body, headers = sign(event)
        resp = await client.post("/webhooks/generic", data=body, headers=headers)
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
        texts = [s["text"] for s in answer["suggestions"]] + [s["text"] for s in answer["sent"]]
        assert texts and all(payload in text for text in texts), (payload, texts)
        # and the message text itself is stored as typed
        text_event = message_event(payload, conversation_id=f"c-{i}", buyer_id=f"b-{i}", nick=payload)
        body, headers = sign(text_event)
        assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200
    delivered = await receiver.wait_for(len(BUYER_PAYLOADS))
    greeting = "Hi {}! This is 小美 from 示例小店. How can I help you today?"
    assert sorted(d["text"] for d in delivered) == sorted(greeting.format(p) for p in BUYER_PAYLOADS)
    convs = (await (await client.get("/api/conversations?limit=50", headers=AUTH)).json())["conversations"]
    assert sorted(c["buyer"]["nick"] for c in convs) == sorted(BUYER_PAYLOADS)
    for conv in convs:
        detail = await (await client.get(f"/api/conversations/{conv['id']}", headers=AUTH)).json()
        buyer_texts = [m["text"] for m in detail["messages"] if m["author"] == "buyer"]
        assert buyer_texts == ["hello", conv["buyer"]["nick"]]


async def test_a_library_template_that_misbehaves_is_a_library_error_and_stores_nothing(
        database_url: str, clock: FrozenClock, sign: Signer, tmp_path: Path,
        knowledge: tuple[LibrarySet, Matcher], aiohttp_client: Callable[..., Any],
        caplog: pytest.LogCaptureFixture) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(bundled_dir("templates"), templates)
    for name in ("greeting_1", "greeting_2"):
        (templates / "zh-CN" / f"{name}.j2").write_text(SSTI["mro_subclasses"], encoding="utf-8")
    libraries, matcher = knowledge
    settings = replace(make_settings(database_url), templates_dir=templates)
    client: Client = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    body, headers = sign(message_event("你好 在吗", message_id="m-ssti"))
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    answer = await resp.json()
    assert resp.status == 500 and answer["error"] == "library_error", answer
    assert "zh-CN/greeting_" in answer["detail"] and "csbot lint" in answer["detail"]
    assert "subclasses" not in await resp.text()  # the template's source and Python internals stay in the log
    async with client.app[db_key].read() as tx:
        assert await repo.count_messages(tx, shop_id="demo", conversation_external_id="c-1") == 0
    assert any("unsafe operation refused" in r.getMessage() for r in caplog.records)
