"""The KPI dashboard (``/admin/kpis``, viewer role and up): the sales-ops KPIs of the
leads created in a period, as tiles with their definitions and notes, and as charts
(the funnel with its leak, the follow-up time distribution, leads and wins over time,
leads by source), the figures per rep beside the leaderboard, and the SLA breaches.
``/admin/kpis.csv`` downloads the tiles' figures as the API's CSV does.

Filters are a GET form, so a filtered view is a link: the period (from and to dates, or
a preset such as ``period=this_month``), pool, rep and source (``web.admin.kpi_filters``).
A filter that cannot be used is named on the page and left out (a bad date: the default
period, the last 30 days, is shown).

Who sees what (docs/kpis.md, "The dashboard"): viewers and admins see every pool. A team
lead sees the pools they manage and nothing else: the pool filter offers only those, and
every figure, chart and list is computed with ``pools=`` set to them (as the API does for
a team lead's token, ``web.api_kpis.scoped``). The leaderboard is the wins channel's
(``domain.leaderboard`` over ``store.leaderboard.activities``, as the weekly post
computes it): its ranks and points are the whole team's; with a pool or rep filter, and
for a team lead, it lists only the reps concerned (the members of those pools), with
their team-wide rank. The source filter does not narrow it: points reward a rep's work on
every lead.

Cost: in one read session, three reports from one read (by rep, whose totals are the
tiles and give the follow-up distribution and the count of SLA breaches; by day, week
or month; by source), the newest breaches down the deadline index, and the leaderboard's tallies.
Nothing here walks the leads. First, the KPI rollups' weeks changed since the last report
are recounted when one short transaction can (``store.kpi_rollup.Refresher``)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from domain.config import RoutingConfig
from domain.kpis import FUNNEL_STAGES, KPI_KEYS, KpiQuery, KpiReport
from domain.leaderboard import LeaderRow, rank
from domain.users import Role
from store import kpis as kpi_store
from store import leaderboard as leaderboard_store
from store.models import utcnow
from web.admin import kpi_charts, nav
from web.admin.deps import AdminUser, Viewer
from web.admin.kpi_filters import PRESETS, Filters, parse_filters, pools_for, reps_for
from web.admin.kpi_format import (
    STAGE_TITLES,
    TITLES,
    axis_label,
    duration,
    period_text,
    revenue_by_currency,
    shown,
)
from web.admin.render import render
from web.api_config import in_force
from web.api_kpis import csv_text, scoped
from web.deps import AppContext, Context

router = APIRouter()
PATH = "/admin/kpis"
nav.register("Reports", "KPIs", PATH, Role.viewer, order=10)

REP_COLUMNS = {
    "leads_generated": "Leads",
    "follow_up_time": "Follow-up",
    "sla_compliance": "SLA met",
    "win_rate": "Win rate",
    "deals_closed": "Won",
    "revenue": "Revenue",
}
SOURCES_SHOWN = 12  # bars in the by-source chart; the rest are counted under it


# ----------------------------------------------------------------------------- routes


@router.get("/kpis", response_class=HTMLResponse)
async def kpis_page(request: Request, context: Context, user: Viewer) -> HTMLResponse:
    """The dashboard for the filters of the query string."""
    params = dict(request.query_params)
    data = await run_in_threadpool(_page, context, user, params)
    return render(request, user, "admin/kpis.html", data)


@router.get("/kpis.csv")
async def kpis_csv(request: Request, context: Context, user: Viewer) -> Response:
    """The tiles' figures as CSV (``domain.kpis.csv_rows``; ``group_by=rep`` adds the
    per-rep rows), for the same filters as the page."""
    params = dict(request.query_params)
    query, report = await run_in_threadpool(_csv_report, context, user, params)
    return Response(
        csv_text(report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="kpis_{query.start}_{query.end}.csv"'
        },
    )


@router.get("/kpis/charts.css")
async def charts_css() -> Response:
    """pygal's CSS for the page's charts (a stylesheet: the CSP refuses inline styles)."""
    return Response(
        kpi_charts.stylesheet(),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _csv_report(
    context: AppContext, user: AdminUser, params: dict[str, str]
) -> tuple[KpiQuery, KpiReport]:
    tz = ZoneInfo(context.settings.timezone)
    context.rollups.before_read(context.db, tz)  # the weeks changed since (store.kpi_rollup)
    with context.db.snapshot() as session:
        _, config = in_force(session, context)
        filters = parse_filters(params, datetime.now(tz).date(), config, user)
        query = scoped(filters.query, config, user.role, user.email)
        if params.get("group_by") == "rep":
            query = query.model_copy(update={"group_by": "rep"})
        return query, kpi_store.report(session, query, config, tz=tz, now=utcnow())


def time_group(query: KpiQuery) -> str:
    """Days for up to 62 days, weeks up to a year, months beyond."""
    days = (query.end - query.start).days + 1
    return "day" if days <= 62 else "week" if days <= 366 else "month"


def _page(context: AppContext, user: AdminUser, params: dict[str, str]) -> dict[str, Any]:
    tz = ZoneInfo(context.settings.timezone)
    context.rollups.before_read(context.db, tz)  # the weeks changed since (store.kpi_rollup)
    now = utcnow()
    with context.db.snapshot() as session:
        _, config = in_force(session, context)
        filters = parse_filters(params, now.astimezone(tz).date(), config, user)
        query = scoped(filters.query, config, user.role, user.email)
        per = time_group(query)

        # One read of the leads for the figures per rep, per period and (when no source
        # is picked) per source; with a source picked, the sources chart still lists
        # every source, which takes a second read without that filter.
        # The charts over time and by source draw counts only: their groups' figures
        # are computed without the durations.
        if query.sources is None:
            got = kpi_store.read(
                session,
                query,
                config,
                ["rep", per, "source"],
                tz=tz,
                now=now,
                counts_only=(per, "source"),
            )
            by_rep, over_time, by_source = got.reports
        else:
            got = kpi_store.read(
                session, query, config, ["rep", per], tz=tz, now=now, counts_only=(per,)
            )
            by_rep, over_time = got.reports
            every_source = query.model_copy(update={"sources": None, "group_by": "source"})
            (by_source,) = kpi_store.read(
                session, every_source, config, ["source"], tz=tz, now=now, counts_only=("source",)
            ).reports
        # The follow-up distribution and the breaches' count from what the report read.
        buckets = kpi_store.follow_up_distribution(got.totals.follow_up_s, got.totals.leads)
        breach_count = got.totals.sla_missed
        breaches = kpi_store.newest_breaches(session, query, tz=tz, now=now)
        board = _leaderboard(session, query, config, tz)
    names = {r.email.lower(): r.name for r in config.reps}
    currency = config.kpis.currency
    return {
        "filters": filters,
        "values": filters.values,
        "errors": filters.errors,
        "period": period_text(query.start, query.end),
        "timezone": tz.key,
        "per": per,
        "team_lead": user.role == Role.team_lead,
        "scope_pools": query.pools,
        "pools": pools_for(config, user),
        "reps": sorted(reps_for(config, user).items(), key=lambda kv: kv[1].lower()),
        "sources": _sources(by_source, filters.values["source"]),
        "presets": _preset_links(filters),
        "tiles": [
            (key, TITLES[key], by_rep.kpis[key], shown(key, by_rep.kpis[key])) for key in KPI_KEYS
        ],
        "funnel": by_rep.kpis["funnel"],
        "charts": _charts(by_rep, over_time, per, by_source, buckets),
        "sources_more": max(0, len(_source_rows(by_source)) - SOURCES_SHOWN),
        "rep_columns": [
            (key, f"{short} ({currency})" if key == "revenue" else short, TITLES[key])
            for key, short in REP_COLUMNS.items()
        ],
        "rep_rows": _rep_rows(by_rep, names),
        "leaders": [_leader(row) for row in board],
        "breach_count": breach_count,
        "breaches": [_breach(b, names, tz) for b in breaches],
        "csv_url": f"{PATH}.csv?{_link(filters.values)}",
        "csv_rep_url": f"{PATH}.csv?{_link(filters.values, group_by='rep')}",
        "api_url": "/api/v1/kpis?" + _api_link(filters.values),
    }


def _leaderboard(
    session: Any, query: KpiQuery, config: RoutingConfig, tz: ZoneInfo
) -> list[LeaderRow]:
    """The wins channel's leaderboard over the period (local days), narrowed to the reps
    of the rep or pool filter (and a team lead's pools)."""
    start = datetime.combine(query.start, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(query.end + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    rows = rank(leaderboard_store.tallies(session, start, end))
    if query.reps is not None:
        keep = {r.lower() for r in query.reps}
    elif query.pools is not None:
        wanted = set(query.pools)
        keep = {m.rep.lower() for p in config.pools if p.name in wanted for m in p.members}
    else:
        return rows
    return [row for row in rows if row.rep_email.lower() in keep]


def _charts(
    by_rep: KpiReport,
    over_time: KpiReport,
    per: str,
    by_source: KpiReport,
    buckets: list[tuple[str, int]],
) -> dict[str, Any]:
    funnel = by_rep.kpis["funnel"]
    stages = [(STAGE_TITLES[s], (funnel.stages or {}).get(s, 0)) for s in FUNNEL_STAGES]
    labels = [axis_label(g.key, per) for g in over_time.groups]
    every = {"day": 7, "week": 4, "month": 3}[per] if len(labels) > 14 else 1

    def counts(key: str) -> list[int]:
        return [int(g.kpis[key].value or 0) for g in over_time.groups]

    sources = _source_rows(by_source)[:SOURCES_SHOWN]
    return {
        "funnel": kpi_charts.funnel(stages, title="Funnel: leads per stage", series="Leads"),
        "follow_up": kpi_charts.distribution(
            buckets, title="Leads by time to first contact", series="Leads"
        ),
        "over_time": kpi_charts.over_time(
            labels,
            [("Leads", counts("leads_generated")), ("Won", counts("deals_closed"))],
            title=f"Leads and deals won per {per}",
            every=every,
        ),
        "by_source": kpi_charts.by_label(
            sources, title="Leads and deals won by source", series=["Leads", "Won"]
        ),
    }


def _source_rows(report: KpiReport) -> list[tuple[str, tuple[int, int]]]:
    rows = [
        (
            "(no source)" if g.key == kpi_store.NONE_KEY else g.key,
            (int(g.kpis["leads_generated"].value or 0), int(g.kpis["deals_closed"].value or 0)),
        )
        for g in report.groups
    ]
    return sorted(rows, key=lambda row: (-row[1][0], row[0]))


def _sources(report: KpiReport, chosen: str) -> list[str]:
    found = sorted(g.key for g in report.groups if g.key != kpi_store.NONE_KEY)
    return sorted({*found, chosen} - {""})


def _rep_rows(report: KpiReport, names: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for group in report.groups:
        unowned = group.key == kpi_store.NONE_KEY
        rows.append(
            {
                "name": "Nobody (unassigned)" if unowned else names.get(group.key, group.key),
                "email": "" if unowned else group.key,
                "cells": [
                    (key, shown(key, group.kpis[key], currency=False)) for key in REP_COLUMNS
                ],
                "unowned": unowned,
            }
        )
    return sorted(rows, key=lambda r: (r["unowned"], str(r["name"]).lower()))


def _leader(row: LeaderRow) -> dict[str, Any]:
    return {
        "rank": row.rank,
        "name": row.rep_name,
        "email": row.rep_email,
        "points": row.points,
        "deals_won": row.deals_won,
        "revenue": revenue_by_currency(row.revenue),
        "meetings": row.meetings_booked,
        "follow_up": duration(row.median_follow_up_s)
        if row.median_follow_up_s is not None
        else "—",
    }


def _breach(breach: kpi_store.SlaBreach, names: dict[str, str], tz: ZoneInfo) -> dict[str, Any]:
    contacted = breach.contacted_at
    return {
        "lead_id": breach.lead_id,
        "email": breach.email,
        "company": breach.company or "",
        "owner": names.get((breach.owner or "").lower(), breach.owner or ""),
        "pool": breach.pool or "",
        "due": breach.due.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "late": duration((contacted - breach.due).total_seconds()) if contacted else "",
    }


def _preset_links(filters: Filters) -> list[dict[str, Any]]:
    keep = {k: filters.values[k] for k in ("pool", "rep", "source")}
    return [
        {
            "name": name,
            "title": title,
            "url": f"{PATH}?{_link(keep, period=name)}",
            "on": filters.preset == name,
        }
        for name, title in PRESETS.items()
    ]


def _link(values: dict[str, str], **more: str) -> str:
    keys = ("from", "to", "period", "pool", "rep", "source", "group_by")
    merged = {**values, **more}
    return urlencode([(k, merged[k]) for k in keys if merged.get(k)])


def _api_link(values: dict[str, str]) -> str:
    pairs = [("from", values["from"]), ("to", values["to"])]
    pairs += [(k, values[k]) for k in ("pool", "rep", "source") if values.get(k)]
    return urlencode([*pairs, ("format", "csv")])
