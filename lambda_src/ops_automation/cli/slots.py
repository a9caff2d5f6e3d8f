"""EventBridge Scheduler's invocations of a `cron(...)` expression in a time zone, as Scheduler evaluates them: the
slots a report expects a policy to have run (and the handler tests and scenarios drive, through
tests/support/scheduler_slots.py).

EventBridge Scheduler user guide, "Schedule types on EventBridge Scheduler" (daylight savings time),
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html: "EventBridge Scheduler automatically
adjusts your schedule for daylight saving time. When time shifts forward in the Spring, if a cron expression falls on
a non-existent date and time, your schedule invocation is skipped. When time shifts backwards in the Fall, your
schedule runs only once and does not repeat its invocation." (also https://repost.aws/knowledge-center/eventbridge-
scheduler-adjust-dst). So a local time in the spring-forward gap gives no slot, and a local time the fall-back
repeats gives one, its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
# Scheduler's day-of-week numbering: 1 = SUN ... 7 = SAT.
WEEKDAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}


def _field(text: str, low: int, high: int, names: Mapping[str, int] | None = None) -> frozenset[int] | None:
    """The values of one cron field (`*`/`?`: None, any), from lists of values, ranges and `/` steps. The `L`, `W`
    and `#` forms are refused: the scenarios' schedules do not use them, and a silent wrong answer would be worse."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        span, _, step = part.partition("/")
        bounds = (
            [(names or {}).get(bound.upper()) or int(bound) for bound in span.split("-")]
            if span != "*"
            else [low, high]
        )
        first = bounds[0]
        last = bounds[-1] if len(bounds) > 1 else (high if step else first)
        values.update(range(first, last + 1, int(step) if step else 1))
    if not values or min(values) < low or max(values) > high:
        raise ValueError(f"cron field {text!r} is outside {low}-{high}")
    return frozenset(values)


def scheduler_slots(expression: str, timezone: str, start: datetime, end: datetime) -> list[datetime]:
    """The invocations, in UTC, that EventBridge Scheduler makes of `cron(...)` in `timezone` from `start` (included)
    to `end` (excluded): each matching local date and time that exists in the zone, once. A local time in a
    spring-forward gap has no invocation; one the fall-back repeats is invoked at its first occurrence (fold 0)."""
    match = CRON.match(expression)
    if match is None:
        raise ValueError(f"not a Scheduler cron expression: {expression!r}")
    minutes, hours, days, months, weekdays, years = match.groups()
    if "?" not in (days, weekdays):
        raise ValueError(f"{expression}: one of day-of-month and day-of-week must be '?'")
    minute_set = _field(minutes, 0, 59) or frozenset(range(60))
    hour_set = _field(hours, 0, 23) or frozenset(range(24))
    day_set, month_set = _field(days, 1, 31), _field(months, 1, 12, MONTHS)
    weekday_set, year_set = _field(weekdays, 1, 7, WEEKDAYS), _field(years, 1970, 2199)
    zone = ZoneInfo(timezone)
    slots: list[datetime] = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date() + timedelta(days=1):
        matches = (
            (day_set is None or day.day in day_set)
            and (month_set is None or day.month in month_set)
            and (weekday_set is None or day.isoweekday() % 7 + 1 in weekday_set)
            and (year_set is None or day.year in year_set)
        )
        for hour in sorted(hour_set) if matches else ():
            for minute in sorted(minute_set):
                local = datetime.combine(day, time(hour, minute), tzinfo=zone)  # fold 0: the first occurrence
                moment = local.astimezone(UTC)
                if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
                    continue  # in the gap: the wall clock never shows this time that day
                if start <= moment < end:
                    slots.append(moment)
        day += timedelta(days=1)
    return slots
