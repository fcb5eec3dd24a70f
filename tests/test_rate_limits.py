"""Caps on automatic messages: a flood of buyer messages becomes work for agents, not bot spam.
Counted from the database (so several instances share them), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from csbot.app import make_app
from csbot.clock import FrozenClock
from csbot.config import AutoSendPolicy, ConfigError, ShopSettings, load_settings
from csbot.keys import db_key
from csbot.library import LibrarySet
from csbot.match import Candidate, Matcher, Ranking
from csbot.normalize import normalize
from csbot.policy import Context, Signals, decide
from csbot.store import repo
from tests.conftest import AUTH, SHANGHAI, Signer, make_settings, message_event

Client = TestClient[Any, Any]
OPEN = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
CLOSED = datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI)


async def start(aiohttp_client: Callable[..., Any], database_url: str, clock: FrozenClock,
                knowledge: tuple[LibrarySet, Matcher], **auto_send: Any) -> Client:
    libraries, matcher = knowledge
    settings = make_settings(database_url, None, auto_send=AutoSendPolicy(**auto_send))
    client: Client = await aiohttp_client(make_app(settings, clock=clock, libraries=libraries, matcher=matcher))
    return client


async def post(client: Client, sign: Signer, event: dict[str, Any]) -> dict[str, Any]:
    body, headers = sign(event)
    resp = await client.post("/webhooks/generic", data=body, headers=headers)
    assert resp.status == 200
    answer: dict[str, Any] = await resp.json()
    return answer


async def outbox_count(client: Client) -> int:
    resp = await client.get("/api/outbox?limit=500", headers=AUTH)
    return len((await resp.json())["items"])


async def test_a_flood_from_one_buyer_sends_at_most_the_cap_then_suggests(
        aiohttp_client: Callable[..., Any], database_url: str, clock: FrozenClock, sign: Signer,
        knowledge: tuple[LibrarySet, Matcher]) -> None:
    client = await start(aiohttp_client, database_url, clock, knowledge, max_per_buyer_per_hour=6,
                         max_per_shop_per_minute=None)
    answers = []
    for _ in range(50):
        answers.append(await post(client, sign, message_event("在吗")))
        clock.advance(1)
    actions = [a["action"] for a in answers]
    assert actions == ["auto_sent"] * 6 + ["suggested"] * 44
    assert sum(len(a["sent"]) for a in answers) == 6
    assert await outbox_count(client) == 6
    for limited in answers[6:]:
        assert "rate limited" in limited["reason"]
        # nothing dropped: the reply the bot would have sent waits for an agent
        assert limited["suggestions"][0]["intent"] == "greeting" and limited["suggestions"][0]["status"] == "pending"

    # Another buyer of the same shop is not held back by the first one's flood.
    other = await post(client, sign, message_event("在吗", buyer_id="b-2", conversation_id="c-2"))
    assert other["action"] == "auto_sent"

    # An hour after the first automatic message the window has room again.
    clock.set(OPEN + timedelta(hours=1, seconds=1))
    freed = await post(client, sign, message_event("在吗"))
    assert freed["action"] == "auto_sent" and len(freed["sent"]) == 1
    assert await outbox_count(client) == 8


async def test_the_shop_cap_holds_across_buyers_and_frees_a_minute_later(
        aiohttp_client: Callable[..., Any], database_url: str, clock: FrozenClock, sign: Signer,
        knowledge: tuple[LibrarySet, Matcher]) -> None:
    client = await start(aiohttp_client, database_url, clock, knowledge, max_per_buyer_per_hour=6,
                         max_per_shop_per_minute=5)
    answers = [await post(client, sign, message_event("在吗", buyer_id=f"b-{i}", conversation_id=f"c-{i}"))
               for i in range(20)]
    assert [a["action"] for a in answers] == ["auto_sent"] * 5 + ["suggested"] * 15
    assert all("in the last minute" in a["reason"] for a in answers[5:])
    assert await outbox_count(client) == 5

    clock.advance(timedelta(seconds=61))
    later = await post(client, sign, message_event("在吗", buyer_id="b-19", conversation_id="c-19"))
    assert later["action"] == "auto_sent"


async def test_counts_come_from_the_database_so_a_second_instance_sees_them(
        aiohttp_client: Callable[..., Any], database_url: str, clock: FrozenClock, sign: Signer,
        knowledge: tuple[LibrarySet, Matcher]) -> None:
    first = await start(aiohttp_client, database_url, clock, knowledge, max_per_buyer_per_hour=3,
                        max_per_shop_per_minute=None)
    second = await start(aiohttp_client, database_url, clock, knowledge, max_per_buyer_per_hour=3,
                         max_per_shop_per_minute=None)
    actions = []
    for i in range(6):
        answer = await post(first if i % 2 == 0 else second, sign, message_event("在吗"))
        actions.append(answer["action"])
        clock.advance(1)
    assert actions == ["auto_sent"] * 3 + ["suggested"] * 3
    async with first.app[db_key].read() as tx:
        buyer = await repo.find_buyer(tx, "demo", "b-1")
        assert buyer is not None
        assert await repo.recent_bot_messages(tx, since=clock.now() - timedelta(hours=1), cap=100,
                                              buyer_id=buyer.id) == 3
        assert await repo.recent_bot_messages(tx, since=clock.now() - timedelta(hours=1), cap=2,
                                              buyer_id=buyer.id) == 2  # counted up to the cap only


async def test_the_offline_reply_is_capped_too(aiohttp_client: Callable[..., Any], database_url: str,
                                               clock: FrozenClock, sign: Signer,
                                               knowledge: tuple[LibrarySet, Matcher]) -> None:
    clock.set(CLOSED)
    client = await start(aiohttp_client, database_url, clock, knowledge, max_per_buyer_per_hour=2,
                         max_per_shop_per_minute=None)
    # One buyer opening conversation after conversation at night gets the offline reply at most twice.
    answers = [await post(client, sign, message_event("在吗", conversation_id=f"c-{i}")) for i in range(5)]
    assert [len(a["sent"]) for a in answers] == [1, 1, 0, 0, 0]
    assert answers[2]["action"] == "suggested" and "rate limited" in answers[2]["reason"]


# --- the policy alone -------------------------------------------------------------------------------

SHOP = ShopSettings("demo", "示例小店", auto_send=AutoSendPolicy(max_per_buyer_per_hour=6, max_per_shop_per_minute=60))


def signals(intent: str, *, auto: bool = True, escalates: bool = False) -> Signals:
    cands = (Candidate(intent, 95.0, "t"),)
    return Signals(Ranking(normalize("x"), cands, cands[0], "confident"), auto, escalates, "x")


@pytest.mark.parametrize(
    ("sig", "ctx", "now", "action", "send", "limited"),
    [
        (signals("greeting"), Context(auto_sent_to_buyer=5, auto_sent_by_shop=59), OPEN, "auto_sent", ("greeting",),
         False),
        (signals("greeting"), Context(auto_sent_to_buyer=6), OPEN, "suggested", (), True),
        (signals("greeting"), Context(auto_sent_by_shop=60), OPEN, "suggested", (), True),
        (signals("human_agent", escalates=True), Context(auto_sent_to_buyer=6), CLOSED, "escalated", (), True),
        (signals("greeting", auto=False), Context(auto_sent_to_buyer=6), OPEN, "suggested", (), False),
        (signals("opt_out"), Context(auto_sent_to_buyer=6), OPEN, "suggested", (), True),
    ],
)
def test_decide_over_a_cap_suggests_instead(sig: Signals, ctx: Context, now: datetime, action: str,
                                            send: tuple[str, ...], limited: bool) -> None:
    decision = decide(sig, SHOP, ctx, now)
    assert (decision.action, decision.send) == (action, send)
    assert ("rate limited" in decision.reason) is limited
    if limited:
        assert decide(sig, SHOP, Context(), now).send[0] in decision.suggest  # the reply waits for an agent
        assert decision.offline_key is None


def test_opt_out_is_still_recorded_when_its_confirmation_is_capped() -> None:
    decision = decide(signals("opt_out"), SHOP, Context(auto_sent_to_buyer=6), OPEN)
    assert decision.opt_out and decision.send == ()


def test_caps_can_be_switched_off() -> None:
    shop = replace(SHOP, auto_send=AutoSendPolicy(max_per_buyer_per_hour=None, max_per_shop_per_minute=None))
    decision = decide(signals("greeting"), shop, Context(auto_sent_to_buyer=10_000, auto_sent_by_shop=10_000), OPEN)
    assert decision.send == ("greeting",)


# --- configuration ----------------------------------------------------------------------------------


def test_config_reads_the_caps_and_names_a_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "csbot.toml"
    path.write_text("[shops.demo.auto_send]\nmax_per_buyer_per_hour = 3\nmax_per_shop_per_minute = false\n",
                    encoding="utf-8")
    caps = load_settings(path, {}).shops["demo"].auto_send
    assert (caps.max_per_buyer_per_hour, caps.max_per_shop_per_minute) == (3, None)
    path.write_text("[shops.demo]\nname = \"示例小店\"\n", encoding="utf-8")
    default = load_settings(path, {}).shops["demo"].auto_send
    assert (default.max_per_buyer_per_hour, default.max_per_shop_per_minute) == (6, 60)
    for bad in ("max_per_buyer_per_hour = 0", "max_per_shop_per_minute = \"lots\"", "max_per_minute = 3"):
        path.write_text(f"[shops.demo.auto_send]\n{bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_settings(path, {})
        assert err.value.key == "shops.demo.auto_send." + bad.split(" ")[0]
