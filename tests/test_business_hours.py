"""The business-hours clock: working time added to a moment and counted between two, in a
timezone, over weekends, holidays and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.business_hours import DEFAULT_HOURS, add_working_time, working_time_between
from domain.config import Weekday, WorkingHours
from tests.strategies import TIMEZONES, holiday_lists, moments, working_durations, working_hours

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def at(tz: str, *args: int) -> datetime:
    """The moment (year, month, day[, hour[, minute]]) on the clocks of ``tz``."""
    year, month, day, hour, minute = (*args, 0, 0)[:5]
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz))


def local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


# 2026-03-02 is a Monday.
@pytest.mark.parametrize(
    ("start", "hours", "holidays", "expected"),
    [
        ((2026, 3, 2, 16, 0), 2, [], (2026, 3, 3, 10, 0)),  # Monday 16:00 -> Tuesday 10:00
        ((2026, 3, 6, 16, 30), 2, [], (2026, 3, 9, 10, 30)),  # Friday -> Monday
        ((2026, 3, 6, 16, 30), 2, [date(2026, 3, 9)], (2026, 3, 10, 10, 30)),  # holiday Monday
        ((2026, 3, 2, 7, 0), 1, [], (2026, 3, 2, 10, 0)),  # before opening: from 09:00
        ((2026, 3, 7, 12, 0), 1, [], (2026, 3, 9, 10, 0)),  # on a Saturday
        ((2026, 3, 2, 16, 0), 1, [], (2026, 3, 2, 17, 0)),  # ends exactly at closing
        ((2026, 3, 2, 9, 0), 40, [], (2026, 3, 6, 17, 0)),  # a whole working week
    ],
)
def test_working_time_skips_nights_weekends_and_holidays(
    start: tuple[int, ...], hours: int, holidays: list[date], expected: tuple[int, ...]
) -> None:
    done = add_working_time(at(BERLIN, *start), timedelta(hours=hours), None, BERLIN, holidays)
    assert done.tzinfo is UTC
    assert local(done, BERLIN) == at(BERLIN, *expected)
    between = working_time_between(at(BERLIN, *start), done, None, BERLIN, holidays)
    assert between == timedelta(hours=hours)


def test_opening_hours_are_local_across_a_daylight_saving_change() -> None:
    # Berlin moves its clocks forward on Sunday 2026-03-29: Friday 16:00 + 2 h is Monday
    # 10:00 local time, which is 08:00 UTC (it was 09:00 UTC the week before).
    done = add_working_time(at(BERLIN, 2026, 3, 27, 16), timedelta(hours=2), None, BERLIN)
    assert done == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    before = add_working_time(at(BERLIN, 2026, 3, 20, 16), timedelta(hours=2), None, BERLIN)
    assert before == datetime(2026, 3, 23, 9, 0, tzinfo=UTC)
    # Hours that span the change: that night is an hour shorter.
    always = WorkingHours(days=list(Weekday), start=time(0), end=time(23, 59))
    night = working_time_between(
        at(BERLIN, 2026, 3, 29, 0), at(BERLIN, 2026, 3, 29, 4), always, BERLIN
    )
    assert night == timedelta(hours=3)


def test_the_answer_is_the_same_moment_whatever_the_start_timezone() -> None:
    start = at(NEW_YORK, 2026, 3, 2, 16)  # 22:00 in Berlin: after closing there
    done = add_working_time(start, timedelta(hours=1), None, BERLIN)
    assert local(done, BERLIN) == at(BERLIN, 2026, 3, 3, 10)
    assert done == add_working_time(start.astimezone(UTC), timedelta(hours=1), None, BERLIN)


def test_custom_hours_and_default_hours() -> None:
    weekend = WorkingHours(days=[Weekday.sat, Weekday.sun], start=time(10), end=time(14))
    done = add_working_time(at(BERLIN, 2026, 3, 2, 12), timedelta(hours=5), weekend, BERLIN)
    assert local(done, BERLIN) == at(BERLIN, 2026, 3, 8, 11)
    assert [d.value for d in DEFAULT_HOURS.days] == ["mon", "tue", "wed", "thu", "fri"]
    assert (DEFAULT_HOURS.start, DEFAULT_HOURS.end) == (time(9), time(17))


def test_zero_duration_is_the_start_and_end_before_start_counts_nothing() -> None:
    sunday = at(BERLIN, 2026, 3, 8, 12)
    assert add_working_time(sunday, timedelta(0), None, BERLIN) == sunday
    monday = at(BERLIN, 2026, 3, 9, 12)
    assert working_time_between(monday, sunday, None, BERLIN) == timedelta(0)


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        add_working_time(datetime(2026, 3, 2, 9), timedelta(hours=1), None, BERLIN)  # noqa: DTZ001
    with pytest.raises(ValueError, match="must not be negative"):
        add_working_time(at(BERLIN, 2026, 3, 2, 9), timedelta(hours=-1), None, BERLIN)
    every_day_off = [date(2026, 3, 2) + timedelta(days=i) for i in range(500)]
    with pytest.raises(ValueError, match="no working time in the 400 days after 2026-03-02"):
        add_working_time(at(BERLIN, 2026, 3, 2, 9), timedelta(hours=1), None, BERLIN, every_day_off)


@settings(max_examples=300, deadline=None)
@given(
    moments,
    working_durations,
    st.none() | working_hours(),
    st.sampled_from(TIMEZONES),
    holiday_lists,
)
def test_counting_back_the_time_added_gives_the_duration(
    start: datetime,
    duration: timedelta,
    hours: WorkingHours | None,
    tz: str,
    holidays: list[date],
) -> None:
    done = add_working_time(start, duration, hours, tz, holidays)
    assert done >= start
    assert working_time_between(start, done, hours, tz, holidays) == duration


@settings(max_examples=200, deadline=None)
@given(
    moments,
    working_durations,
    working_durations,
    st.none() | working_hours(),
    st.sampled_from(TIMEZONES),
)
def test_more_working_time_never_ends_earlier(
    start: datetime, a: timedelta, b: timedelta, hours: WorkingHours | None, tz: str
) -> None:
    shorter, longer = sorted((a, b))
    assert add_working_time(start, shorter, hours, tz) <= add_working_time(start, longer, hours, tz)
    # Adding in two steps is adding once.
    halfway = add_working_time(start, shorter, hours, tz)
    assert add_working_time(halfway, longer - shorter, hours, tz) == add_working_time(
        start, longer, hours, tz
    )


@settings(max_examples=200, deadline=None)
@given(moments, moments, st.none() | working_hours(), st.sampled_from(TIMEZONES))
def test_working_time_between_is_never_more_than_the_elapsed_time(
    a: datetime, b: datetime, hours: WorkingHours | None, tz: str
) -> None:
    start, end = sorted((a, b))
    counted = working_time_between(start, end, hours, tz)
    assert timedelta(0) <= counted <= end - start
