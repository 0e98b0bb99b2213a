"""The KPIs of a period (``report``, ``reports``), the follow-up distribution and the SLA
breaches, from the leads' KPI facts (``domain.kpi_facts``): the counting is
``store.kpi_counts``'s, the formulas ``domain.kpis``'s; never the events.

The period is a range of dates in the installation's time zone (``LEADFLOW_TIMEZONE``); a
lead belongs to the day, week, month and quarter in which it was created there: each
bucket starts at its first local midnight, computed here with the time zone's rules, so
daylight saving needs no arithmetic in SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import ColumnElement, String, case, func, literal, select
from sqlalchemy.orm import Session

from domain.config import RoutingConfig
from domain.kpis import (
    PERIOD_GROUP_BYS,
    KpiGroup,
    KpiQuery,
    KpiReport,
    Plan,
    figures,
    forecast_for,
    period_bounds,
    quota_for,
)
from store.kpi_counts import SLICES, Cell, CellKey, count_cells, missed, totals_of_cells
from store.models import Lead, Rep

NONE_KEY = "none"  # the group of leads without the sliced value (no owner, no territory …)
FOLLOW_UP_BUCKETS = (
    "< 5 min",
    "5-15 min",
    "15-60 min",
    "1-4 h",
    "4-24 h",
    "> 1 day",
    "not contacted",
)
_BUCKET_LIMITS_S = (300, 900, 3600, 4 * 3600, 24 * 3600)


class SlaBreach(BaseModel):
    lead_id: str
    email: str
    company: str | None = None
    owner: str | None = None
    pool: str | None = None
    due: datetime
    contacted_at: datetime | None = None


# ------------------------------------------------------------------------ the report


def report(
    session: Session,
    query: KpiQuery,
    config: RoutingConfig,
    *,
    tz: ZoneInfo,
    now: datetime,
) -> KpiReport:
    """Every KPI over the leads created from ``query.start`` to ``query.end`` (local
    dates, inclusive), and per group when ``query.group_by`` asks for it."""
    return reports(session, query, config, [query.group_by], tz=tz, now=now)[0]


def reports(
    session: Session,
    query: KpiQuery,
    config: RoutingConfig,
    group_bys: Sequence[str | None],
    *,
    tz: ZoneInfo,
    now: datetime,
) -> list[KpiReport]:
    """``report`` for each of ``group_bys`` (at most one of them by time), from one read
    of the leads: what a page showing several groupings of one period asks for."""
    times = {g for g in group_bys if g in PERIOD_GROUP_BYS}
    if len(times) > 1:
        raise ValueError(f"one time grouping per call, not {sorted(times)}")
    slices = sorted({g for g in group_bys if g in SLICES})
    keys: list[ColumnElement[Any]] = [SLICES[name].expression for name in slices]
    if times:
        keys.append(_bucket_of(next(iter(times)), query, tz))
    kpis_config = config.kpis
    cells = list(
        count_cells(
            session, _scope(query, tz), keys, currency=kpis_config.currency, now=now
        ).items()
    )
    reps_in_scope = _reps_in_scope(config, query)
    plan = Plan(
        days=(query.end - query.start).days + 1,
        currency=kpis_config.currency,
        quota=quota_for(kpis_config, reps_in_scope, query.start, query.end),
        forecast=forecast_for(kpis_config, query.pools, query.start, query.end),
        small_sample=kpis_config.small_sample,
    )
    whole = figures(totals_of_cells(cells), plan)
    emails = _rep_emails(session) if "rep" in group_bys else {}
    out = []
    for group_by in group_bys:
        groups: list[KpiGroup] = []
        if group_by in PERIOD_GROUP_BYS:
            by_bucket = _split(cells, lambda key: key[-1])
            for name, first, last in period_bounds(group_by, query.start, query.end):
                part = plan.model_copy(
                    update={
                        "days": (last - first).days + 1,
                        "quota": quota_for(kpis_config, reps_in_scope, first, last),
                        "forecast": forecast_for(kpis_config, query.pools, first, last),
                    }
                )
                found = totals_of_cells(by_bucket.get(name, []))
                groups.append(KpiGroup(key=name, kpis=figures(found, part)))
        elif group_by is not None:
            split = _split(cells, _group_of(group_by, slices, emails))
            for value, members in sorted(split.items(), key=lambda kv: str(kv[0])):
                name = NONE_KEY if value is None else str(value)
                part = _group_plan(plan, config, query, group_by, name)
                groups.append(KpiGroup(key=name, kpis=figures(totals_of_cells(members), part)))
        out.append(
            KpiReport.model_validate(
                {"from": query.start, "to": query.end, "kpis": whole, "groups": groups}
            )
        )
    return out


def _group_of(group_by: str, slices: list[str], emails: dict[int, str]) -> Callable[[CellKey], Any]:
    """Which group a cell belongs to: its owner's email, or its value of the slice."""
    if group_by == "rep":
        return lambda key: emails.get(key[0]) if key[0] is not None else None
    at = 1 + slices.index(group_by)
    return lambda key: key[at]


def _split(
    cells: Iterable[tuple[CellKey, Cell]], group_of: Callable[[CellKey], Any]
) -> dict[Any, list[tuple[CellKey, Cell]]]:
    out: dict[Any, list[tuple[CellKey, Cell]]] = {}
    for key, cell in cells:
        out.setdefault(group_of(key), []).append((key, cell))
    return out


def _group_plan(
    plan: Plan, config: RoutingConfig, query: KpiQuery, group_by: str, name: str
) -> Plan:
    """A group's targets: quotas are per rep and forecasts per pool or team, so a
    source's or a territory's leads are measured against neither."""
    kpis_config, start, end = config.kpis, query.start, query.end
    if group_by == "rep":
        return plan.model_copy(
            update={"quota": quota_for(kpis_config, [name], start, end), "forecast": None}
        )
    if group_by == "pool":
        members = _pool_members(config, [name])
        return plan.model_copy(
            update={
                "quota": quota_for(kpis_config, members, start, end),
                "forecast": forecast_for(kpis_config, [name], start, end),
            }
        )
    return plan.model_copy(update={"quota": None, "forecast": None})


def _rep_emails(session: Session) -> dict[int, str]:
    return {int(row[0]): str(row[1]) for row in session.execute(select(Rep.id, Rep.email))}


def follow_up_buckets(session: Session, query: KpiQuery, *, tz: ZoneInfo) -> list[tuple[str, int]]:
    """How long the period's leads waited for their first contact, in FOLLOW_UP_BUCKETS."""
    scope = _scope(query, tz)
    waited = Lead.follow_up_s
    whens: list[tuple[ColumnElement[bool], int]] = [
        (Lead.first_contacted_at.is_(None), len(_BUCKET_LIMITS_S) + 1)
    ]
    whens += [(waited < limit, i) for i, limit in enumerate(_BUCKET_LIMITS_S)]
    bucket = case(*whens, else_=len(_BUCKET_LIMITS_S))
    counts = dict.fromkeys(range(len(FOLLOW_UP_BUCKETS)), 0)
    for index, count in session.execute(
        select(bucket, func.count()).where(*scope).group_by(bucket)
    ):
        counts[int(index)] = int(count)
    return [(label, counts[i]) for i, label in enumerate(FOLLOW_UP_BUCKETS)]


def sla_breaches(
    session: Session,
    query: KpiQuery,
    *,
    tz: ZoneInfo,
    now: datetime,
    limit: int = 20,
) -> tuple[int, list[SlaBreach]]:
    """The period's leads first contacted after their SLA deadline, or not contacted with
    the deadline passed: how many, and the ``limit`` most recent deadlines."""
    where = [*_scope(query, tz), missed(now)]
    total = session.scalar(select(func.count()).select_from(Lead).where(*where)) or 0
    # The newest deadlines from the covering index first, then only those leads' rows.
    newest = list(
        session.scalars(
            select(Lead.id).where(*where).order_by(Lead.sla_due_at.desc(), Lead.id).limit(limit)
        )
    )
    rows = session.execute(
        select(Lead, Rep.email)
        .outerjoin(Rep, Rep.id == Lead.owner_rep_id)
        .where(Lead.id.in_(newest))
        .order_by(Lead.sla_due_at.desc(), Lead.id)
    ).all()
    breaches = []
    for lead, owner in rows:
        company = (lead.data or {}).get("company")
        breaches.append(
            SlaBreach(
                lead_id=lead.id,
                email=lead.email,
                company=company if isinstance(company, str) else None,
                owner=owner,
                pool=lead.pool,
                due=lead.sla_due_at,
                contacted_at=lead.first_contacted_at,
            )
        )
    return int(total), breaches


# ------------------------------------------------------------------- scope and time


def _scope(query: KpiQuery, tz: ZoneInfo) -> list[ColumnElement[bool]]:
    start, end = _utc_bounds(query.start, query.end, tz)
    where: list[ColumnElement[bool]] = [Lead.created_at >= start, Lead.created_at < end]
    if query.pools is not None:
        where.append(Lead.pool.in_(query.pools))
    if query.sources is not None:
        where.append(Lead.source.in_(query.sources))
    if query.reps is not None:
        where.append(Lead.owner_rep_id.in_(select(Rep.id).where(Rep.email.in_(query.reps))))
    return where


def _utc_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants at which the local dates ``start`` begins and the day after ``end``
    begins."""
    return _midnight(start, tz), _midnight(end + timedelta(days=1), tz)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _bucket_of(group_by: str, query: KpiQuery, tz: ZoneInfo) -> ColumnElement[str]:
    """The key of the day, week, month or quarter a lead was created in (local time), as
    ``domain.kpis.period_bounds`` names it: a balanced CASE on the buckets' first
    instants, so each lead costs a handful of comparisons (nine for a year of days) and
    daylight saving needs no arithmetic in SQL."""
    buckets = period_bounds(group_by, query.start, query.end)
    starts = [(name, _midnight(first, tz)) for name, first, _ in buckets]
    return _search(starts)


def _search(starts: list[tuple[str, datetime]]) -> ColumnElement[str]:
    if len(starts) == 1:
        return literal(starts[0][0], String())
    middle = len(starts) // 2
    return case(
        (Lead.created_at < starts[middle][1], _search(starts[:middle])),
        else_=_search(starts[middle:]),
    )


def _reps_in_scope(config: RoutingConfig, query: KpiQuery) -> list[str] | None:
    """Whose quotas the period's figures are measured against: the reps asked for, else
    the members of the pools asked for, else everyone (None)."""
    if query.reps is not None:
        return list(query.reps)
    if query.pools is not None:
        return _pool_members(config, query.pools)
    return None


def _pool_members(config: RoutingConfig, pools: Iterable[str]) -> list[str]:
    wanted = set(pools)
    return sorted({m.rep for p in config.pools if p.name in wanted for m in p.members})
