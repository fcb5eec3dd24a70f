"""Script library: loading with file:line errors, and lint over library + templates."""

from pathlib import Path

import pytest

from csbot.library import SPECIAL_INTENTS, TAXONOMY, LibraryError, load_libraries, load_library
from csbot.library.lint import lint
from csbot.replies import Renderer

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_library_and_templates_lint_clean() -> None:
    assert lint(ROOT / "scripts_library", Renderer(ROOT / "templates")) == []


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_bundled_library_covers_taxonomy_and_special_intents(locale: str) -> None:
    library = load_libraries(ROOT / "scripts_library").libraries[locale]
    assert set(TAXONOMY) | set(SPECIAL_INTENTS) <= set(library.intents)
    assert library.intents["bargain"].mode == "suggest"  # a price is never conceded automatically
    assert library.intents["human_agent"].escalate and library.intents["complaint"].escalate


def test_seed_scripts_render_as_the_shop_wrote_them() -> None:
    renderer = Renderer(ROOT / "templates")
    from csbot.replies import sample_variables

    context = sample_variables()
    topup = renderer.render("zh-CN", "shipping_fee_topup", context).text
    assert "申通8元 EMS15元 顺丰22元" in topup and "https://shop.example/topup" in topup
    assert "补运费-小王" in topup
    assert renderer.render("zh-CN", "greeting_1", context).text.startswith("亲亲好，我是示例小店的客服小美")
    assert "物有所值" in renderer.render("zh-CN", "bargain_1", context).text
    assert "10元" in renderer.render("zh-CN", "bargain_concede", context).text
    assert "五星好评" in renderer.render("zh-CN", "closing_1", context).text
    offline = renderer.render("zh-CN", "offline_1", context).text
    assert offline.startswith("mm你好---我是示例小店的客服小美") and "明天 08:30" in offline


INTENTS = """\
intents:
  - id: greeting
    label: hi
    triggers: [在吗]
    replies: [hello]
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_library_intent_source_and_defaults(tmp_path: Path) -> None:
    _write(tmp_path, {"zh-CN/a.yaml": "defaults: {threshold: 80, margin: 5}\n" + INTENTS})
    library = load_library(tmp_path, "zh-CN")
    intent = library.intents["greeting"]
    assert intent.source == "zh-CN/a.yaml:3"
    assert (intent.mode, intent.triggers, intent.replies) == ("suggest", ("在吗",), ("hello",))
    assert (library.threshold("greeting"), library.margin, library.auto_threshold("greeting")) == (80, 5, 92)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("intents:\n  - id: a\n    replies: [x\n", "zh-CN/a.yaml:4: YAML syntax error"),
        ("intents:\n  - id: a\n    replies: [x]\n    colour: red\n", "zh-CN/a.yaml:4: unknown intent key 'colour'"),
        ("intents:\n  - label: a\n    replies: [x]\n", "zh-CN/a.yaml:2: missing `id:`"),
        ("intents:\n  - id: a\n    triggers: [x]\n", "zh-CN/a.yaml:2: intent 'a': `replies:` must list"),
        ("intents:\n  - id: a\n    replies: [x]\n    mode: sometimes\n", "zh-CN/a.yaml:4: mode must be"),
        ("intents:\n  - id: a\n    replies: [x]\n    triggers: 在吗\n", "zh-CN/a.yaml:4: `triggers:` must be a list"),
        (
            "intents:\n  - id: a\n    replies: [x]\n    threshold: high\n",
            "zh-CN/a.yaml:4: `threshold:` must be a number",
        ),
        (
            "intents:\n  - id: a\n    replies: [x]\n    escalate: 1\n",
            "zh-CN/a.yaml:4: `escalate:` must be true or false",
        ),
        ("intent:\n  - id: a\n", "zh-CN/a.yaml:1: unknown top-level key 'intent'"),
    ],
)
def test_schema_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    _write(tmp_path, {"zh-CN/a.yaml": text})
    with pytest.raises(LibraryError) as caught:
        load_library(tmp_path, "zh-CN")
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_same_intent_twice_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, {"zh-CN/a.yaml": INTENTS, "zh-CN/b.yaml": INTENTS})
    with pytest.raises(LibraryError) as caught:
        load_library(tmp_path, "zh-CN")
    assert caught.value.problems == ["zh-CN/b.yaml:2: intent 'greeting' is already defined at zh-CN/a.yaml:2"]


def test_english_falls_back_to_chinese_intents(tmp_path: Path) -> None:
    _write(tmp_path, {"zh-CN/a.yaml": INTENTS, "en/a.yaml": "intents: []\n"})
    libraries = load_libraries(tmp_path)
    assert libraries.intent("en", "greeting").source == "zh-CN/a.yaml:2"
    assert libraries.library("fr").locale == "zh-CN"


BROKEN_LIBRARY = """\
intents:
  - id: greeting
    label: 问候
    triggers: [在吗, 包邮吗]
    replies: [greeting_1, missing_template]
  - id: shipping_fee
    label: 运费
    triggers: [包郵嗎]
    replies: [uses_unknown_variable]
"""


def test_lint_finds_every_kind_of_problem(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "scripts_library/zh-CN/main.yaml": BROKEN_LIBRARY,
            "scripts_library/en/bad.yaml": "intents:\n  - id: x\n    replies: [a\n",
            "templates/zh-CN/greeting_1.j2": "你好{{ shop.name }}",
            "templates/zh-CN/uses_unknown_variable.j2": "运费\n{{ order.total }}\n",
            "templates/zh-CN/bad_attribute.j2": "x\n{{ shop.nmae }}\n",
            "templates/zh-CN/bad_syntax.j2": "x\ny\n{% if %}\n",
        },
    )
    problems = {str(p) for p in lint(tmp_path / "scripts_library", Renderer(tmp_path / "templates"))}
    expected_prefixes = [
        "zh-CN/main.yaml:2: intent 'greeting': reply template 'missing_template' not found",
        "zh-CN/main.yaml:6: trigger '包郵嗎' of 'shipping_fee' is the same as '包邮吗' of 'greeting'",
        "zh-CN/: taxonomy intent 'bargain' is missing",
        "zh-CN/: special intent 'opt_out' is missing",
        "en/bad.yaml:4: YAML syntax error",
        "templates/zh-CN/uses_unknown_variable.j2:2: variable 'order' is not in the template context",
        "templates/zh-CN/bad_attribute.j2:2: 'dict object' has no attribute 'nmae'",
        "templates/zh-CN/bad_syntax.j2:3: ",
    ]
    for prefix in expected_prefixes:
        assert any(p.startswith(prefix) for p in problems), (prefix, sorted(problems))
    assert not any("greeting_1.j2" in p for p in problems)
