"""Business hours of a shop: is it open now, when does it open next. Pure: no I/O.

Shifts are local wall-clock times in the shop's time zone. A shift whose end is not after its start
runs past midnight (a night shift "20:00-02:00" belongs to the day it starts on). Holidays close the
whole day, including a night shift starting on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_LOOKAHEAD_DAYS = 400  # covers a year of holidays; a shop with no open day at all is rejected by config
_WEEKDAYS_ZH = "一二三四五六日"
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Shift:
    start: time
    end: time

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class BusinessHours:
    timezone: str = "Asia/Shanghai"
    weekdays: frozenset[int] = frozenset(range(1, 8))  # ISO: 1 = Monday … 7 = Sunday
    shifts: tuple[Shift, ...] = (Shift(time(8, 30), time(23, 0)),)
    holidays: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _open_day(self, day: date) -> bool:
        return day.isoweekday() in self.weekdays and day not in self.holidays

    def _intervals(self, first: date, days: int) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals in order of their start, day by day from `first`."""
        zone = self.zone
        shifts = sorted(self.shifts, key=lambda s: s.start)
        for offset in range(days):
            day = first + timedelta(days=offset)
            if not self._open_day(day):
                continue
            for shift in shifts:
                start = datetime.combine(day, shift.start, zone)
                end_day = day + timedelta(days=1) if shift.overnight else day
                yield start, datetime.combine(end_day, shift.end, zone)

    def is_open(self, instant: datetime) -> bool:
        local = instant.astimezone(self.zone)
        yesterday = local.date() - timedelta(days=1)
        return any(start <= local < end for start, end in self._intervals(yesterday, 2))

    def next_open(self, instant: datetime) -> datetime:
        """`instant` itself when open, else the start of the next shift.

        Every instant of one closed stretch shares the same next opening, so the value doubles as
        the key of that "off period" (the offline reply is sent once per conversation per key).
        """
        local = instant.astimezone(self.zone)
        yesterday = local.date() - timedelta(days=1)
        # Intervals come in order of their start, so the first one starting after `local` is the
        # next opening, and any interval containing `local` comes before it.
        for start, end in self._intervals(yesterday, _LOOKAHEAD_DAYS):
            if start <= local < end:
                return instant
            if start > local:
                return start
        raise ValueError("the shop never opens in the next year")

    def describe(self, locale: str) -> str:
        """'每天 08:30-23:00' / 'Mon-Fri 09:00-18:00' for the offline reply."""
        shifts = "、".join(map(str, self.shifts)) if locale.startswith("zh") else ", ".join(map(str, self.shifts))
        days = sorted(self.weekdays)
        zh = locale.startswith("zh")
        if days == list(range(1, 8)):
            label = "每天" if zh else "Daily"
        elif days == list(range(days[0], days[-1] + 1)):
            label = (
                f"周{_WEEKDAYS_ZH[days[0] - 1]}至周{_WEEKDAYS_ZH[days[-1] - 1]}"
                if zh
                else f"{_WEEKDAYS_EN[days[0] - 1]}-{_WEEKDAYS_EN[days[-1] - 1]}"
            )
        else:
            label = "、".join(f"周{_WEEKDAYS_ZH[d - 1]}" for d in days) if zh else ", ".join(
                _WEEKDAYS_EN[d - 1] for d in days
            )
        return f"{label} {shifts}"

    def describe_next_open(self, instant: datetime, locale: str) -> str:
        """'今天 13:00' / '明天 08:30' / '11月25日 08:30' (English alike), in shop time."""
        return describe_when(self.next_open(instant), instant, self.zone, locale)


def describe_when(instant: datetime, now: datetime, zone: ZoneInfo, locale: str) -> str:
    """'今天 10:00' / '明天 10:00' / '11月25日 10:00' (English alike): `instant` in shop time, seen from `now`."""
    local = instant.astimezone(zone)
    days = (local.date() - now.astimezone(zone).date()).days
    zh = locale.startswith("zh")
    if days == 0:
        day = "今天" if zh else "today"
    elif days == 1:
        day = "明天" if zh else "tomorrow"
    else:
        day = f"{local.month}月{local.day}日" if zh else f"{local:%b} {local.day}"
    return f"{day} {local:%H:%M}"


@dataclass(frozen=True)
class QuietHours:
    """Local times no automated message may go out ("22:00-08:00" wraps past midnight). Pure: no I/O."""

    start: time
    end: time

    def contains(self, instant: datetime, zone: ZoneInfo) -> bool:
        local = instant.astimezone(zone).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, instant: datetime, zone: ZoneInfo) -> datetime:
        """`instant` itself outside quiet hours, else the end of the quiet stretch it falls in."""
        if not self.contains(instant, zone):
            return instant
        local = instant.astimezone(zone)
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)  # late evening: the stretch ends tomorrow morning
        # combine + fold resolves a DST gap the way the shop's wall clock would read it
        return datetime.combine(day, self.end, zone).astimezone(instant.tzinfo)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"
