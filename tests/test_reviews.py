"""Review replies: what a review complains about, a draft that names it and the remedy, a case for low ratings,
and the agent's approval through the outbox. Real SQLite file and PostgreSQL for the HTTP tests; the review
texts below were written for these tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from csbot.aftersales import reviews
from csbot.config import bundled_dir
from csbot.keys import db_key
from csbot.library import LibrarySet
from csbot.library.lint import lint
from csbot.match import Matcher
from csbot.replies import Renderer, sample_variables
from csbot.store.models import Case, Conversation
from tests.conftest import AUTH, Receiver, Signer
from tests.test_orders import order_created, post

Client = TestClient[Any, Any]

VARIABLES = {"shop": {"name": "示例小店", "agent_name": "小美"}, "buyer": {"nick": "小王"}}

# (review text, rating, topics it must be read as, words the draft must contain: the problem and the remedy)
TABLE = [
    ("等了整整九天才收到，物流太慢了", 2, ["logistics"], ["物流", "快递"]),
    ("下单后三天都不发货，发货太慢", 3, ["logistics"], ["物流", "优先"]),
    ("快递员不打电话直接放驿站，也没有送上门", 2, ["logistics"], ["物流"]),
    ("打开箱子杯子碎了一个", 1, ["quality"], ["破损", "补寄"]),
    ("穿了一次就开线了，做工粗糙", 2, ["quality"], ["质量", "换新"]),
    ("我拍的黑色，发错颜色了", 2, ["quality"], ["发错", "补寄"]),
    ("平时穿M，这件M码偏小一码，扣子都扣不上", 3, ["size"], ["尺码", "换"]),
    ("裤子太短了，按尺码表买的还是小", 3, ["size"], ["尺码", "运费"]),
    ("客服态度很差，问了三遍尺码都爱答不理", 1, ["service"], ["客服", "跟进"]),
    ("申请售后一直推脱，售后不处理", 1, ["service"], ["客服"]),
    ("付款第二天就降价了三十块，也不给补差价", 2, ["price"], ["降", "差价"]),
    ("同样的东西比直播间贵了二十", 3, ["price"], ["价格", "差价"]),
    ("颜色挺正的质量不错，就是物流太慢了", 4, ["logistics", "praise"], ["物流"]),
    ("款式很好看，但是尺码偏大，而且客服不回复消息", 2, ["size", "service", "praise"], ["尺码", "客服"]),
    ("收到是坏的，联系客服还态度恶劣", 1, ["quality", "service"], ["质量", "客服"]),
]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(bundled_dir("templates"))


@pytest.mark.parametrize(("text", "rating", "topics", "words"), TABLE)
def test_draft_names_the_complaint_and_the_remedy(knowledge: tuple[LibrarySet, Matcher], renderer: Renderer,
                                                  text: str, rating: int, topics: list[str], words: list[str]) -> None:
    libraries, _ = knowledge
    draft = reviews.draft_reply(libraries, renderer, "zh-CN", VARIABLES, rating, text)
    assert [t.id for t in draft.topics] == topics
    assert draft.plan.complaints == tuple(t for t in topics if t != reviews.PRAISE)
    assert all(word in draft.text for word in words), draft.text
    assert "谢谢您喜欢" not in draft.text  # a complaint never gets the praise thank-you
    assert reviews.forbidden_in(draft.text) == []
    assert draft.plan.open_case == (rating <= 3)


@pytest.mark.parametrize("text", ["很满意，面料舒服，发货很快，会回购", "非常好，五星好评", ""])
def test_praise_gets_a_thank_you(knowledge: tuple[LibrarySet, Matcher], renderer: Renderer, text: str) -> None:
    draft = reviews.draft_reply(knowledge[0], renderer, "zh-CN", VARIABLES, 5, text)
    assert draft.plan.templates == ("review_reply_praise",)
    assert "谢谢" in draft.text and not draft.plan.open_case and reviews.forbidden_in(draft.text) == []


def test_low_rating_without_a_readable_complaint_is_flagged(knowledge: tuple[LibrarySet, Matcher],
                                                           renderer: Renderer) -> None:
    draft = reviews.draft_reply(knowledge[0], renderer, "zh-CN", VARIABLES, 1, "呵呵")
    assert draft.plan.needs_edit and draft.plan.open_case and "谢谢" not in draft.text


def test_every_bundled_template_may_be_published(renderer: Renderer) -> None:
    for locale in ("zh-CN", "en"):
        for name in renderer.names(locale):
            assert reviews.forbidden_in(renderer.render(locale, name, sample_variables()).text) == [], name


def test_lint_rejects_a_template_that_trades_for_a_rating(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(bundled_dir("templates"), templates)
    (templates / "zh-CN" / "review_reply_praise.j2").write_text("亲，追评晒图返现5元哦~\n", encoding="utf-8")
    problems = [str(p) for p in lint(bundled_dir("scripts_library"), Renderer(templates))]
    assert [p for p in problems if "review_reply_praise" in p] == [
        "templates/zh-CN/review_reply_praise.j2:1: asks for a changed or removed review ('追评'): platforms forbid it",
        "templates/zh-CN/review_reply_praise.j2:1: asks for a changed or removed review ('返现'): platforms forbid it",
    ]
    assert lint(bundled_dir("scripts_library"), Renderer(bundled_dir("templates"))) == []


def review_event(review_id: str, rating: int, text: str, *, order_id: str | None = "o-1") -> dict[str, Any]:
    review: dict[str, Any] = {"id": review_id, "rating": rating, "text": text, "buyer": {"id": "b-1", "nick": "小王"}}
    if order_id is not None:
        review["order_id"] = order_id
    return {"type": "review.created", "shop": "demo", "review": review}


async def test_low_rating_opens_a_case_and_the_approved_reply_goes_out(client: Client, sign: Signer,
                                                                       receiver: Receiver) -> None:
    await post(client, sign, order_created())
    status, answer = await post(client, sign, review_event("rv-1", 2, "物流太慢了，等了一个星期"))
    assert status == 200
    assert (answer["topics"], answer["reply"]["status"]) == (["logistics"], "pending")
    assert "物流" in answer["reply"]["draft"] and answer["case_id"] is not None
    # Redelivered under another webhook id: the same answer, nothing stored twice.
    assert (await post(client, sign, review_event("rv-1", 2, "物流太慢了，等了一个星期")))[1] == answer
    async with client.app[db_key].read() as tx:
        case = (await tx.execute(select(Case))).scalars().one()
    assert (case.id, case.type, case.source) == (answer["case_id"], "review", "review")
    assert receiver.received == []  # nothing leaves before an agent approves

    listed = (await (await client.get("/api/reviews?status=pending", headers=AUTH)).json())["reviews"]
    assert [r["external_id"] for r in listed] == ["rv-1"]
    edited = answer["reply"]["draft"] + "单号已帮您催过。"
    resp = await client.post(f"/api/reviews/{answer['id']}/reply", json={"text": edited}, headers=AUTH)
    assert resp.status == 200
    [out] = await receiver.wait_for(1)
    assert (out["type"], out["review_id"], out["order_id"], out["text"]) == ("review.reply", "rv-1", "o-1", edited)
    resp = await client.post(f"/api/reviews/{answer['id']}/reply", json={}, headers=AUTH)
    assert resp.status == 409
    sent = (await (await client.get("/api/reviews?status=sent", headers=AUTH)).json())["reviews"]
    assert [(r["reply"]["final_text"], r["reply"]["decided_by"]) for r in sent] == [(edited, "api")]
    # The reply went out from a conversation row of its own, which is no chat: the conversation list skips it.
    conversations = (await (await client.get("/api/conversations", headers=AUTH)).json())["conversations"]
    assert conversations == []
    async with client.app[db_key].read() as tx:
        assert [c.channel for c in (await tx.execute(select(Conversation))).scalars()] == ["review"]


async def test_praise_thanks_and_opens_no_case(client: Client, sign: Signer) -> None:
    _, answer = await post(client, sign, review_event("rv-2", 5, "非常满意，质量很好，发货很快", order_id=None))
    assert answer["topics"] == ["praise"] and answer["case_id"] is None
    assert "谢谢" in answer["reply"]["draft"] and answer["reply"]["templates"] == ["review_reply_praise"]
    async with client.app[db_key].read() as tx:
        assert (await tx.execute(select(Case))).scalars().all() == []


async def test_agent_cannot_publish_a_rating_deal(client: Client, sign: Signer, receiver: Receiver) -> None:
    _, answer = await post(client, sign, review_event("rv-3", 1, "尺码偏小穿不上", order_id=None))
    resp = await client.post(f"/api/reviews/{answer['id']}/reply", json={"text": "亲改好评给您返现10元"},
                             headers=AUTH)
    assert (resp.status, (await resp.json())["detail"]["field"]) == (400, "text")
    resp = await client.post(f"/api/reviews/{answer['id']}/reject", json={"reason": "电话联系"}, headers=AUTH)
    assert (resp.status, (await resp.json())["reply"]["status"]) == (200, "rejected")
    assert (await client.post("/api/reviews/999999/reply", json={}, headers=AUTH)).status == 404
    status, body = await post(client, sign, review_event("rv-4", 9, "x"))
    assert (status, body["detail"]["field"]) == (400, "review.rating")
    assert receiver.received == []


async def test_console_reviews_page(client: Client) -> None:
    page = await client.get("/console/reviews", headers=AUTH)
    html = await page.text()
    assert page.status == 200 and "/console/static/reviews.js" in html and "评价回复" in html
    assert '<option value="pending">待回复</option>' in html
    boot = json.loads(html.split('<script type="application/json" id="boot">')[1].split("</script>")[0])
    assert boot["topics"]["quality"] == "质量/破损/发错"  # the review library's own labels, in the page's language
    english = await (await client.get("/console/reviews?lang=en", headers=AUTH)).text()
    assert "Awaiting reply" in english and 'href="/console/reviews"' in english
    script = await client.get("/console/static/reviews.js")
    assert script.status == 200 and "/api/reviews/" in await script.text()
