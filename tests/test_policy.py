"""Policy decisions as a table: blacklist, escalation, ceiling, hours, auto-send, opt-out. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from csbot.config import AutoSendPolicy, ShopSettings
from csbot.match import Candidate, Ranking
from csbot.normalize import normalize
from csbot.policy import Context, Signals, decide, requested_discount
from tests.conftest import SHANGHAI

SHOP = ShopSettings("demo", "示例小店", bargain_ceiling=10)
OPEN = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
CLOSED = datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI)


def signals(intent: str | None, text: str = "", *, auto: bool = False, escalates: bool = False) -> Signals:
    cands = (Candidate(intent, 92.0, "t"), Candidate("greeting", 50.0, "在吗")) if intent else (
        Candidate("stock", 48.0, "有货吗"),)
    ranking = Ranking(normalize(text), cands, cands[0] if intent else None, "confident" if intent else "ambiguous")
    return Signals(ranking, auto, escalates, normalize(text).text)


@pytest.mark.parametrize(
    ("sig", "ctx", "now", "action", "send"),
    [
        (signals("greeting", auto=True), Context(blacklisted=True), OPEN, "ignored", ()),
        (signals("human_agent", escalates=True), Context(), OPEN, "escalated", ()),
        (signals("human_agent", escalates=True), Context(), CLOSED, "escalated", ("offline",)),
        (signals("bargain", "便宜50块"), Context(), OPEN, "escalated", ()),
        (signals("bargain", "便宜十块"), Context(), OPEN, "suggested", ()),
        (signals("bargain", "能便宜点吗"), Context(), OPEN, "suggested", ()),
        (signals("greeting", auto=True), Context(), OPEN, "auto_sent", ("greeting",)),
        (signals("greeting", auto=False), Context(), OPEN, "suggested", ()),
        (signals("greeting", auto=True), Context(opted_out=True), OPEN, "suggested", ()),
        (signals("greeting", auto=True), Context(), CLOSED, "auto_sent", ("offline",)),
        (signals(None), Context(), OPEN, "suggested", ()),
        (signals(None), Context(), CLOSED, "auto_sent", ("offline",)),
        (signals("opt_out", auto=True), Context(), CLOSED, "auto_sent", ("opt_out",)),
    ],
)
def test_decide(sig: Signals, ctx: Context, now: datetime, action: str, send: tuple[str, ...]) -> None:
    decision = decide(sig, SHOP, ctx, now)
    assert (decision.action, decision.send) == (action, send)
    assert decision.reason


def test_offline_reply_is_not_repeated_in_the_same_off_period() -> None:
    first = decide(signals("greeting"), SHOP, Context(), CLOSED)
    assert first.send == ("offline",) and first.offline_key is not None
    again = decide(signals("greeting"), SHOP, Context(offline_notice_for=first.offline_key), CLOSED)
    assert (again.action, again.send) == ("suggested", ())
    assert again.suggest[0] == "greeting"  # the agent still gets the matched reply for the morning


def test_shop_policy_switches() -> None:
    quiet = replace(SHOP, auto_send=AutoSendPolicy(enabled=False, offline_reply=False, on_abstain="escalate"))
    assert decide(signals("greeting", auto=True), quiet, Context(), OPEN).action == "suggested"
    assert decide(signals("greeting"), quiet, Context(), CLOSED).send == ()
    unsure = decide(signals(None), quiet, Context(), OPEN)
    assert unsure.action == "escalated" and unsure.suggest[0] == "handoff"


def test_escalation_suggests_the_acknowledgement() -> None:
    d = decide(signals("complaint", escalates=True), SHOP, Context(), OPEN)
    assert d.suggest == ("complaint", "handoff")
    over = decide(signals("bargain", "少二十元吧"), SHOP, Context(), OPEN)
    assert over.suggest[0] == "handoff" and "20" in over.reason


def test_opt_out_is_flagged() -> None:
    assert decide(signals("opt_out", auto=True), SHOP, Context(), OPEN).opt_out is True


@pytest.mark.parametrize(
    ("text", "amount"),
    [("便宜50块", 50), ("便宜五十元吧", 50), ("少二十", 20), ("包邮再减5块我就拍", 5), ("优惠一百二十块", 120),
     ("能便宜点吗", None), ("300卖不卖", None), ("打个八折", None), ("零头去掉吧", None)],
)
def test_requested_discount(text: str, amount: float | None) -> None:
    assert requested_discount(normalize(text).text) == amount
