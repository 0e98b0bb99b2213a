"""The ``kpis`` section of the configuration document: the currency revenue is reported
in, the sample size below which a rate is flagged as small, each rep's revenue quota per
period and the revenue forecasts, the team's or a pool's (issue 13).

A period is a quarter (``2026-Q4``), a month (``2026-11``) or a year (``2026``);
``KpiPeriod`` reads that text and writes it back the same. ``kpi_problems`` holds the
checks that need the rest of the document (a quota's rep must be configured, a forecast's
pool too) and refuses two quotas of one rep, or two forecasts of one scope, that cover the
same day: the KPIs add prorated entries up, so an overlap would count a target twice.

``quota_for`` and ``forecast_for`` prorate the entries to a report's dates, and
``period_bounds`` cuts a report's dates into days, ISO weeks, months or quarters (all
exported by ``domain.kpis`` too).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, GetCoreSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from domain.config_base import Email, Name, Problem, Strict
from domain.lead import normalize_email

MIN_YEAR = 1900
MAX_YEAR = 2999
MAX_ENTRIES = 10_000
PERIOD_FORM = "write a quarter like 2026-Q4, a month like 2026-11 or a year like 2026"
_PERIOD = re.compile(r"^(\d{4})(?:-Q(\d)|-(\d{2}))?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class KpiPeriod:
    """A quarter, a month or a whole year; ``start()`` and ``end()`` are its first and
    last day (both included)."""

    year: int
    quarter: int | None = None
    month: int | None = None

    @classmethod
    def parse(cls, value: object) -> KpiPeriod:
        """The period ``value`` names (text, or a bare year as YAML reads ``2026``);
        ``ValueError`` saying the expected form otherwise."""
        if isinstance(value, KpiPeriod):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, date):
            raise ValueError(f"{value.isoformat()} is a day, not a period: {PERIOD_FORM}")
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a period: {PERIOD_FORM}")
        found = _PERIOD.fullmatch(value.strip().upper())
        if found is None:
            raise ValueError(f"{value!r} is not a period: {PERIOD_FORM}")
        year, quarter, month = found.groups()
        if not MIN_YEAR <= int(year) <= MAX_YEAR:
            raise ValueError(f"{value!r}: the year must be between {MIN_YEAR} and {MAX_YEAR}")
        if quarter is not None and not 1 <= int(quarter) <= 4:
            raise ValueError(f"{value!r} is not a period: quarters are Q1 to Q4")
        if month is not None and not 1 <= int(month) <= 12:
            raise ValueError(f"{value!r} is not a period: months are 01 to 12")
        return cls(
            int(year),
            int(quarter) if quarter is not None else None,
            int(month) if month is not None else None,
        )

    def start(self) -> date:
        if self.quarter is not None:
            return date(self.year, 3 * self.quarter - 2, 1)
        return date(self.year, self.month or 1, 1)

    def end(self) -> date:
        if self.quarter is not None:
            last_month = 3 * self.quarter
        else:
            last_month = self.month or 12
        return date(self.year, last_month, calendar.monthrange(self.year, last_month)[1])

    def days(self) -> int:
        return (self.end() - self.start()).days + 1

    def overlaps(self, other: KpiPeriod) -> bool:
        return self.start() <= other.end() and other.start() <= self.end()

    def __str__(self) -> str:
        if self.quarter is not None:
            return f"{self.year}-Q{self.quarter}"
        if self.month is not None:
            return f"{self.year}-{self.month:02d}"
        return str(self.year)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> JsonSchemaValue:
        return {"type": "string", "pattern": r"^\d{4}(-Q[1-4]|-\d{2})?$", "examples": ["2026-Q4"]}


def _currency(value: Any) -> str:
    text = value.strip().upper() if isinstance(value, str) else value
    if not isinstance(text, str) or not _CURRENCY.fullmatch(text):
        raise ValueError(f"{value!r} is not a currency: use a three-letter code like USD or EUR")
    return text


def _money_out(value: Decimal) -> int | float:
    """An amount as YAML and JSON write it: ``120000``, ``1250.5`` (at most 15 digits,
    so the float is exact to the cent)."""
    return int(value) if value == value.to_integral_value() else float(value)


Currency = Annotated[str, BeforeValidator(_currency)]
# A revenue amount: at least 0, to the cent, under a thousand billion.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=15, decimal_places=2),
    PlainSerializer(_money_out, return_type=int | float),
]


class Quota(Strict):
    """A rep's revenue target for one period."""

    rep: Email
    period: KpiPeriod
    revenue: Money


class Forecast(Strict):
    """The revenue forecast for one period: a pool's, or without ``pool`` the team's."""

    period: KpiPeriod
    revenue: Money
    pool: Name | None = None


class KpisConfig(Strict):
    """How the KPIs are reported; the defaults hold for a document without the section."""

    currency: Currency = "USD"
    small_sample: int = Field(20, ge=1, le=1_000_000)
    quotas: list[Quota] = Field(default_factory=list, max_length=MAX_ENTRIES)
    forecasts: list[Forecast] = Field(default_factory=list, max_length=MAX_ENTRIES)


def kpi_problems(kpis: KpisConfig, reps: set[str], pools: set[str]) -> list[Problem]:
    """What is wrong with the section given the document's reps and pool names: unknown
    reps and pools, and entries of one scope whose periods cover a day twice."""
    found: list[Problem] = []
    for i, quota in enumerate(kpis.quotas):
        if quota.rep not in reps:
            found.append(
                Problem(location=f"kpis.quotas[{i}].rep", message=f"unknown rep {quota.rep!r}")
            )
    for i, forecast in enumerate(kpis.forecasts):
        if forecast.pool is not None and forecast.pool not in pools:
            found.append(
                Problem(
                    location=f"kpis.forecasts[{i}].pool", message=f"unknown pool {forecast.pool!r}"
                )
            )
    found.extend(_overlaps("quotas", [(q.rep, q.period) for q in kpis.quotas], "rep", "quota"))
    found.extend(
        _overlaps(
            "forecasts",
            [(f.pool, f.period) for f in kpis.forecasts],
            "pool",
            "forecast",
        )
    )
    return found


def _overlaps(
    section: str, entries: list[tuple[str | None, KpiPeriod]], scope: str, what: str
) -> list[Problem]:
    """Entries of one scope (a rep, a pool, the team: ``None``) whose period shares a day
    with another's, each reported at the later-listed of the two. Sorted by start, so a
    long list is checked in one pass."""
    found: dict[int, Problem] = {}
    by_scope: dict[str | None, list[int]] = {}
    for index, (key, _) in enumerate(entries):
        by_scope.setdefault(key, []).append(index)
    for key, indexes in by_scope.items():
        whose = f"{scope} {key!r}" if key is not None else "the team (no pool)"
        widest: int | None = None  # the entry reaching furthest so far
        for index in sorted(indexes, key=lambda i: (entries[i][1].start(), i)):
            period = entries[index][1]
            if widest is not None and period.start() <= entries[widest][1].end():
                first, later = sorted((widest, index))
                old, new = entries[first][1], entries[later][1]
                if old == new:
                    message = (
                        f"{whose} has a {what} for {new} already (kpis.{section}[{first}]): "
                        f"give one {what} per period"
                    )
                else:
                    message = (
                        f"{new} overlaps {old} (kpis.{section}[{first}]) for {whose}: "
                        f"give one {what} per day, or it counts twice"
                    )
                location = f"kpis.{section}[{later}].period"
                found.setdefault(later, Problem(location=location, message=message))
            if widest is None or period.end() > entries[widest][1].end():
                widest = index
    return [found[index] for index in sorted(found)]


# ------------------------------------------------------------------------------ periods

PERIOD_GROUP_BYS = ("day", "week", "month", "quarter")


def _prorated(revenue: Decimal, period: KpiPeriod, start: date, end: date) -> Decimal | None:
    """``revenue`` times the share of the period's days within [start, end]; None when
    none is."""
    inside = (min(end, period.end()) - max(start, period.start())).days + 1
    if inside <= 0:
        return None
    return revenue * inside / period.days()


def _sum(amounts: Iterable[Decimal | None]) -> Decimal | None:
    found = [a for a in amounts if a is not None]
    return sum(found, Decimal(0)) if found else None


def quota_for(
    config: KpisConfig, reps: Collection[str] | None, start: date, end: date
) -> Decimal | None:
    """The quota of ``reps`` (None: every rep) over [start, end], both included: each
    quota's revenue prorated by the days of its period within the dates; None when no
    quota covers any of them."""
    wanted = None if reps is None else {normalize_email(r) for r in reps}
    return _sum(
        _prorated(q.revenue, q.period, start, end)
        for q in config.quotas
        if wanted is None or q.rep in wanted
    )


def forecast_for(
    config: KpisConfig, pools: Collection[str] | None, start: date, end: date
) -> Decimal | None:
    """The forecast of ``pools`` over [start, end], prorated like ``quota_for``. Without
    ``pools``, the team's: its entries without a pool or, when none of them covers the
    dates, the sum of every pool's."""
    if pools is not None:
        return _sum(
            _prorated(f.revenue, f.period, start, end)
            for f in config.forecasts
            if f.pool is not None and f.pool in pools
        )
    team = _sum(
        _prorated(f.revenue, f.period, start, end) for f in config.forecasts if f.pool is None
    )
    if team is not None:
        return team
    return _sum(_prorated(f.revenue, f.period, start, end) for f in config.forecasts)


def period_bounds(group_by: str, start: date, end: date) -> list[tuple[str, date, date]]:
    """The calendar buckets covering [start, end], each clipped to it, with its key:
    ``2026-11-03`` (day), ``2026-W48`` (ISO week: from Monday, numbered in its ISO year),
    ``2026-11`` (month), ``2026-Q4`` (quarter). Empty when ``end`` is before ``start``."""
    if group_by not in PERIOD_GROUP_BYS:
        raise ValueError(f"{group_by!r} is not a period: use {', '.join(PERIOD_GROUP_BYS)}")
    buckets: list[tuple[str, date, date]] = []
    day = start
    while day <= end:
        if group_by == "day":
            key, first, last = day.isoformat(), day, day
        elif group_by == "week":
            year, week, weekday = day.isocalendar()
            first = day - timedelta(days=weekday - 1)
            key, last = f"{year}-W{week:02d}", first + timedelta(days=6)
        else:
            period = (
                KpiPeriod(day.year, month=day.month)
                if group_by == "month"
                else KpiPeriod(day.year, quarter=(day.month - 1) // 3 + 1)
            )
            key, first, last = str(period), period.start(), period.end()
        buckets.append((key, max(first, start), min(last, end)))
        day = last + timedelta(days=1)
    return buckets
