"""After-sales cases end to end: signed webhooks open and join cases, agents move them through the API, the
clock runs deadlines out, the ticker fires the case follow-ups, and the quality report counts a scripted
history with known answers. Runs on a real SQLite file and on the local PostgreSQL server."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from csbot.aftersales import cases
from csbot.clock import FrozenClock
from csbot.config import ConfigError, Settings, TickerSettings, load_settings
from csbot.console import auth
from csbot.console import repo as console_repo
from csbot.errors import Conflict, MalformedEvent
from csbot.keys import clock_key, db_key, reminders_key
from tests.conftest import AUTH, SHANGHAI, Receiver, Signer, make_settings, message_event
from tests.test_orders import order_created, order_event, post

Client = TestClient[Any, Any]


@pytest.fixture
def settings(database_url: str, receiver: Receiver) -> Settings:
    # The tests tick the reminders by hand.
    return replace(make_settings(database_url, receiver.url), ticker=TickerSettings(interval=3600.0, batch=50))


def local(text: str) -> datetime:
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


async def say(client: Client, sign: Signer, clock: FrozenClock, text: str, *, buyer: str = "b-1",
              conversation: str = "c-1") -> dict[str, Any]:
    event = message_event(text, conversation_id=conversation, buyer_id=buyer, sent_at=clock.now().isoformat())
    status, answer = await post(client, sign, event)
    assert status == 200, answer
    return answer


async def paid_order(client: Client, sign: Signer, order: str, *, buyer: str, conversation: str,
                     title: str = "羊毛围巾", paid_at: str = "2026-11-23T09:00:00+08:00") -> None:
    created = order_created(order, buyer_id=buyer, created_at="2026-11-01T08:00:00+08:00", auto_close_at=None,
                            conversation_id=conversation)
    created["order"]["items"] = [{"title": title, "qty": 1}]
    assert (await post(client, sign, created))[0] == 200
    assert (await post(client, sign, order_event("paid", order, at=paid_at)))[0] == 200


async def get(client: Client, path: str, status: int = 200) -> dict[str, Any]:
    resp = await client.get(path, headers=AUTH)
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def send(client: Client, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    resp = await client.post(path, json=body, headers=AUTH)
    assert resp.status == status, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def queue(client: Client, query: str = "") -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await get(client, f"/api/cases{query}"))["cases"]
    return listed


async def reminders(client: Client, kind: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await get(client, f"/api/reminders?kind={kind}"))["reminders"]
    return rows


# --- lifecycle --------------------------------------------------------------------------------------


async def test_lifecycle_from_first_message_to_resolution(client: Client, sign: Signer, clock: FrozenClock) -> None:
    await paid_order(client, sign, "o-1", buyer="b-1", conversation="c-1")
    answer = await say(client, sign, clock, "收到的围巾破损了 https://img.example.com/p/1.jpg")
    assert answer["intent"] == "quality_issue"

    [case] = await queue(client)
    opened = clock.now()
    assert (case["type"], case["reason"], case["state"], case["owner"]) == ("quality_issue", "damaged", "new", None)
    assert (case["order"]["id"], case["buyer"]["id"], case["conversation_id"]) == ("o-1", "b-1", "c-1")
    assert [p["url"] for p in case["photos"]] == ["https://img.example.com/p/1.jpg"]
    assert case["reply_due_at"] == (opened + timedelta(minutes=5)).isoformat()
    assert case["resolve_due_at"] == (opened + timedelta(hours=48)).isoformat()
    assert case["breaches"] == []

    # A later message without an after-sales intent brings its photo to the open case; no second case.
    clock.advance(60)
    await say(client, sign, clock, "你看这张图 https://img.example.com/p/2.jpg")
    clock.advance(60)
    await say(client, sign, clock, "杯子坏了不能用")  # after-sales again, same buyer and order: joins
    [case] = await queue(client, "?state=all")
    assert [p["url"] for p in case["photos"]] == ["https://img.example.com/p/1.jpg", "https://img.example.com/p/2.jpg"]

    case_id = case["id"]
    await send(client, f"/api/cases/{case_id}/transition", {"to": "in_progress"})
    await send(client, f"/api/cases/{case_id}/transition", {"to": "waiting_warehouse", "note": "等仓库核实底单"})
    refused = await send(client, f"/api/cases/{case_id}/transition", {"to": "resolved"}, status=400)
    assert refused["detail"]["field"] == "resolution"
    refused = await send(client, f"/api/cases/{case_id}/transition", {"to": "closed", "resolution": "  "}, status=400)
    assert refused["detail"]["field"] == "resolution"
    clock.advance(600)
    done = await send(client, f"/api/cases/{case_id}/transition", {"to": "resolved", "resolution": "补发一条新围巾"})
    assert (done["state"], done["owner"], done["resolution"]) == ("resolved", "api", "补发一条新围巾")
    assert done["ended_at"] == clock.now().isoformat()
    assert [(e["kind"], e["from"], e["to"], e["by"]) for e in done["history"]] == [
        ("opened", None, "new", "csbot"),
        ("photos", None, None, "buyer"),
        ("photos", None, None, "buyer"),
        ("joined", None, None, "csbot"),
        ("transition", "new", "in_progress", "api"),
        ("transition", "in_progress", "waiting_warehouse", "api"),
        ("transition", "waiting_warehouse", "resolved", "api"),
    ]
    assert done["history"][5]["note"] == "等仓库核实底单"
    # The order's remarks, the seeds' way: reason + agent + date.
    assert [r["line"] for r in done["remarks"]] == [
        "质量问题：破损（csbot 2026-11-23 10:00）",
        "质量问题：破损，补发一条新围巾（api 2026-11-23 10:12）",
    ]
    orders = await get(client, f"/api/conversations/{done['conversation']}/orders")
    assert [r["line"] for r in orders["remarks"]] == [r["line"] for r in done["remarks"]]

    conflict = await send(client, f"/api/cases/{case_id}/transition", {"to": "in_progress"}, status=409)
    assert conflict["detail"] == {"state": "resolved", "to": "in_progress", "allowed": ["closed"]}
    assert await queue(client) == []

    # The same problem reported again after the case ended opens a new case.
    await say(client, sign, clock, "收到的东西有质量问题")
    again = await queue(client)
    assert [(c["type"], c["state"], c["order"]["id"]) for c in again] == [("quality_issue", "new", "o-1")]
    assert again[0]["id"] != case_id


async def test_case_without_an_order_joins_by_conversation(client: Client, sign: Signer, clock: FrozenClock) -> None:
    await say(client, sign, clock, "快递到哪了 物流一直不动")
    clock.advance(30)
    await say(client, sign, clock, "快递到哪了 物流一直不动")
    await say(client, sign, clock, "我要退款", conversation="c-2")  # another chat of the same buyer: its own case
    listed = await queue(client)
    assert sorted((c["conversation_id"], c["type"], c["reason"], c["order"]) for c in listed) == [
        ("c-1", "logistics", "not_moving", None), ("c-2", "return_refund", "unspecified", None)]


# --- priority and deadlines ------------------------------------------------------------------------


async def test_queue_order_follows_the_manuals(client: Client, sign: Signer, clock: FrozenClock) -> None:
    # Late shipment: paid three days ago, never shipped (ship_within is 48 h by default).
    await paid_order(client, sign, "o-late", buyer="b-late", conversation="c-late",
                     paid_at="2026-11-20T10:00:00+08:00")
    await say(client, sign, clock, "快递到哪了 物流一直不动", buyer="b-plain-early", conversation="c-pe")
    clock.advance(60)
    await say(client, sign, clock, "我要退款", buyer="b-stock", conversation="c-stock")
    clock.advance(60)
    await say(client, sign, clock, "快递到哪了 物流一直不动", buyer="b-late", conversation="c-late")
    clock.advance(60)
    await say(client, sign, clock, "我要退款", buyer="b-platform", conversation="c-platform")
    clock.advance(60)
    await say(client, sign, clock, "收到的东西有质量问题", buyer="b-plain-late", conversation="c-pl")
    by_buyer = {c["buyer"]["id"]: c["id"] for c in await queue(client)}

    flagged = await send(client, f"/api/cases/{by_buyer['b-stock']}/flags", {"out_of_stock": True})
    assert flagged["flags"] == {"platform_intervened": False, "late_shipment": False, "out_of_stock": True}
    await send(client, f"/api/cases/{by_buyer['b-platform']}/flags", {"platform_intervened": True})
    bad = await send(client, f"/api/cases/{by_buyer['b-platform']}/flags", {"out_of_stock": "yes"}, status=400)
    assert bad["detail"]["field"] == "out_of_stock"

    listed = await queue(client)
    assert [c["buyer"]["id"] for c in listed] == ["b-platform", "b-late", "b-stock", "b-plain-early", "b-plain-late"]
    assert [c["rank"] for c in listed] == [1, 2, 3, 4, 5]
    assert listed[1]["flags"]["late_shipment"] is True  # derived from the order, not set by anyone
    assert [c["buyer"]["id"] for c in await queue(client, "?type=return_refund")] == ["b-platform", "b-stock"]


async def test_the_platform_stepping_in_puts_the_case_first(client: Client, sign: Signer, clock: FrozenClock) -> None:
    await paid_order(client, sign, "o-dispute", buyer="b-dispute", conversation="c-dispute")
    await say(client, sign, clock, "我要退款", buyer="b-dispute", conversation="c-dispute")
    clock.advance(60)
    await say(client, sign, clock, "收到的东西有质量问题", buyer="b-other", conversation="c-other")
    assert [c["buyer"]["id"] for c in await queue(client)] == ["b-dispute", "b-other"]  # nearest deadline first
    clock.advance(60)
    await say(client, sign, clock, "快递到哪了 物流一直不动", buyer="b-early", conversation="c-early")
    assert [c["buyer"]["id"] for c in await queue(client)][0] == "b-dispute"

    # The platform's service steps into the first order's refund (小二介入): twice, as platforms redeliver.
    for _ in range(2):
        status, answer = await post(client, sign, order_event("platform_intervened", "o-dispute",
                                                              at="2026-11-23T10:30:00+08:00"))
        assert (status, answer["status"]) == (200, "paid")  # the order's own status does not move
    # A later case of an order the platform stepped into goes ahead of earlier ones.
    await paid_order(client, sign, "o-late-dispute", buyer="b-late-dispute", conversation="c-late-dispute")
    clock.advance(60)
    await say(client, sign, clock, "我要退款", buyer="b-late-dispute", conversation="c-late-dispute")
    await post(client, sign, order_event("platform_intervened", "o-late-dispute"))
    listed = await queue(client)
    assert [c["buyer"]["id"] for c in listed] == ["b-dispute", "b-late-dispute", "b-other", "b-early"]
    assert [c["flags"]["platform_intervened"] for c in listed] == [True, True, False, False]
    assert listed[0]["order"]["platform_intervened_at"] == "2026-11-23T02:30:00+00:00"


async def test_deadline_breaches_show_and_count(client: Client, sign: Signer, clock: FrozenClock) -> None:
    await say(client, sign, clock, "快递到哪了 物流一直不动", buyer="b-slow", conversation="c-slow")
    await say(client, sign, clock, "我要退款", buyer="b-fast", conversation="c-fast")
    fast = next(c for c in await queue(client) if c["buyer"]["id"] == "b-fast")
    clock.advance(240)
    await send(client, f"/api/conversations/{fast['conversation']}/reply", {"text": "亲，马上为您处理退款"})
    listed = await get(client, "/api/cases")
    assert listed["breaches"] == {"reply": 0, "resolve": 0, "cases": 0}
    assert await breach_gauges(client) == {"open": 2.0, "reply": 0.0, "resolve": 0.0}

    clock.advance(61)  # 5 min 1 s after opening: the slow case had no answer in time
    listed = await get(client, "/api/cases")
    assert {c["buyer"]["id"]: c["breaches"] for c in listed["cases"]} == {"b-slow": ["reply"], "b-fast": []}
    assert listed["breaches"] == {"reply": 1, "resolve": 0, "cases": 1}
    fast = next(c for c in listed["cases"] if c["buyer"]["id"] == "b-fast")
    assert fast["first_reply_at"] == (clock.now() - timedelta(seconds=61)).isoformat()

    clock.advance(timedelta(hours=48))
    listed = await get(client, "/api/cases")
    assert {c["buyer"]["id"]: c["breaches"] for c in listed["cases"]} == {
        "b-slow": ["reply", "resolve"], "b-fast": ["resolve"]}
    assert listed["breaches"] == {"reply": 1, "resolve": 2, "cases": 2}
    assert await breach_gauges(client) == {"open": 2.0, "reply": 1.0, "resolve": 2.0}  # what monitoring alerts on


async def breach_gauges(client: Client) -> dict[str, float]:
    """The demo shop's open cases and missed deadlines as /metrics exposes them (Prometheus text format)."""
    samples = {}
    for line in (await (await client.get("/metrics")).text()).splitlines():
        if line.startswith('csbot_cases_open{shop="demo"}'):
            samples["open"] = float(line.split()[-1])
        for deadline in ("reply", "resolve"):
            if line.startswith(f'csbot_case_breaches{{deadline="{deadline}",shop="demo"}}'):
                samples[deadline] = float(line.split()[-1])
    return samples


async def test_a_platform_refund_request_brings_the_deadline_forward(client: Client, sign: Signer,
                                                                     clock: FrozenClock) -> None:
    await paid_order(client, sign, "o-r", buyer="b-r", conversation="c-r")
    await say(client, sign, clock, "我要退款", buyer="b-r", conversation="c-r")
    refund = order_event("refund_requested", "o-r", at="2026-11-22T12:00:00+08:00")
    assert (await post(client, sign, refund))[0] == 200
    [case] = await queue(client)
    # 48 h after the platform's refund request, sooner than 48 h after the case opened
    assert case["resolve_due_at"] == local("11-24 12:00").astimezone(UTC).isoformat()
    assert case["next_deadline"] == (clock.now() + timedelta(minutes=5)).isoformat()


# --- follow-ups ---------------------------------------------------------------------------------------


async def test_resolving_cancels_the_case_follow_ups(client: Client, sign: Signer, clock: FrozenClock) -> None:
    await say(client, sign, clock, "快递到哪了 物流一直不动")
    [followup] = await reminders(client, "aftersales_followup")
    assert (followup["status"], followup["due_at"]) == ("pending", (clock.now() + timedelta(hours=48)).isoformat())
    [case] = await queue(client)
    detail = await get(client, f"/api/cases/{case['id']}")
    assert [(f["kind"], f["status"]) for f in detail["follow_ups"]] == [("aftersales_followup", "pending")]

    done = await send(client, f"/api/cases/{case['id']}/transition", {"to": "resolved", "resolution": "快递已签收"})
    assert [(f["kind"], f["status"], f["reason"]) for f in done["follow_ups"]] == [
        ("aftersales_followup", "cancelled", "case_resolved")]
    clock.advance(timedelta(hours=49))
    assert (await client.app[reminders_key].tick()).claimed == 0


async def test_waiting_for_a_quiet_buyer_sends_a_follow_up(client: Client, sign: Signer, clock: FrozenClock,
                                                           receiver: Receiver) -> None:
    await say(client, sign, clock, "收到的东西有质量问题")
    [case] = await queue(client)
    await send(client, f"/api/cases/{case['id']}/transition", {"to": "waiting_buyer", "note": "请买家拍照"})
    await send(client, f"/api/conversations/{case['conversation']}/reply", {"text": "亲，麻烦拍一下问题的照片"})
    [waiting] = await reminders(client, "case_waiting_buyer")
    assert (waiting["status"], waiting["due_at"]) == ("pending", (clock.now() + timedelta(hours=24)).isoformat())

    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    assert (await client.app[reminders_key].tick()).claimed == 0
    clock.advance(1)
    assert (await client.app[reminders_key].tick()).sent == 1
    received = await receiver.wait_for(2)  # the agent's reply, then the follow-up
    assert "等您的回复" in received[-1]["text"] and received[-1]["conversation_id"] == "c-1"
    [waiting] = await reminders(client, "case_waiting_buyer")
    assert waiting["status"] == "sent"


async def test_the_buyer_answering_cancels_the_wait(client: Client, sign: Signer, clock: FrozenClock) -> None:
    await say(client, sign, clock, "收到的东西有质量问题")
    [case] = await queue(client)
    await send(client, f"/api/cases/{case['id']}/transition", {"to": "waiting_buyer"})
    clock.advance(3600)
    await say(client, sign, clock, "好的 我拍给你看 https://img.example.com/p/3.jpg")
    [waiting] = await reminders(client, "case_waiting_buyer")
    assert (waiting["status"], waiting["reason"]) == ("cancelled", "buyer_wrote_again")
    detail = await get(client, f"/api/cases/{case['id']}")
    assert detail["state"] == "in_progress"
    assert (detail["history"][-1]["kind"], detail["history"][-1]["by"]) == ("transition", "buyer")
    assert [p["url"] for p in detail["photos"]] == ["https://img.example.com/p/3.jpg"]
    # the 48-hour after-sales follow-up survives the buyer writing about the open case
    [followup] = await reminders(client, "aftersales_followup")
    assert followup["status"] == "pending"


# --- notes, assignment, roles, blacklist ---------------------------------------------------------------


async def agent_token(client: Client, name: str, role: str = "agent") -> dict[str, str]:
    token = auth.new_token()
    async with client.app[db_key].transaction() as tx:
        user = await console_repo.add_user(tx, name=name, role=role, password_hash=auth.hash_password("x" * 12),
                                           now=client.app[clock_key].now())
        await console_repo.add_api_token(tx, user_id=user.id, token_hash=auth.token_hash(token), label="t",
                                         now=client.app[clock_key].now())
    return {"Authorization": f"Bearer {token}"}


async def test_notes_assignment_and_roles(client: Client, sign: Signer, clock: FrozenClock) -> None:
    await say(client, sign, clock, "我要退款")
    [case] = await queue(client)
    xiaomei = await agent_token(client, "xiaomei")
    resp = await client.post(f"/api/cases/{case['id']}/assign", json={}, headers=xiaomei)
    assert resp.status == 200 and (await resp.json())["owner"] == "xiaomei"
    resp = await client.post(f"/api/cases/{case['id']}/assign", json={"owner": "laowang"}, headers=xiaomei)
    assert resp.status == 403  # only a supervisor hands a case to someone else
    nobody = await send(client, f"/api/cases/{case['id']}/assign", {"owner": "nobody"}, 400)
    assert nobody["detail"]["field"] == "owner"
    resp = await client.post(f"/api/cases/{case['id']}/notes", json={"text": "买家要求先退款再退货"}, headers=xiaomei)
    body = await resp.json()
    assert [(n["note"], n["by"]) for n in body["notes"]] == [("买家要求先退款再退货", "xiaomei")]
    assert (await send(client, f"/api/cases/{case['id']}/notes", {"text": " "}, 400))["detail"]["field"] == "text"
    assert [c["id"] for c in await queue(client, "?owner=xiaomei")] == [case["id"]]
    assert await queue(client, "?owner=laowang") == []
    assert (await client.get("/api/cases/report", headers=xiaomei)).status == 403
    assert (await client.get("/api/cases/999999", headers=AUTH)).status == 404
    assert (await client.get("/api/cases", headers={})).status == 401


async def test_blacklist_from_a_case(client: Client, sign: Signer, clock: FrozenClock) -> None:
    await paid_order(client, sign, "o-1", buyer="b-1", conversation="c-1")
    await say(client, sign, clock, "你们是骗子吧 我要投诉")
    [case] = await queue(client)
    assert case["type"] == "complaint"
    assert (await send(client, f"/api/cases/{case['id']}/blacklist", {}, 400))["detail"]["field"] == "reason"
    body = await send(client, f"/api/cases/{case['id']}/blacklist", {"reason": "辱骂客服，恶意差评"})
    assert (body["blacklist"]["buyer"], body["blacklist"]["by"]) == ("b-1", "api")
    assert body["buyer"]["blacklisted"] is True
    assert (body["history"][-1]["kind"], body["history"][-1]["note"]) == ("blacklist", "辱骂客服，恶意差评")
    assert body["remarks"][-1]["line"] == "投诉：拉黑：辱骂客服，恶意差评（api 2026-11-23 10:00）"
    listed = (await get(client, "/api/blacklist"))["buyers"]
    assert [(b["buyer"], b["reason"], b["by"]) for b in listed] == [("b-1", "辱骂客服，恶意差评", "api")]
    answer = await say(client, sign, clock, "你们是骗子吧 我要投诉")
    assert answer["action"] == "ignored"
    detail = await get(client, f"/api/cases/{case['id']}")
    assert [e["kind"] for e in detail["history"]] == ["opened", "blacklist"]  # the ignored message joined nothing


# --- the quality report --------------------------------------------------------------------------------


async def test_quality_report_groups_by_product_and_reason(client: Client, sign: Signer, clock: FrozenClock) -> None:
    script = [  # (opened at, buyer, product, message): known answers below
        ("11-10 11:00", "b-1", "羊毛围巾", "收到的围巾破损了"),  # previous period
        ("11-17 11:00", "b-2", "羊毛围巾", "收到的围巾破损了"),
        ("11-18 15:00", "b-3", "保温杯", "尺码偏大了 我要退货"),
        ("11-24 09:00", "b-4", "羊毛围巾", "收到的围巾破损了"),
        ("11-25 20:00", "b-5", "保温杯", "杯子坏了不能用"),
        ("11-26 10:00", "b-6", "保温杯", "快递到哪了 物流一直不动"),  # logistics: not in the quality report
        ("11-30 10:00", "b-7", "羊毛围巾", "收到的围巾破损了"),  # after the period
    ]
    for at, buyer, title, text in script:
        clock.set(local(at))
        await paid_order(client, sign, f"o-{buyer}", buyer=buyer, conversation=f"c-{buyer}", title=title,
                         paid_at=clock.now().isoformat())
        await say(client, sign, clock, text, buyer=buyer, conversation=f"c-{buyer}")

    got = await get(client, "/api/cases/report?from=2026-11-16&to=2026-11-29")
    assert (got["from"], got["to"], got["previous_from"]) == (
        local("11-16 00:00").isoformat(), local("11-30 00:00").isoformat(), local("11-02 00:00").isoformat())
    assert got["weeks"] == ["2026-11-16", "2026-11-23"]
    assert [(g["type"], g["title"], g["reason"], g["count"], g["previous"], g["change"], g["weeks"])
            for g in got["groups"]] == [
        ("quality_issue", "羊毛围巾", "damaged", 2, 1, 1, {"2026-11-16": 1, "2026-11-23": 1}),
        ("quality_issue", "保温杯", "defect", 1, 0, 1, {"2026-11-16": 0, "2026-11-23": 1}),
        ("return_refund", "保温杯", "size_fit", 1, 0, 1, {"2026-11-16": 1, "2026-11-23": 0}),
    ]
    assert got["totals"] == {"quality_issue": {"count": 3, "previous": 1, "change": 2},
                             "return_refund": {"count": 1, "previous": 0, "change": 1},
                             "exchange": {"count": 0, "previous": 0, "change": 0}}
    assert got["groups"][0]["reason_label"] == "破损"

    resp = await client.get("/api/cases/report?from=2026-11-16&to=2026-11-29&format=csv", headers=AUTH)
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows == [
        ["type", "title", "reason", "reason_label", "count", "previous", "change", "week 2026-11-16",
         "week 2026-11-23"],
        ["quality_issue", "羊毛围巾", "damaged", "破损", "2", "1", "1", "1", "1"],
        ["quality_issue", "保温杯", "defect", "质量缺陷", "1", "0", "1", "0", "1"],
        ["return_refund", "保温杯", "size_fit", "尺码不合适", "1", "0", "1", "1", "0"],
    ]

    page = await client.get("/console/cases/report?from=2026-11-16&to=2026-11-29&lang=en", headers=AUTH)
    html = await page.text()
    assert page.status == 200 and "保温杯" in html and "damaged" in html and "Quality report" in html


async def test_console_cases_page(client: Client, sign: Signer, clock: FrozenClock) -> None:
    page = await client.get("/console/cases", headers=AUTH)
    html = await page.text()
    assert page.status == 200 and "/console/static/cases.js" in html and "售后工单" in html
    script = await client.get("/console/static/cases.js")
    assert script.status == 200 and "/api/cases" in await script.text()


# --- pure rules and configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "to", "resolution", "error"), [
    ("new", "in_progress", None, None),
    ("waiting_buyer", "waiting_warehouse", None, None),
    ("in_progress", "resolved", "已退款", None),
    ("resolved", "closed", "买家确认", None),
    ("in_progress", "resolved", None, MalformedEvent),
    ("new", "closed", "", MalformedEvent),
    ("resolved", "in_progress", None, Conflict),
    ("closed", "resolved", "x", Conflict),
    ("new", "reopened", None, MalformedEvent),
])
def test_state_machine(current: str, to: str, resolution: str | None, error: type[Exception] | None) -> None:
    if error is None:
        cases.check_transition(current, to, resolution)
    else:
        with pytest.raises(error):
            cases.check_transition(current, to, resolution)


@pytest.mark.parametrize(("text", "reason"), [
    ("发错货了 我要的是黑色", "wrong_item"),
    ("少件了 只有一只", "missing_parts"),
    ("杯子裂了", "damaged"),
    ("尺码偏小", "size_fit"),
    ("用了两天就坏了", "defect"),
    ("不想要了 七天无理由", "changed_mind"),
    ("it arrived broken", "damaged"),
    ("在吗", "unspecified"),
])
def test_reasons_from_words(text: str, reason: str) -> None:
    assert cases.classify_reason(text) == reason


def test_photo_links_are_taken_once_in_order() -> None:
    text = "看图 https://a.example/1.jpg，还有 http://b.example/x?y=1 和 https://a.example/1.jpg。"
    assert cases.photo_urls(text) == ["https://a.example/1.jpg", "http://b.example/x?y=1"]


@pytest.mark.parametrize(("toml", "key"), [
    ("[shops.demo.after_sales]\nreply_within = -1\n", "shops.demo.after_sales.reply_within"),
    ("[shops.demo.after_sales]\nresolve_in = 10\n", "shops.demo.after_sales.resolve_in"),
    ("[shops.demo.after_sales]\nship_within = \"2d\"\n", "shops.demo.after_sales.ship_within"),
])
def test_after_sales_config_errors_name_the_key(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "csbot.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, {})
    assert err.value.key == key


def test_after_sales_config_reads_the_deadlines(tmp_path: Path) -> None:
    path = tmp_path / "csbot.toml"
    path.write_text("[shops.demo.after_sales]\nreply_within = 120\nrefund_timeout = false\n", encoding="utf-8")
    policy = load_settings(path, {}).shops["demo"].after_sales
    assert (policy.reply_within, policy.refund_timeout, policy.resolve_within) == (120.0, None, 172800.0)
