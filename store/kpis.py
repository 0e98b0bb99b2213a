"""The KPIs of a period (``report``, ``reports``), the follow-up distribution and the SLA
breaches, from the leads' KPI facts (``domain.kpi_facts``): the counting is
``store.kpi_counts``'s, the formulas ``domain.kpis``'s; never the events.

The period is a range of dates in the installation's time zone (``LEADFLOW_TIMEZONE``); a
lead belongs to the day, week, month and quarter in which it was created there. The
cells come from two places (``store.kpi_cells``; docs/kpis.md, "Speed"): the weekly
rollup (``store.kpi_rollup``) for every whole local week that lies inside one time bucket
of the report and is not dirty, and the leads themselves (the scan) for the rest: the
edges of the period, weeks straddling a month or quarter, dirty weeks. Both give cells
keyed alike, so everything after is the same. A report by territory or by day reads the
leads only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, pairwise
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from domain.config import RoutingConfig
from domain.kpis import (
    PERIOD_GROUP_BYS,
    KpiGroup,
    KpiQuery,
    KpiReport,
    Plan,
    Totals,
    figures,
    forecast_for,
    period_bounds,
    quota_for,
)
from store.kpi_cells import Group, created_off_index, period_groups, scope
from store.kpi_counts import collection_paused, missed, totals_of_cell
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
    return read(session, query, config, group_bys, tz=tz, now=now).reports


@dataclass(frozen=True)
class KpiRead:
    """``reports``' reports, and the whole period's totals they were computed from (the
    page draws its follow-up distribution from them)."""

    reports: list[KpiReport]
    totals: Totals


def read(
    session: Session,
    query: KpiQuery,
    config: RoutingConfig,
    group_bys: Sequence[str | None],
    *,
    tz: ZoneInfo,
    now: datetime,
    counts_only: Collection[str] = (),
) -> KpiRead:
    """``reports``, with the totals behind them. The groups of the groupings in
    ``counts_only`` get their figures without the durations (their medians, means and
    p90 are null), may get them without their reps (the per-rep figures null) and, for
    a time grouping, without targets (quota attainment and forecast accuracy are null):
    what a chart of counts needs, without sorting every group's values, counting every
    group's reps or prorating every quota."""
    with collection_paused():
        return _read(session, query, config, group_bys, tz=tz, now=now, counts_only=counts_only)


def _read(
    session: Session,
    query: KpiQuery,
    config: RoutingConfig,
    group_bys: Sequence[str | None],
    *,
    tz: ZoneInfo,
    now: datetime,
    counts_only: Collection[str],
) -> KpiRead:
    times = [g for g in dict.fromkeys(group_bys) if g in PERIOD_GROUP_BYS]
    if len(times) > 1:
        raise ValueError(f"one time grouping per call, not {sorted(times)}")
    kpis_config = config.kpis
    groupings = [None, *(g for g in dict.fromkeys(group_bys) if g is not None)]
    emails = _rep_emails(session) if "rep" in groupings else {}
    # With the reps' durations at hand, the whole period's are theirs put together (the
    # reps' groups part the leads): their sorted lists merge faster than one list sorts.
    by_rep = "rep" in groupings and "rep" not in counts_only
    found = period_groups(
        session,
        query,
        groupings,
        durations=[g for g in groupings if g not in counts_only and not (by_rep and g is None)],
        counts_only=counts_only,
        tz=tz,
        currency=kpis_config.currency,
        now=now,
        emails=emails,
    )
    reps_in_scope = _reps_in_scope(config, query)
    plan = Plan(
        days=(query.end - query.start).days + 1,
        currency=kpis_config.currency,
        quota=quota_for(kpis_config, reps_in_scope, query.start, query.end),
        forecast=forecast_for(kpis_config, query.pools, query.start, query.end),
        small_sample=kpis_config.small_sample,
    )
    rep_totals: dict[Any, Totals] = {}
    if by_rep:
        rep_totals = {value: _totals(g, durations=True) for value, g in found["rep"].items()}
        totals = _totals(found[None].get(None), durations=False)
        for name in ("follow_up_s", "cycle_days", "first_contact_days"):
            parts = [getattr(t, name) for t in rep_totals.values()]
            for part in parts:
                part.sort()
            setattr(totals, name, list(chain.from_iterable(parts)))
    else:
        totals = _totals(found[None].get(None), durations=True)
    whole = figures(totals, plan)
    out = []
    for group_by in group_bys:
        groups: list[KpiGroup] = []
        durations = group_by not in counts_only
        if group_by in PERIOD_GROUP_BYS:
            by_bucket = found[group_by]
            for name, first, last in period_bounds(group_by, query.start, query.end):
                # Counts only (a chart): no targets to prorate either.
                part = plan.model_copy(
                    update={
                        "days": (last - first).days + 1,
                        "quota": quota_for(kpis_config, reps_in_scope, first, last)
                        if durations
                        else None,
                        "forecast": forecast_for(kpis_config, query.pools, first, last)
                        if durations
                        else None,
                    }
                )
                counted = _totals(by_bucket.get(name), durations=durations)
                groups.append(KpiGroup(key=name, kpis=figures(counted, part)))
        elif group_by is not None:
            for value, group in sorted(found[group_by].items(), key=lambda kv: str(kv[0])):
                name = NONE_KEY if value is None else str(value)
                part = _group_plan(plan, config, query, group_by, name)
                known = rep_totals.get(value) if group_by == "rep" else None
                counted = known if known is not None else _totals(group, durations=durations)
                groups.append(KpiGroup(key=name, kpis=figures(counted, part)))
        out.append(
            KpiReport.model_validate(
                {"from": query.start, "to": query.end, "kpis": whole, "groups": groups}
            )
        )
    return KpiRead(out, totals)


def _totals(group: Group | None, *, durations: bool) -> Totals:
    if group is None:
        return Totals()
    return totals_of_cell(group.cell, len(group.owners), durations=durations)


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
    where = scope(query, tz)
    waited = Lead.follow_up_s
    whens: list[tuple[ColumnElement[bool], int]] = [
        (Lead.first_contacted_at.is_(None), len(_BUCKET_LIMITS_S) + 1)
    ]
    whens += [(waited < limit, i) for i, limit in enumerate(_BUCKET_LIMITS_S)]
    bucket = case(*whens, else_=len(_BUCKET_LIMITS_S))
    counts = dict.fromkeys(range(len(FOLLOW_UP_BUCKETS)), 0)
    for index, count in session.execute(
        select(bucket, func.count()).where(*where).group_by(bucket)
    ):
        counts[int(index)] = int(count)
    return [(label, counts[i]) for i, label in enumerate(FOLLOW_UP_BUCKETS)]


def follow_up_distribution(follow_up_s: Iterable[float], leads: int) -> list[tuple[str, int]]:
    """``follow_up_buckets`` from what a report read (pure): the seconds to first contact
    of the contacted leads, and how many leads there are (the rest are not contacted)."""
    # Sorted (a C pass, near linear on the runs the cells give), then cut at each limit:
    # a year's 75,000 values cost a few milliseconds, not a Python loop over them.
    values = sorted(follow_up_s)
    cuts = [0, *(bisect_left(values, limit) for limit in _BUCKET_LIMITS_S), len(values)]
    counts = [high - low for low, high in pairwise(cuts)]
    counts.append(leads - len(values))  # not contacted
    return list(zip(FOLLOW_UP_BUCKETS, counts, strict=True))


def sla_breaches(
    session: Session,
    query: KpiQuery,
    *,
    tz: ZoneInfo,
    now: datetime,
    limit: int = 20,
) -> tuple[int, list[SlaBreach]]:
    """The period's leads first contacted after their SLA deadline, or not contacted with
    the deadline passed: how many, and the ``limit`` most recent deadlines. (A report's
    totals count them too: ``sla_missed``.)"""
    where = [*scope(query, tz), missed(now)]
    total = session.scalar(select(func.count()).select_from(Lead).where(*where)) or 0
    return int(total), newest_breaches(session, query, tz=tz, now=now, limit=limit)


def newest_breaches(
    session: Session,
    query: KpiQuery,
    *,
    tz: ZoneInfo,
    now: datetime,
    limit: int = 20,
) -> list[SlaBreach]:
    """The ``limit`` breaches of ``sla_breaches`` with the most recent deadlines: a walk
    down the deadline index (``ix_leads_sla_due_at``) from the newest, which stops at the
    ``limit``-th breach of the period instead of reading the period's leads."""
    where = [*scope(query, tz, created_off_index(session)), missed(now)]

    def walk(*columns: Any) -> Any:
        return select(*columns).where(*where)

    # The index's order (deadline, newest first) up to the limit-th breach, then the
    # breaches from that deadline on, ties in id order as before.
    dues = list(
        session.scalars(walk(Lead.sla_due_at).order_by(Lead.sla_due_at.desc()).limit(limit))
    )
    if not dues:
        return []
    newest = list(
        session.scalars(
            walk(Lead.id)
            .where(Lead.sla_due_at >= dues[-1])
            .order_by(Lead.sla_due_at.desc(), Lead.id)
            .limit(limit)
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
    return breaches


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
