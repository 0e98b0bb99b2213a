"""A business-hours clock: how much working time lies between two moments, and when a
given amount of it has passed. Working time is the hours of the working days in a
timezone, less holidays; openings are computed in local time, so a day keeps its hours
across a daylight-saving change (and a day whose hours span the change is an hour shorter
or longer). Pure: the caller says what "now" is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.config import Weekday, WorkingHours

DEFAULT_HOURS = WorkingHours(
    days=[Weekday.mon, Weekday.tue, Weekday.wed, Weekday.thu, Weekday.fri],
    start=time(9),
    end=time(17),
)
# Days scanned without meeting any working time before a configuration is refused.
MAX_IDLE_DAYS = 400
_WEEKDAYS = list(Weekday)  # in date.weekday() order, Monday first
_ZERO = timedelta(0)


def add_working_time(
    start: datetime,
    duration: timedelta,
    hours: WorkingHours | None,
    tz: str,
    holidays: Sequence[date] = (),
) -> datetime:
    """The moment (in UTC) ``duration`` of working time has passed after ``start``. Time
    outside ``hours`` (None: ``DEFAULT_HOURS``), on days that are not working days and on
    ``holidays`` (dates in ``tz``) does not count; a start outside the hours counts from
    the next opening. A zero duration is ``start`` itself. ``ValueError`` for a naive
    ``start``, a negative duration, or hours with no working time in ``MAX_IDLE_DAYS``."""
    _aware(start, "start")
    if duration < _ZERO:
        raise ValueError(f"duration must not be negative, got {duration}")
    start = start.astimezone(UTC)
    if duration == _ZERO:
        return start
    remaining = duration
    for opens, closes in _openings(start, hours, tz, holidays):
        begin = max(opens, start)
        if begin >= closes:
            continue
        available = closes - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise AssertionError("unreachable: _openings never ends without raising")


def working_time_between(
    start: datetime,
    end: datetime,
    hours: WorkingHours | None,
    tz: str,
    holidays: Sequence[date] = (),
) -> timedelta:
    """The working time from ``start`` to ``end`` (zero when ``end`` is not after
    ``start``), counted as ``add_working_time`` counts it."""
    _aware(start, "start")
    _aware(end, "end")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    total = _ZERO
    if end <= start:
        return total
    for opens, closes in _openings(start, hours, tz, holidays, until=end):
        if opens >= end:
            break
        begin, finish = max(opens, start), min(closes, end)
        if finish > begin:
            total += finish - begin
    return total


def _openings(
    start: datetime,
    hours: WorkingHours | None,
    tz: str,
    holidays: Sequence[date],
    until: datetime | None = None,
) -> Iterator[tuple[datetime, datetime]]:
    """The working intervals (opening, closing, in UTC) of each working day from the
    local day of ``start`` on; with ``until``, ending after the day that holds it.
    ``ValueError`` when ``MAX_IDLE_DAYS`` days in a row have none."""
    hours = hours or DEFAULT_HOURS
    zone = ZoneInfo(tz)
    working = {_WEEKDAYS.index(day) for day in hours.days}
    off = set(holidays)
    day = start.astimezone(zone).date()
    last = until.astimezone(zone).date() if until is not None else None
    idle = 0
    while last is None or day <= last:
        if day.weekday() in working and day not in off:
            opens = datetime.combine(day, hours.start, zone).astimezone(UTC)
            closes = datetime.combine(day, hours.end, zone).astimezone(UTC)
            if closes > opens:
                idle = 0
                yield opens, closes
        idle += 1
        if idle > MAX_IDLE_DAYS and last is None:
            raise ValueError(
                f"no working time in the {MAX_IDLE_DAYS} days after "
                f"{start.astimezone(zone).date().isoformat()} ({tz}): check the working "
                "days, hours and holidays"
            )
        day += timedelta(days=1)


def _aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (with a timezone), got {moment}")
