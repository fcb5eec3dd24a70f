"""KPIs against a scripted conversation history with known answers; /metrics; learning proposals."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from csbot.clock import FrozenClock
from csbot.config import bundled_dir
from csbot.console import kpis, learn
from csbot.library import load_libraries
from tests.conftest import AUTH, MONDAY_10AM, Signer, message_event
from tests.console_support import Client


async def _say(client: Client, sign: Signer, clock: FrozenClock, conv: str, text: str,
               buyer: str = "b-1") -> dict[str, Any]:
    body, headers = sign(message_event(text, conversation_id=conv, buyer_id=buyer, sent_at=clock.now().isoformat()))
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    assert resp.status == 200
    answer: dict[str, Any] = await resp.json()
    return answer


async def _post(client: Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = await client.post(path, json=body or {}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


@pytest.mark.parametrize("values, expected", [
    ([], kpis.ResponseTimes(0, None, None, None, None, None)),
    ([10.0, 20.0, 30.0, 50.0], kpis.ResponseTimes(4, 27.5, 50.0, 50.0, 0.5, 0.75)),
    ([float(s) for s in range(1, 11)], kpis.ResponseTimes(10, 5.5, 9.0, 10.0, 1.0, 1.0)),
])
def test_response_time_figures(values: list[float], expected: kpis.ResponseTimes) -> None:
    assert kpis.response_times(values) == expected


async def test_kpis_match_a_scripted_history(client: Client, sign: Signer, clock: FrozenClock) -> None:
    # c-1: bargain suggested; the agent accepts after 20 s.  -> one turn, agent reply in 20 s
    a = await _say(client, sign, clock, "c-1", "能便宜点吗")
    clock.advance(20)
    await _post(client, f"/api/suggestions/{a['suggestions'][0]['id']}/accept")
    # c-2: bargain again; the agent edits after 30 s.        -> one turn, 30 s
    clock.advance(60)
    b = await _say(client, sign, clock, "c-2", "还能再便宜吗", buyer="b-2")
    clock.advance(30)
    await _post(client, f"/api/suggestions/{b['suggestions'][0]['id']}/accept", {"text": "给您少5元"})
    # c-3: the buyer writes twice (one turn); the agent rejects and answers in their own words 50 s later.
    clock.advance(60)
    await _say(client, sign, clock, "c-3", "能便宜点吗", buyer="b-3")
    clock.advance(10)
    c = await _say(client, sign, clock, "c-3", "能便宜点吗", buyer="b-3")  # supersedes the first suggestions
    clock.advance(40)
    conv3 = next(x for x in (await (await client.get("/api/queue", headers=AUTH)).json())["conversations"]
                 if x["external_id"] == "c-3")
    await _post(client, f"/api/suggestions/{c['suggestions'][0]['id']}/reject", {"reason": "不合适"})
    await _post(client, f"/api/conversations/{conv3['id']}/reply", {"text": "最低价了亲"})
    # c-4: nobody answers.
    clock.advance(60)
    await _say(client, sign, clock, "c-4", "能便宜点吗", buyer="b-4")
    # b-1 orders after asking.
    body, headers = sign({"type": "order.created", "shop": "demo", "conversation_id": "c-1",
                          "order": {"id": "o-1", "buyer": {"id": "b-1", "nick": "小王"}, "amount": "99.00",
                                    "items": [], "created_at": clock.now().isoformat(),
                                    "auto_close_at": (clock.now() + timedelta(days=1)).isoformat()}})
    assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200

    resp = await client.get("/api/kpis?shop=demo&from=2026-11-23&to=2026-11-23", headers=AUTH)
    assert resp.status == 200
    k = await resp.json()
    assert k["turns"] == 4 and k["replied"] == 3 and k["reply_rate"] == 0.75
    assert k["first_response"] == {"count": 3, "avg": 33.33, "p90": 50.0, "max": 50.0, "within_26s": 0.3333,
                                   "within_40s": 0.6667, "turns": 4}
    assert k["agent_first_response"]["count"] == 3
    assert k["acceptance"] == [{"intent": "bargain", "accepted": 1, "edited": 1, "rejected": 1, "rate": 0.6667}]
    assert k["replies"] == 3 and k["auto_sent"] == 0 and k["auto_sent_share"] == 0.0
    assert k["conversion"] == {"inquiring_buyers": 4, "ordering_buyers": 1, "rate": 0.25}
    assert k["payment_recovery"] == {"reminded_orders": 0, "recovered_orders": 0, "rate": None}

    before = await (await client.get("/api/kpis?shop=demo&from=2026-11-20&to=2026-11-22", headers=AUTH)).json()
    assert before["turns"] == 0 and before["first_response"]["avg"] is None

    exported = await client.get("/api/kpis?shop=demo&from=2026-11-23&to=2026-11-23&format=csv", headers=AUTH)
    assert exported.status == 200 and exported.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await exported.text())))
    assert rows[0] == ["metric", "key", "value"]
    assert ["first_response", "avg", "33.33"] in rows and ["acceptance.rate", "bargain", "0.6667"] in rows

    page = await client.get("/console/kpis?shop=demo&from=2026-11-23&to=2026-11-23",
                            headers=AUTH | {"Accept": "text/html"})
    html = await page.text()
    assert page.status == 200 and "<svg" in html and "33.33" in html and "cdn" not in html.lower()
    assert (await client.get("/api/kpis?from=bad", headers=AUTH)).status == 400


async def test_metrics_expose_webhooks_outbox_and_reminders(client: Client, sign: Signer,
                                                           clock: FrozenClock) -> None:
    await _say(client, sign, clock, "c-1", "能便宜点吗")
    assert (await client.post("/webhooks/generic", data=b"{}")).status == 401
    text = await (await client.get("/metrics")).text()
    assert 'csbot_webhook_requests_total{path="/webhooks/generic",status="200"} 1.0' in text
    assert 'csbot_webhook_requests_total{path="/webhooks/generic",status="401"} 1.0' in text
    assert "csbot_webhook_latency_seconds_bucket" in text
    assert 'csbot_outbox_items{status="dead"} 0.0' in text
    assert 'csbot_reminders{status="pending"}' in text


async def test_learning_proposes_and_a_supervisor_writes_it_back(client: Client, sign: Signer, clock: FrozenClock,
                                                                tmp_path: Path) -> None:
    phrase = "少点呗老板"
    for i in range(2):
        answer = await _say(client, sign, clock, f"c-{i}", phrase, buyer=f"b-{i}")
        top = next(s for s in answer["suggestions"] if s["intent"] == "bargain")
        await _post(client, f"/api/suggestions/{top['id']}/accept", {"text": "最多给您便宜5元哦"})
        clock.advance(5)
    proposals = (await (await client.get("/api/learn/proposals", headers=AUTH)).json())["proposals"]
    kinds = {(p["kind"], p["intent"], p["text"]) for p in proposals}
    assert ("trigger", "bargain", phrase) in kinds
    assert ("variant", "bargain", "最多给您便宜5元哦") in kinds

    # Approve into a copy of the library (the app writes where settings.library_dir points).
    library_dir, templates_dir = tmp_path / "lib", tmp_path / "tpl"
    shutil.copytree(bundled_dir("scripts_library"), library_dir)
    shutil.copytree(bundled_dir("templates"), templates_dir)
    libraries = load_libraries(library_dir)
    chosen = [learn.Proposal(p["kind"], p["locale"], p["intent"], p["text"], p["evidence"]) for p in proposals
              if p["kind"] in ("trigger", "variant")]
    changed = learn.apply(chosen, libraries, library_dir=library_dir, templates_dir=templates_dir,
                          approved_by="boss", today=MONDAY_10AM.date())
    reloaded = load_libraries(library_dir)
    bargain = reloaded.intent("zh-CN", "bargain")
    assert phrase in bargain.triggers
    assert any(r.startswith("bargain_learned_") for r in bargain.replies)
    assert any(p.suffix == ".yaml" for p in changed) and any(p.suffix == ".j2" for p in changed)
    yaml_text = next(p for p in changed if p.suffix == ".yaml").read_text(encoding="utf-8")
    assert f'"{phrase}"  # learned, approved by boss 2026-11-23' in yaml_text
