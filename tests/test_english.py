"""English buyers (issue 8): the language is detected per message, so in one Chinese shop an English message
gets suggestions from the `en` library and templates, a Chinese one from `zh-CN`, and a message with Chinese
text in it stays with the shop's Chinese. Through the real app on a real database (the `client` fixture's
parametrisation), plus the labelled English evaluation set scored against the issue's targets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from csbot.evaluate import EvalReport, evaluate, read_labelled
from csbot.keys import settings_key
from csbot.library import TAXONOMY, LibrarySet
from csbot.match import Matcher
from csbot.normalize import normalize
from tests.conftest import Signer, message_event

Client = TestClient[Any, Any]

EN_EVAL = Path(__file__).parent / "fixtures" / "en_eval.jsonl"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

# The targets for the English set (docs/quality.md, "English").
TOP1, TOP3, WRONG_AUTO_RATE = 0.93, 0.98, 0.005


async def answer_to(client: Client, sign: Signer, text: str, conversation_id: str) -> dict[str, Any]:
    body, headers = sign(message_event(text, conversation_id=conversation_id))
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    assert resp.status == 200
    answer: dict[str, Any] = await resp.json()
    return answer


def shop_values(client: Client) -> list[str]:
    """Values the shop's settings put into any template (names, couriers): Chinese in the demo shop; and the
    shop's order-remark keyword 补运费, which staff search for whatever language the buyer writes in."""
    shop = client.app[settings_key].shops["demo"]
    return [shop.name, shop.agent_name, *(c.name for c in shop.couriers), "小王", "补运费"]  # 小王: the event's nick


def is_english(text: str, values: list[str]) -> bool:
    """English template text: no Chinese left once the shop's own (Chinese) names are taken out."""
    for value in values:
        text = text.replace(value, "")
    return bool(text.strip()) and not CJK.search(text)


def texts(answer: dict[str, Any]) -> list[str]:
    return [s["text"] for s in answer["suggestions"]] + [s["text"] for s in answer["sent"]]


async def test_english_message_gets_english_suggestions(client: Client, sign: Signer) -> None:
    answer = await answer_to(client, sign, "hw much is the shipping to shanghai??", "c-en")
    assert (answer["action"], answer["intent"]) == ("suggested", "shipping_fee")
    assert answer["suggestions"] and all(is_english(t, shop_values(client)) for t in texts(answer)), texts(answer)
    assert "ship free" in answer["suggestions"][0]["text"]


async def test_chinese_message_in_the_same_shop_gets_chinese_suggestions(client: Client, sign: Signer) -> None:
    english = await answer_to(client, sign, "how much is postage?", "c-en")
    chinese = await answer_to(client, sign, "运费多少钱", "c-zh")
    assert english["intent"] == chinese["intent"] == "shipping_fee"
    assert all(is_english(t, shop_values(client)) for t in texts(english))
    assert chinese["suggestions"] and not any(is_english(t, shop_values(client)) for t in texts(chinese))
    assert "包邮" in chinese["suggestions"][0]["text"]


@pytest.mark.parametrize(("text", "intent"), [("包邮吗 free shipping?", "shipping_fee"), ("hi 有货吗", "stock")])
async def test_mixed_message_with_chinese_is_answered_in_the_shops_chinese(client: Client, sign: Signer,
                                                                           text: str, intent: str) -> None:
    # A message with Chinese in it is Chinese (normalize._language): the buyer reads Chinese, and the shop's
    # locale is zh-CN. The English words still count as evidence for the intent.
    answer = await answer_to(client, sign, text, "c-mix")
    assert answer["intent"] == intent
    assert answer["suggestions"] and all(CJK.search(t) for t in texts(answer))
    assert not any(is_english(t, shop_values(client)) for t in texts(answer))


async def test_english_text_speak_with_order_number_and_two_questions(client: Client, sign: Signer) -> None:
    tracking = await answer_to(client, sign, "pls check my parcel, order 4123456789012 😡", "c-1")
    assert tracking["intent"] == "logistics"
    two = await answer_to(client, sign, "is it in stock? and how much is shipping", "c-2")
    # One suggestion per question of the message, each in English.
    assert {s["intent"] for s in two["suggestions"]} >= {"stock", "shipping_fee"}
    assert all(is_english(t, shop_values(client)) for t in texts(tracking) + texts(two))


async def test_english_greeting_is_sent_automatically_in_english(client: Client, sign: Signer) -> None:
    answer = await answer_to(client, sign, "hello there", "c-hi")
    assert (answer["action"], answer["intent"]) == ("auto_sent", "greeting")
    assert answer["sent"] and all(is_english(s["text"], shop_values(client)) for s in answer["sent"])


# --- the labelled English set ---------------------------------------------------------------------------


def rows() -> list[tuple[str, str]]:
    return read_labelled(EN_EVAL)


def test_english_set_covers_every_intent_and_is_english() -> None:
    labelled = rows()
    counts = {label: sum(1 for _, lab in labelled if lab == label) for label in (*TAXONOMY, "other")}
    assert 120 <= len(labelled) <= 200
    assert min(counts.values()) >= 8, counts
    # Mostly English as detected; a few mixed lines (Chinese and English) on purpose.
    english = sum(1 for text, _ in labelled if normalize(text).lang == "en")
    assert english >= 0.95 * len(labelled)


def meets_targets(report: EvalReport) -> bool:
    return report.top1 >= TOP1 and report.top3 >= TOP3 and report.wrong_auto_send_rate <= WRONG_AUTO_RATE


@pytest.mark.parametrize("half", ["all", "odd lines (tuned on)", "even lines (held out first)"])
def test_english_set_meets_the_targets(knowledge: tuple[LibrarySet, Matcher], half: str) -> None:
    # The library was tuned on the odd lines; the even lines were held out until the first round was done
    # (docs/quality.md gives both halves' figures before and after).
    labelled = rows()
    subset = {"all": labelled, "odd lines (tuned on)": labelled[0::2],
              "even lines (held out first)": labelled[1::2]}[half]
    report = evaluate(knowledge[1], subset)
    assert meets_targets(report), (report.top1, report.top3, report.wrong_auto_send, report.per_intent)


# --- round 2: typos and generic shop vocabulary (tests/fixtures/en_holdout.jsonl) -------------------------

EN_HOLDOUT = Path(__file__).parent / "fixtures" / "en_holdout.jsonl"


def test_second_english_set_meets_the_targets(knowledge: tuple[LibrarySet, Matcher]) -> None:
    # Written blind (83.3 % top-1 as first scored), then used to find the missing vocabulary: now a tuned set.
    report = evaluate(knowledge[1], read_labelled(EN_HOLDOUT))
    assert meets_targets(report), (report.top1, report.top3, report.wrong_auto_send, report.per_intent)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # Phrasings of the round-2 concepts that are in neither English set.
        ("could you knock the price down a little", "bargain"),
        ("if i buy three can you cut me a deal", "bargain"),
        ("is there a vip discount", "promotion"),  # the shop's own offer, not haggling
        ("do you ship with fedex", "shipping_fee"),
        ("it is a pre-order right? when does it go out", "ship_time"),
        ("will the white one be restocked", "stock"),
        ("what accessories come with it", "product_info"),
        ("can i put it in the washing machine", "product_info"),
        ("i weigh 70 kg and im 175 cm, which size", "product_info"),
        ("can you merge my orders", "order_change"),
        ("i chose the wrong size, pls change it to L before you ship", "order_change"),
        ("do i have to pay the return postage", "return_refund"),  # return postage is not shipping_fee
        ("no refund please, can i get a large instead", "exchange"),
        ("the service here is awful", "complaint"),
        ("the charger is missing from the box", "quality_issue"),  # a missing charger is a defect
        ("it shrank after one wash", "quality_issue"),
        ("wheres my pakage", "logistics"),  # typos of known words
        ("is this availabe in blue", "stock"),
        ("i want to cancle my order", "order_change"),
    ],
)
def test_round_two_vocabulary(knowledge: tuple[LibrarySet, Matcher], text: str, intent: str) -> None:
    top = knowledge[1].rank(normalize(text)).top
    assert top is not None and top.intent == intent, knowledge[1].rank(normalize(text)).candidates


@pytest.mark.parametrize("text", ["are you open on weekends", "what time do you open", "let me think", "i think so"])
def test_round_two_vocabulary_leaves_chat_alone(knowledge: tuple[LibrarySet, Matcher], text: str) -> None:
    assert knowledge[1].rank(normalize(text)).top is None
