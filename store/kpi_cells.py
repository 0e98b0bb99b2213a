"""The cells of a period for ``store.kpis`` (``store.kpi_counts.Cell``, keyed by owner,
slices and time bucket): whole local weeks inside one time bucket from the cohort rollup
(``store.kpi_rollup``, ``kpi_weeks``) unless they are dirty, every other day from the
leads (``store.kpi_counts.count_cells``); and the period's scope and time buckets in SQL.

The period is a range of dates in the installation's time zone; a lead belongs to the
day, week, month and quarter in which it was created there: each bucket starts at its
first local midnight, computed here with the time zone's rules, so daylight saving needs
no arithmetic in SQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, case, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from domain.kpis import KpiQuery, period_bounds
from store import kpi_rollup
from store.kpi_counts import SLICES, Cell, CellKey, add_cell, count_cells, rollup_cell
from store.models import KpiWeek, Lead, Rep


def period_cells(
    session: Session,
    query: KpiQuery,
    slices: list[str],
    per: str | None,
    *,
    tz: ZoneInfo,
    currency: str,
    now: datetime,
) -> dict[CellKey, Cell]:
    """The period's cells keyed by owner, ``slices`` and (with ``per``) time bucket:
    whole clean weeks inside one bucket from the rollup, every other day from the leads."""
    keys: list[ColumnElement[Any]] = [SLICES[name].expression for name in slices]
    if per is not None:
        keys.append(bucket_of(per, query, tz))
    state = None
    if "territory" not in slices and per != "day":
        state = kpi_rollup.state(session, tz)
    if state is None:
        return count_cells(session, scope(query, tz), keys, currency=currency, now=now)
    buckets = (
        period_bounds(per, query.start, query.end) if per else [(None, query.start, query.end)]
    )
    weeks: dict[date, str | None] = {}
    scanned: list[list[date]] = []  # [first, last] runs of days read from the leads
    for name, first, last in buckets:
        day = first
        while day <= last:
            if day.weekday() == 0 and day + timedelta(days=6) <= last and state.clean(day):
                weeks[day] = name
                day += timedelta(days=7)
                continue
            if scanned and scanned[-1][1] + timedelta(days=1) == day:
                scanned[-1][1] = day
            else:
                scanned.append([day, day])
            day += timedelta(days=1)
    cells: dict[CellKey, Cell] = {}
    for first, last in scanned:
        part = query.model_copy(update={"start": first, "end": last})
        found = count_cells(session, scope(part, tz), keys, currency=currency, now=now)
        for key, cell in found.items():
            add_cell(cells, key, cell)
    add_week_cells(
        cells,
        session,
        weeks,
        query,
        slices,
        timed=per is not None,
        currency=currency,
        now=now,
        tz=tz,
    )
    return cells


def add_week_cells(
    cells: dict[CellKey, Cell],
    session: Session,
    weeks: dict[date, str | None],
    query: KpiQuery,
    slices: list[str],
    *,
    timed: bool,
    currency: str,
    now: datetime,
    tz: ZoneInfo,
) -> None:
    """Add to ``cells`` the rollup's cells of ``weeks`` (Monday → the report's time
    bucket), keyed as ``store.kpi_counts.count_cells`` keys the leads' cells: owner, the
    ``slices`` (pool, source) and, when ``timed``, the bucket."""
    if not weeks:
        return
    first, last = min(weeks), max(weeks)
    filters = _filters(query, KpiWeek.pool, KpiWeek.source, KpiWeek.owner_rep_id)
    conn = session.connection()
    result = conn.execute(
        select(
            KpiWeek.week,
            KpiWeek.owner_rep_id,
            KpiWeek.pool,
            KpiWeek.source,
            KpiWeek.currency,
            *kpi_rollup.COUNT_COLUMNS,
            KpiWeek.follow_up_s,
            KpiWeek.cycle_days,
            KpiWeek.first_contact_days,
        ).where(KpiWeek.week >= first, KpiWeek.week <= last, *filters)
    )
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    ahead = _open_ahead(session, weeks, query, now, tz)
    picks = [{"pool": 2, "source": 3}[name] for name in slices]
    width = len(kpi_rollup.COUNT_COLUMNS)
    by_key: dict[Any, tuple[date, str | None]] = {}  # SQLite's dates are text
    for week, bucket in weeks.items():
        by_key[week] = by_key[week.isoformat()] = (week, bucket)
    for row in rows:
        found = by_key.get(row[0])
        if found is None:
            continue
        week, bucket = found
        key: CellKey = (row[1], *(row[i] for i in picks))
        if timed:
            key = (*key, bucket)
        cell = rollup_cell(
            list(row[5 : 5 + width]),
            row[4],
            currency=currency,
            open_ahead=ahead.pop((week, *row[1:4]), 0),  # once per slice of the week
            packed=(row[-3], row[-2], row[-1]),
        )
        add_cell(cells, key, cell)


def _open_ahead(
    session: Session, weeks: dict[date, str | None], query: KpiQuery, now: datetime, tz: ZoneInfo
) -> dict[tuple[Any, ...], int]:
    """Per (week, owner, pool, source): the leads not contacted whose deadline is still
    ahead (a handful: the deadline index's newest entries)."""
    start = kpi_rollup.midnight(min(weeks), tz)
    end = kpi_rollup.midnight(max(weeks) + timedelta(days=7), tz)
    created = created_off_index(session)
    found = session.execute(
        select(Lead.created_at, Lead.owner_rep_id, Lead.pool, Lead.source).where(
            Lead.sla_due_at >= now,
            Lead.first_contacted_at.is_(None),
            created >= start,
            created < end,
            *_filters(query, Lead.pool, Lead.source, Lead.owner_rep_id),
        )
    )
    out: dict[tuple[Any, ...], int] = {}
    for created_at, *rest in found:
        week = kpi_rollup.monday(created_at.astimezone(tz).date())
        key = (week, *rest)
        out[key] = out.get(key, 0) + 1
    return out


def _filters(query: KpiQuery, pool: Any, source: Any, owner: Any) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.pools is not None:
        where.append(pool.in_(query.pools))
    if query.sources is not None:
        where.append(source.in_(query.sources))
    if query.reps is not None:
        where.append(owner.in_(select(Rep.id).where(Rep.email.in_(query.reps))))
    return where


def scope(
    query: KpiQuery, tz: ZoneInfo, created: ColumnElement[datetime] | None = None
) -> list[ColumnElement[bool]]:
    start, end = utc_bounds(query.start, query.end, tz)
    at = Lead.created_at.expression if created is None else created
    where: list[ColumnElement[bool]] = [at >= start, at < end]
    if query.pools is not None:
        where.append(Lead.pool.in_(query.pools))
    if query.sources is not None:
        where.append(Lead.source.in_(query.sources))
    if query.reps is not None:
        where.append(Lead.owner_rep_id.in_(select(Rep.id).where(Rep.email.in_(query.reps))))
    return where


def utc_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants at which the local dates ``start`` begins and the day after ``end``
    begins."""
    return local_midnight(start, tz), local_midnight(end + timedelta(days=1), tz)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def bucket_of(group_by: str, query: KpiQuery, tz: ZoneInfo) -> ColumnElement[str]:
    """The key of the day, week, month or quarter a lead was created in (local time), as
    ``domain.kpis.period_bounds`` names it: a balanced CASE on the buckets' first
    instants, so each lead costs a handful of comparisons (nine for a year of days) and
    daylight saving needs no arithmetic in SQL."""
    buckets = period_bounds(group_by, query.start, query.end)
    starts = [(name, local_midnight(first, tz)) for name, first, _ in buckets]
    return _search(starts)


def _search(starts: list[tuple[str, datetime]]) -> ColumnElement[str]:
    if len(starts) == 1:
        return literal(starts[0][0], String())
    middle = len(starts) // 2
    return case(
        (Lead.created_at < starts[middle][1], _search(starts[:middle])),
        else_=_search(starts[middle:]),
    )


def created_off_index(session: Session) -> ColumnElement[datetime]:
    """The creation time, as a condition SQLite's planner will not answer from the
    creation index (``+created_at``): for walks down the deadline index, which would
    otherwise read a whole period to sort it."""
    created: ColumnElement[datetime] = Lead.created_at.expression
    if session.get_bind().dialect.name == "sqlite":
        created = UnaryExpression(created, operator=custom_op("+"), type_=Lead.created_at.type)
    return created
