"""After-sales quality feedback: quality problems and return reasons per product and reason, with the weekly
counts and the change against the previous period of the same length. What the manuals ask after-sales to
send to purchasing / QC (the same product failing for several buyers). Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from csbot.aftersales import cases

NO_ORDER = "-"  # the product column of cases with no known order


@dataclass(frozen=True)
class ReportRow:
    case_id: int
    type: str
    reason: str
    opened_at: datetime
    titles: tuple[str, ...]  # the order's item titles; empty without an order


@dataclass(frozen=True)
class Group:
    type: str
    title: str
    reason: str
    count: int  # cases opened in the period
    previous: int  # cases opened in the previous period of the same length
    weeks: dict[str, int]  # week (its Monday, shop time, ISO date) -> cases opened that week in the period

    @property
    def change(self) -> int:
        return self.count - self.previous


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    previous_start: datetime
    weeks: list[str]  # every week the period touches, in order
    groups: list[Group]  # most cases first
    totals: dict[str, tuple[int, int]]  # type -> (count, previous)


def week_of(instant: datetime, zone: ZoneInfo) -> str:
    day = instant.astimezone(zone).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def _weeks(start: datetime, end: datetime, zone: ZoneInfo) -> list[str]:
    first = date.fromisoformat(week_of(start, zone))
    last = date.fromisoformat(week_of(end - timedelta(microseconds=1), zone))
    return [(first + timedelta(weeks=i)).isoformat() for i in range((last - first).days // 7 + 1)]


def build(rows: Sequence[ReportRow], *, start: datetime, end: datetime, zone: ZoneInfo) -> Report:
    """`rows` cover [previous_start, end): the period is [start, end), the previous one just before it.
    A case counts once under each distinct product of its order."""
    previous_start = start - (end - start)
    counts: dict[tuple[str, str, str], list[Any]] = {}  # key -> [count, previous, weeks]
    totals: dict[str, list[int]] = {t: [0, 0] for t in cases.REPORT_TYPES}
    for row in rows:
        if not previous_start <= row.opened_at < end:
            continue
        current = row.opened_at >= start
        totals.setdefault(row.type, [0, 0])[0 if current else 1] += 1
        for title in row.titles or (NO_ORDER,):
            entry = counts.setdefault((row.type, title, row.reason), [0, 0, {}])
            if current:
                entry[0] += 1
                week = week_of(row.opened_at, zone)
                entry[2][week] = entry[2].get(week, 0) + 1
            else:
                entry[1] += 1
    groups = [Group(t, title, reason, n, prev, weeks) for (t, title, reason), (n, prev, weeks) in counts.items()]
    groups.sort(key=lambda g: (-g.count, -g.change, g.type, g.title, g.reason))
    return Report(start, end, previous_start, _weeks(start, end, zone), groups,
                  {t: (n, prev) for t, (n, prev) in totals.items()})


def to_json(report: Report, locale: str) -> dict[str, Any]:
    return {
        "from": report.start.isoformat(), "to": report.end.isoformat(),
        "previous_from": report.previous_start.isoformat(), "weeks": report.weeks,
        "totals": {t: {"count": n, "previous": prev, "change": n - prev} for t, (n, prev) in report.totals.items()},
        "groups": [
            {"type": g.type, "type_label": cases.type_label(g.type, locale), "title": g.title, "reason": g.reason,
             "reason_label": cases.reason_label(g.reason, locale), "count": g.count, "previous": g.previous,
             "change": g.change, "weeks": {w: g.weeks.get(w, 0) for w in report.weeks}}
            for g in report.groups
        ],
    }


def to_csv(report: Report, locale: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["type", "title", "reason", "reason_label", "count", "previous", "change",
                     *(f"week {w}" for w in report.weeks)])
    for g in report.groups:
        writer.writerow([g.type, _cell(g.title), g.reason, cases.reason_label(g.reason, locale), g.count, g.previous,
                         g.change, *(g.weeks.get(w, 0) for w in report.weeks)])
    return out.getvalue()


def _cell(value: str) -> str:
    # A product title is platform data: never let a spreadsheet read it as a formula.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") and value != NO_ORDER else value
