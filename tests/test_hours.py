"""Business hours: open/closed, next opening, overnight shifts, holidays, weekdays."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from csbot.hours import BusinessHours, Shift
from tests.conftest import SHANGHAI

SPLIT = BusinessHours(shifts=(Shift(time(8, 30), time(12, 0)), Shift(time(13, 0), time(23, 0))))
WEEKDAYS_ONLY = BusinessHours(weekdays=frozenset(range(1, 6)), shifts=(Shift(time(9, 0), time(18, 0)),))
NIGHT = BusinessHours(shifts=(Shift(time(20, 0), time(2, 0)),))
HOLIDAY = BusinessHours(holidays=frozenset({date(2026, 11, 24)}))


def at(day: int, hh: int, mm: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=SHANGHAI)  # 2026-11-23 is a Monday


@pytest.mark.parametrize(
    ("hours", "instant", "is_open"),
    [
        (SPLIT, at(23, 8, 29), False),
        (SPLIT, at(23, 8, 30), True),
        (SPLIT, at(23, 12, 30), False),  # lunch break between shifts
        (SPLIT, at(23, 22, 59), True),
        (SPLIT, at(23, 23, 0), False),
        (WEEKDAYS_ONLY, at(28, 10), False),  # Saturday
        (WEEKDAYS_ONLY, at(27, 10), True),  # Friday
        (NIGHT, at(24, 1, 30), True),  # the night shift that started on Monday
        (NIGHT, at(24, 2, 0), False),
        (NIGHT, at(24, 19, 59), False),
        (HOLIDAY, at(24, 10), False),
        (HOLIDAY, at(25, 10), True),
    ],
)
def test_is_open(hours: BusinessHours, instant: datetime, is_open: bool) -> None:
    assert hours.is_open(instant) is is_open


@pytest.mark.parametrize(
    ("hours", "instant", "opens"),
    [
        (SPLIT, at(23, 12, 30), at(23, 13, 0)),
        (SPLIT, at(23, 23, 30), at(24, 8, 30)),
        (SPLIT, at(24, 0, 10), at(24, 8, 30)),
        (WEEKDAYS_ONLY, at(27, 19), at(30, 9)),  # Friday evening -> Monday morning
        (HOLIDAY, at(23, 23, 30), at(25, 8, 30)),  # the holiday is skipped
        (NIGHT, at(24, 3), at(24, 20)),
    ],
)
def test_next_open(hours: BusinessHours, instant: datetime, opens: datetime) -> None:
    assert hours.next_open(instant) == opens


def test_next_open_is_the_same_key_throughout_one_off_period() -> None:
    keys = {SPLIT.next_open(at(23, hh, mm)) for hh, mm in [(23, 0), (23, 59)]} | {SPLIT.next_open(at(24, 3, 0))}
    assert keys == {at(24, 8, 30)}
    assert SPLIT.next_open(at(24, 12, 5)) != SPLIT.next_open(at(23, 23, 5))


def test_descriptions_for_the_offline_reply() -> None:
    assert SPLIT.describe("zh-CN") == "每天 08:30-12:00、13:00-23:00"
    assert WEEKDAYS_ONLY.describe("zh-CN") == "周一至周五 09:00-18:00"
    assert WEEKDAYS_ONLY.describe("en") == "Mon-Fri 09:00-18:00"
    assert SPLIT.describe_next_open(at(23, 23, 30), "zh-CN") == "明天 08:30"
    assert SPLIT.describe_next_open(at(23, 12, 30), "en") == "today 13:00"
    assert WEEKDAYS_ONLY.describe_next_open(at(27, 19), "zh-CN") == "11月30日 09:00"
