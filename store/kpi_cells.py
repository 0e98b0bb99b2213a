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

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, case, func, literal, null, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from domain.kpis import PERIOD_GROUP_BYS, KpiQuery, period_bounds
from store import kpi_rollup
from store.kpi_counts import (
    LEADS,
    MISSED,
    SLICES,
    Cell,
    CellKey,
    count_cells,
    plain_rows,
    rollup_cell,
)
from store.models import Lead, Rep
from store.models_kpi import KpiOwnerWeek, KpiWeek

# A grouping of a report: None (the whole period), "rep", a slice ("pool", "source",
# "territory") or a time grouping ("day", "week", "month", "quarter").
Grouping = str | None


@dataclass(slots=True)
class Group:
    """One group of a report, added up: its cell (counts, and durations when asked for)
    and the owners among its leads (a rep counts once a lead of theirs is in it)."""

    cell: Cell = field(default_factory=Cell)
    owners: set[int] = field(default_factory=set)


Groups = dict[Grouping, dict[Any, Group]]  # grouping → group key → group


def period_groups(
    session: Session,
    query: KpiQuery,
    groupings: Sequence[Grouping],
    *,
    durations: Collection[Grouping],
    counts_only: Collection[Grouping] = (),
    tz: ZoneInfo,
    currency: str,
    now: datetime,
    emails: dict[int, str],
) -> Groups:
    """The period's leads added up per group of each grouping (None: the whole period,
    keyed None); a rep's group is keyed by their email (None: no owner). Only the
    groupings in ``durations`` get the durations the medians need; the groups of those
    in ``counts_only`` may not count their reps (what a chart of counts does not need).

    Whole local weeks inside one time bucket that are not dirty come from the cohort
    rollup, added up by the database per grouping; every other day from the leads, in
    cells keyed by owner, slices and time bucket, then added to their groups."""
    slices = sorted({g for g in groupings if g in SLICES})
    times = [g for g in groupings if g in PERIOD_GROUP_BYS]
    per = times[0] if times else None
    out: Groups = {g: {} for g in dict.fromkeys(groupings)}
    state = None
    if "territory" not in slices and per != "day":
        state = kpi_rollup.state(session, tz)
    buckets = (
        period_bounds(per, query.start, query.end) if per else [(None, query.start, query.end)]
    )
    weeks: dict[date, str | None] = {}  # the Mondays read from the rollup → their bucket
    scanned: list[list[date]] = []  # [first, last] runs of days read from the leads
    for name, first, last in buckets:
        day = first
        while day <= last:
            if (
                state is not None
                and day.weekday() == 0
                and day + timedelta(days=6) <= last
                and state.clean(day)
            ):
                weeks[day] = name
                day += timedelta(days=7)
                continue
            if scanned and scanned[-1][1] + timedelta(days=1) == day:
                scanned[-1][1] = day
            else:
                scanned.append([day, day])
            day += timedelta(days=1)
    keys: list[ColumnElement[Any]] = [SLICES[name].expression for name in slices]
    if per is not None:
        keys.append(bucket_of(per, query, tz))
    places = {g: _place(g, slices) for g in out}
    for first, last in scanned:
        part = query.model_copy(update={"start": first, "end": last})
        found = count_cells(session, scope(part, tz), keys, currency=currency, now=now)
        for key, cell in found.items():
            owner = key[0]
            for grouping, groups in out.items():
                value = places[grouping](key)
                if grouping == "rep":
                    value = emails.get(value) if value is not None else None
                group = _group(groups, value)
                _add(group, cell, with_durations=grouping in durations)
                if owner is not None and cell.counts[LEADS]:
                    group.owners.add(owner)
    if weeks:
        _add_weeks(session, out, weeks, query, durations, counts_only, currency, now, tz, emails)
    return out


def _place(grouping: Grouping, slices: list[str]) -> Callable[[CellKey], Any]:
    """Where a scanned cell's key (owner, *slices, bucket) says its group is."""
    if grouping is None:
        return lambda _key: None
    if grouping == "rep":
        return lambda key: key[0]
    if grouping in PERIOD_GROUP_BYS:
        return lambda key: key[-1]
    at = 1 + slices.index(grouping)
    return lambda key: key[at]


def _group(groups: dict[Any, Group], value: Any) -> Group:
    found = groups.get(value)
    if found is None:
        found = groups[value] = Group()
    return found


def _add(group: Group, cell: Cell, *, with_durations: bool) -> None:
    into = group.cell
    into.counts = [a + b for a, b in zip(into.counts, cell.counts, strict=True)]
    if with_durations:
        into.follow_up_s += cell.follow_up_s
        into.cycle_days += cell.cycle_days
        into.first_contact_days += cell.first_contact_days
        into.packed += cell.packed


Rollup = type[KpiWeek] | type[KpiOwnerWeek]


def _add_weeks(
    session: Session,
    out: Groups,
    weeks: dict[date, str | None],
    query: KpiQuery,
    durations: Collection[Grouping],
    counts_only: Collection[Grouping],
    currency: str,
    now: datetime,
    tz: ZoneInfo,
    emails: dict[int, str],
) -> None:
    """Add the rollups' rows of ``weeks`` to each grouping's groups: counts added up by
    the database per owner and group (a few rows per group), the durations' packed
    arrays read once for the groupings that need them, and the few leads whose deadline
    is still ahead taken out of the missed SLAs. Every grouping but the sources reads
    the rollup per owner (``kpi_owner_weeks``) unless sources are picked."""
    conn = session.connection()
    owners_table: Rollup = KpiOwnerWeek if query.sources is None else KpiWeek

    def table_of(grouping: Grouping) -> Rollup:
        return KpiWeek if grouping == "source" else owners_table

    def where(table: Rollup) -> list[ColumnElement[bool]]:
        source = KpiWeek.source if table is KpiWeek else None
        return [
            table.week.in_(sorted(weeks)),
            *_filters(query, table.pool, source, table.owner_rep_id),
        ]

    width = len(kpi_rollup.COUNT_NAMES)
    by_week = {week.isoformat(): week for week in weeks} | {week: week for week in weeks}

    def value_of(grouping: Grouping, raw: Any) -> Any:
        if grouping == "rep":
            return emails.get(raw) if raw is not None else None
        if grouping in PERIOD_GROUP_BYS:
            return weeks[by_week[raw]]  # SQLite's dates are text
        return raw

    # Per owner (the rep groups and the whole period), and per owner and group for the
    # other groupings: a rep counts in a group once a row of theirs there has leads.
    levels: dict[Grouping, list[Grouping]] = {"rep": [g for g in out if g in (None, "rep")]}
    for grouping in out:
        if grouping not in (None, "rep"):
            levels[grouping] = [grouping]
    for level, groupings in levels.items():
        if not groupings:
            continue
        table = table_of(level)
        keyed = [] if level == "rep" else [_week_column(table, level)]
        # A chart's groups need no reps: a row per group and currency, not per owner.
        owned = level == "rep" or level not in counts_only
        owner_column = table.owner_rep_id if owned else null()
        sums = [func.sum(column) for column in kpi_rollup.count_columns(table)]
        counted = conn.execute(
            select(*keyed, owner_column, table.currency, *sums)
            .where(*where(table))
            .group_by(*keyed, *([table.owner_rep_id] if owned else []), table.currency)
        )
        at = len(keyed)
        for row in plain_rows(counted):
            owner = row[at]
            counts = [int(v or 0) for v in row[at + 2 : at + 2 + width]]
            cell = rollup_cell(
                counts, row[at + 1], currency=currency, open_ahead=0, packed=(b"", b"", b"")
            )
            for grouping in groupings:
                raw = owner if grouping == "rep" else row[0] if keyed else None
                group = _group(out[grouping], value_of(grouping, raw))
                _add(group, cell, with_durations=False)
                if owner is not None and counts[LEADS]:
                    group.owners.add(owner)
    # The durations, for the groupings that need them: each row's packed arrays go to
    # its group's list (one dictionary look-up per row and grouping).
    for table in {table_of(g) for g in out if g in durations}:
        wanted = [g for g in out if g in durations and table_of(g) is table]
        keyed_by = [g for g in wanted if g is not None]
        packed = conn.execute(
            select(
                *(_week_column(table, g) for g in keyed_by),
                table.follow_up_s,
                table.cycle_days,
                table.first_contact_days,
            ).where(*where(table))
        )
        rows = plain_rows(packed)
        if None in wanted:
            _group(out[None], None).cell.packed.extend(row[-3:] for row in rows)
        for index, grouping in enumerate(keyed_by):
            targets: dict[Any, list[tuple[bytes, bytes, bytes]]] = {}
            for row in rows:
                target = targets.get(row[index])
                if target is None:
                    group = _group(out[grouping], value_of(grouping, row[index]))
                    target = targets[row[index]] = group.cell.packed
                target.append(row[-3:])
    # The uncontacted leads whose deadline is still ahead have not missed it yet.
    for (week, owner, pool, source), count in _open_ahead(session, weeks, query, now, tz).items():
        if week not in weeks:
            continue
        raw = {"rep": owner, "pool": pool, "source": source}
        for grouping, groups in out.items():
            place = week.isoformat() if grouping in PERIOD_GROUP_BYS else raw.get(grouping or "")
            found = groups.get(value_of(grouping, place))
            if found is not None:  # the snapshot has its rollup row (see _open_ahead)
                found.cell.counts[MISSED] -= count


def _week_column(table: Rollup, grouping: Grouping) -> Any:
    """The rollup's column a grouping's groups are keyed by (the week, for time)."""
    if grouping == "rep":
        return table.owner_rep_id
    if grouping in PERIOD_GROUP_BYS:
        return table.week
    if grouping == "source":
        return KpiWeek.source
    return table.pool


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
