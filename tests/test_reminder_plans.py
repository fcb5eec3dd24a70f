"""Reminder planning and the fire-time verdict: pure tables in shop time (Asia/Shanghai), plus the config."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from csbot.config import ConfigError, ReminderSettings, load_settings
from csbot.hours import QuietHours
from csbot.reminders import plans
from csbot.reminders.plans import Defer, Drop, FireFacts, Send, plan_payment, verdict
from tests.conftest import SHANGHAI

DEFAULT = ReminderSettings()


def at(text: str) -> datetime:
    """'11-23 10:00' in shop time (2026)."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def show(planned: list[plans.Planned]) -> list[tuple[int, str, str | None]]:
    return [(p.stage, p.due_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M"), p.skip_reason) for p in planned]


@pytest.mark.parametrize(
    ("ordered", "closes", "expected"),
    [
        pytest.param("11-23 10:00", "11-24 10:00",
                     [(1, "11-23 10:20", None), (2, "11-23 13:00", None), (3, "11-24 08:30", None)],
                     id="a day to pay: 20 min, 3 h, last call 90 min before closing"),
        pytest.param("11-23 10:00", "11-23 14:00",
                     [(1, "11-23 10:20", None), (2, "11-23 13:00", "after_last_call"), (3, "11-23 12:30", None)],
                     id="4 h to pay: the 3 h stage would come after the last call"),
        pytest.param("11-23 10:00", "11-23 13:30",
                     [(1, "11-23 10:20", None), (2, "11-23 13:00", "too_close_to_auto_close"),
                      (3, "11-23 12:00", None)],
                     id="stage 2 needs an hour left before auto-close"),
        pytest.param("11-23 21:00", "11-24 21:00",
                     [(1, "11-23 21:20", None), (2, "11-24 08:00", None), (3, "11-24 19:30", None)],
                     id="stage 2 at midnight moves to 08:00"),
        pytest.param("11-23 23:00", "11-24 09:00",
                     [(1, "11-24 08:00", None), (2, "11-24 08:00", "collides_after_quiet_hours"),
                      (3, "11-24 08:00", "collides_after_quiet_hours")],
                     id="a night order: everything lands at 08:00, sent once"),
        pytest.param("11-23 21:00", "11-23 23:30",
                     [(1, "11-23 21:20", None), (2, "11-24 00:00", "past_auto_close"),
                      (3, "11-23 22:00", "quiet_hours_until_auto_close")],
                     id="last call in quiet hours and closing before 08:00: skipped"),
        pytest.param("11-23 10:00", "11-23 10:30",
                     [(1, "11-23 10:20", None), (2, "11-23 13:00", "past_auto_close"),
                      (3, "11-23 09:00", "no_time_for_last_call")],
                     id="30 minutes to pay"),
    ],
)
def test_payment_stages(ordered: str, closes: str, expected: list[tuple[int, str, str | None]]) -> None:
    assert show(plan_payment(at(ordered), at(closes), DEFAULT, SHANGHAI)) == expected


def test_payment_stages_without_auto_close_have_no_last_call() -> None:
    assert show(plan_payment(at("11-23 10:00"), None, DEFAULT, SHANGHAI)) == [
        (1, "11-23 10:20", None), (2, "11-23 13:00", None)]


def test_cap_keeps_the_earliest_stages_and_the_last_call() -> None:
    policy = replace(DEFAULT, payment_stages=(1200.0, 3600.0, 10800.0), max_per_order=3)
    assert show(plan_payment(at("11-23 10:00"), at("11-24 10:00"), policy, SHANGHAI)) == [
        (1, "11-23 10:20", None), (2, "11-23 11:00", None), (3, "11-23 13:00", "order_cap"),
        (4, "11-24 08:30", None)]
    assert [p.skip_reason for p in plan_payment(at("11-23 10:00"), at("11-24 10:00"),
                                                replace(DEFAULT, max_per_order=0), SHANGHAI)] == ["order_cap"] * 3


def test_stage_offsets_in_seconds_for_a_demo() -> None:
    policy = replace(DEFAULT, payment_stages=(2.0, 4.0), min_remaining=1.0, last_call_before_close=1.0,
                     quiet_hours=None)
    start = at("11-23 23:59")
    planned = plan_payment(start, start + timedelta(seconds=10), policy, SHANGHAI)
    assert [((p.due_at - start).total_seconds(), p.template, p.skip_reason) for p in planned] == [
        (2.0, "reminder_payment_1", None), (4.0, "reminder_payment_2", None), (9.0, "reminder_payment_last", None)]


def test_disabled_plans_nothing() -> None:
    off = replace(DEFAULT, enabled=False)
    assert plan_payment(at("11-23 10:00"), at("11-24 10:00"), off, SHANGHAI) == []
    assert plans.plan_after_delivery(at("11-23 10:00"), off, SHANGHAI) is None
    assert plans.plan_followup(plans.CONSULT, at("11-23 10:00"), off) is None


def test_after_delivery_and_followups() -> None:
    closing = plans.plan_after_delivery(at("11-23 10:00"), DEFAULT, SHANGHAI)
    assert closing is not None and show([closing]) == [(1, "11-24 10:00", None)]
    late = plans.plan_after_delivery(at("11-23 23:00"), DEFAULT, SHANGHAI)
    assert late is not None and show([late]) == [(1, "11-25 08:00", None)]  # 23:00 next day is quiet
    aftersales = plans.plan_followup(plans.AFTERSALES, at("11-23 10:00"), DEFAULT)
    assert aftersales is not None and show([aftersales]) == [(1, "11-25 10:00", None)]  # the 48 h deadline
    consult = plans.plan_followup(plans.CONSULT, at("11-23 10:00"), DEFAULT)
    assert consult is not None and (consult.due_at - at("11-23 10:00")) == timedelta(hours=4)
    assert plans.plan_followup(plans.CONSULT, at("11-23 10:00"), replace(DEFAULT, consult_followup_after=None)) \
        is None


@pytest.mark.parametrize(
    ("quiet", "instant", "inside", "allowed"),
    [
        ("22:00-08:00", "11-23 21:59", False, "11-23 21:59"),
        ("22:00-08:00", "11-23 22:00", True, "11-24 08:00"),
        ("22:00-08:00", "11-24 03:00", True, "11-24 08:00"),
        ("22:00-08:00", "11-24 08:00", False, "11-24 08:00"),
        ("12:00-13:30", "11-23 12:30", True, "11-23 13:30"),
        ("12:00-13:30", "11-23 11:00", False, "11-23 11:00"),
    ],
)
def test_quiet_hours(quiet: str, instant: str, inside: bool, allowed: str) -> None:
    start, end = (time.fromisoformat(t) for t in quiet.split("-"))
    hours = QuietHours(start, end)
    assert hours.contains(at(instant), SHANGHAI) is inside
    assert hours.next_allowed(at(instant), SHANGHAI) == at(allowed)


NOON = at("11-23 12:00")
CLOSE = at("11-24 10:00")


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (FireFacts(plans.PAYMENT, NOON, "created", CLOSE), Send(to_agents=False)),
        (FireFacts(plans.PAYMENT, NOON, "paid", CLOSE), Drop("cancelled", "order_paid")),
        (FireFacts(plans.PAYMENT, NOON, "closed", CLOSE), Drop("cancelled", "order_closed")),
        (FireFacts(plans.PAYMENT, NOON, "created", CLOSE, blacklisted=True), Drop("skipped", "buyer_blacklisted")),
        (FireFacts(plans.PAYMENT, NOON, "created", CLOSE, opted_out=True), Drop("skipped", "buyer_opted_out")),
        (FireFacts(plans.PAYMENT, CLOSE, "created", CLOSE), Drop("skipped", "past_auto_close")),
        (FireFacts(plans.PAYMENT, NOON, "created", CLOSE, later_stage_due=True),
         Drop("skipped", "superseded_by_later_stage")),
        (FireFacts(plans.PAYMENT, NOON, "created", CLOSE, sent_for_order=3), Drop("skipped", "order_cap")),
        (FireFacts(plans.PAYMENT, NOON, "created", CLOSE, sent_to_buyer=3), Drop("skipped", "buyer_cap")),
        (FireFacts(plans.PAYMENT, at("11-23 23:00"), "created", CLOSE), Defer(at("11-24 08:00"), "quiet_hours")),
        (FireFacts(plans.PAYMENT, at("11-23 23:00"), "created", at("11-24 07:00")),
         Drop("skipped", "quiet_hours_until_auto_close")),
        (FireFacts(plans.AFTER_DELIVERY, NOON, "delivered"), Send(to_agents=False)),
        (FireFacts(plans.AFTER_DELIVERY, NOON, "refund_requested"), Drop("cancelled", "order_refund_requested")),
        (FireFacts(plans.CONSULT, NOON), Send(to_agents=True)),
        (FireFacts(plans.CONSULT, at("11-23 23:00"), sent_to_buyer=5), Send(to_agents=True)),  # agents' task
        (FireFacts(plans.CONSULT, NOON, ordered_since=True), Drop("cancelled", "buyer_ordered")),
        (FireFacts(plans.CONSULT, NOON, opted_out=True), Drop("skipped", "buyer_opted_out")),
        (FireFacts(plans.AFTERSALES, NOON, opted_out=True), Send(to_agents=True)),
        (FireFacts(plans.AFTERSALES, NOON, blacklisted=True), Drop("skipped", "buyer_blacklisted")),
    ],
)
def test_verdict_at_fire_time(facts: FireFacts, expected: plans.Verdict) -> None:
    assert verdict(facts, DEFAULT, SHANGHAI) == expected


def test_consult_followup_in_auto_mode_is_a_message_to_the_buyer() -> None:
    auto = replace(DEFAULT, consult_followup_mode="auto")
    assert verdict(FireFacts(plans.CONSULT, NOON), auto, SHANGHAI) == Send(to_agents=False)
    assert verdict(FireFacts(plans.CONSULT, at("11-23 23:00")), auto, SHANGHAI) == Defer(at("11-24 08:00"),
                                                                                         "quiet_hours")


CONFIG = """
[shops.demo.reminders]
payment_stages = [5, 10]
last_call_before_close = false
quiet_hours = "23:00-07:30"
max_per_buyer = 5
consult_followup_mode = "auto"
aftersales_followup_after = 3600

[ticker]
interval = 0.5
"""


def test_reminder_config(tmp_path: Path) -> None:
    path = tmp_path / "csbot.toml"
    path.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(path, {})
    r = settings.shops["demo"].reminders
    assert r.payment_stages == (5.0, 10.0) and r.last_call_before_close is None
    assert r.quiet_hours == QuietHours(time(23, 0), time(7, 30))
    assert (r.max_per_buyer, r.max_per_order, r.consult_followup_mode) == (5, 3, "auto")
    assert r.aftersales_followup_after == 3600.0 and r.min_remaining == 3600.0
    assert settings.ticker.interval == 0.5
    assert load_settings(None, {}).shops["demo"].reminders == ReminderSettings()


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("payment_stages = [600, 300]", "shops.demo.reminders.payment_stages"),
        ("payment_stages = [0]", "shops.demo.reminders.payment_stages"),
        ('quiet_hours = "late"', "shops.demo.reminders.quiet_hours"),
        ('consult_followup_mode = "maybe"', "shops.demo.reminders.consult_followup_mode"),
        ("max_per_order = -1", "shops.demo.reminders.max_per_order"),
        ("remind_often = true", "shops.demo.reminders.remind_often"),
    ],
)
def test_bad_reminder_config_names_the_key(tmp_path: Path, line: str, key: str) -> None:
    path = tmp_path / "csbot.toml"
    path.write_text(f"[shops.demo.reminders]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, {})
    assert exc.value.key == key
