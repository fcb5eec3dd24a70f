"""A message asking several questions ("包邮吗 什么时候发货"), end to end through the signed webhook: one
suggestion per question, best first, never an automatic answer to only one of them. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from csbot.keys import db_key, deps_key
from csbot.normalize import normalize
from csbot.store.models import Message, Suggestion
from tests.conftest import AUTH, Signer, message_event

Client = TestClient[Any, Any]


async def post(client: Client, sign: Signer, text: str, **kw: Any) -> dict[str, Any]:
    body, headers = sign(message_event(text, **kw))
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def pending_in_api(client: Client) -> list[dict[str, Any]]:
    convs = (await (await client.get("/api/conversations", headers=AUTH)).json())["conversations"]
    detail = await (await client.get(f"/api/conversations/{convs[0]['id']}", headers=AUTH)).json()
    suggestions: list[dict[str, Any]] = detail["suggestions"]
    return suggestions


@pytest.mark.parametrize(
    ("text", "intents"),
    [
        ("包邮吗 什么时候发货", {"shipping_fee", "ship_time"}),  # both auto intents: alone, each would auto-send
        ("有货吗走什么快递", {"stock", "shipping_fee"}),
        ("is shipping free? when will it ship", {"shipping_fee", "ship_time"}),
    ],
)
async def test_one_suggestion_per_question_and_no_auto_send(client: Client, sign: Signer, text: str,
                                                            intents: set[str]) -> None:
    answer = await post(client, sign, text, message_id="m-1")
    assert answer["action"] == "suggested" and answer["sent"] == []
    suggestions = answer["suggestions"]
    assert {s["intent"] for s in suggestions} == intents
    assert len(suggestions) == len(intents)  # one per question, no extra variants
    assert all(s["text"] and s["status"] == "pending" for s in suggestions)
    scores = [s["score"] for s in suggestions]
    assert scores == sorted(scores, reverse=True)  # best first
    assert [(s["id"], s["intent"]) for s in await pending_in_api(client)] == [
        (s["id"], s["intent"]) for s in suggestions]
    async with client.app[db_key].read() as tx:
        (msg,) = (await tx.scalars(select(Message).where(Message.direction == "in"))).all()
        assert (msg.action, msg.intent) == ("suggested", suggestions[0]["intent"])
        assert await tx.scalar(select(Message.id).where(Message.direction == "out")) is None  # nothing went out


async def test_each_question_alone_is_still_sent_automatically(client: Client, sign: Signer) -> None:
    """The contrast that shows the rule: the same questions one per message are auto-sent as before."""
    first = await post(client, sign, "包邮吗", message_id="m-1")
    second = await post(client, sign, "什么时候发货", message_id="m-2")
    assert [(a["action"], a["intent"]) for a in (first, second)] == [
        ("auto_sent", "shipping_fee"), ("auto_sent", "ship_time")]


async def test_a_greeting_beside_a_question_is_not_a_second_question(client: Client, sign: Signer) -> None:
    """Such a message is acted on as one question, on the whole message's ranking, as before."""
    text = "亲 在吗？能便宜点吗"
    answer = await post(client, sign, text)
    assert (answer["action"], answer["intent"]) == ("suggested", "bargain")
    assert answer["suggestions"][0]["intent"] == "bargain"
    whole = client.app[deps_key].matcher.rank(normalize(text))
    part = client.app[deps_key].matcher.rank(normalize("能便宜点吗"))
    assert whole.top is not None and part.top is not None and whole.top.score != part.top.score
    assert answer["score"] == round(whole.top.score, 1)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("我要投诉，什么时候发货", "complaint"),  # the complaint is not the best-scored part, still escalates
        ("包邮吗？能便宜50吗", "bargain"),  # 50 yuan off is over the demo shop's 10-yuan ceiling
    ],
)
async def test_a_part_a_human_must_handle_escalates_the_message(client: Client, sign: Signer, text: str,
                                                                 intent: str) -> None:
    answer = await post(client, sign, text)
    assert (answer["action"], answer["intent"]) == ("escalated", intent)
    assert answer["sent"] == []


async def test_opt_out_in_one_part_is_honoured(client: Client, sign: Signer) -> None:
    answer = await post(client, sign, "别再发了 什么时候发货")
    assert answer["action"] == "auto_sent"
    assert [s["intent"] for s in answer["sent"]] == ["opt_out"]
    pending = [s["intent"] for s in answer["suggestions"] if s["status"] == "pending"]
    assert pending == ["ship_time"]  # the other question waits for an agent


async def test_redelivery_of_a_multi_question_message_stores_nothing_twice(client: Client, sign: Signer) -> None:
    body, headers = sign(message_event("包邮吗 什么时候发货", message_id="m-1"))
    answers = []
    for _ in range(2):
        resp = await client.post("/webhooks/generic", data=body, headers=headers)
        assert resp.status == 200
        answers.append(await resp.json())
    assert answers[0] == answers[1]
    async with client.app[db_key].read() as tx:
        rows = (await tx.scalars(select(Suggestion))).all()
    assert sorted(r.id for r in rows) == sorted(s["id"] for s in answers[0]["suggestions"])


async def test_a_blacklisted_buyer_gets_no_suggestion_for_any_question(client: Client, sign: Signer) -> None:
    resp = await client.post("/api/shops/demo/buyers/b-9/blacklist", json={"reason": "恶意差评"}, headers=AUTH)
    assert resp.status == 200
    answer = await post(client, sign, "包邮吗 什么时候发货", buyer_id="b-9")
    assert (answer["action"], answer["suggestions"], answer["sent"]) == ("ignored", [], [])
