"""The sales-ops KPIs over the JSON API: ``GET /api/v1/kpis`` (viewer role or more).

``from`` and ``to`` are inclusive dates in the installation's time zone
(``LEADFLOW_TIMEZONE``); the figures cover the leads created between them. ``group_by``
adds the same figures per rep, pool, source, territory, day, week, month or quarter;
``pool``, ``rep`` and ``source`` (each repeatable) narrow the leads. ``format=csv``
answers the same figures as CSV, digit for digit. A team lead's token sees the pools they
manage only (docs/kpis.md). The formulas are ``domain.kpis``'s, the counting
``store.kpis``'s; the admin's KPI page calls the same ``kpi_report``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from domain.config import RoutingConfig
from domain.kpis import GROUP_BYS, KpiQuery, KpiReport, csv_rows
from domain.users import Role
from store import kpis as kpi_store
from web.api_config import in_force
from web.api_models import ERRORS
from web.config_document import refused
from web.deps import ApiViewer, AppContext, BearerDoc, Context

router = APIRouter(prefix="/api/v1", tags=["KPIs"])

# A report covers at most this many days (about three years): the figures stay quick and
# a mistyped year does not scan the whole history.
MAX_DAYS = 1100
DEFAULT_DAYS = 30
FORMATS = ("json", "csv")


class KpiRequestError(Exception):
    """A query parameter that cannot be used: the field and why, for people."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_query(
    start: str | None,
    end: str | None,
    group_by: str | None,
    *,
    pools: list[str] | None = None,
    reps: list[str] | None = None,
    sources: list[str] | None = None,
    today: date,
) -> KpiQuery:
    """The query from its text parameters (API and admin page alike). Without dates: the
    last 30 days up to today."""
    last = _date("to", end) if end else today
    first = _date("from", start) if start else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise KpiRequestError("from", f"from ({first}) is after to ({last})")
    if (last - first).days + 1 > MAX_DAYS:
        raise KpiRequestError(
            "to",
            f"a report covers at most {MAX_DAYS} days; this one covers {(last - first).days + 1}",
        )
    if group_by is not None and group_by not in GROUP_BYS:
        raise KpiRequestError("group_by", f"group_by is one of {', '.join(GROUP_BYS)}")
    return KpiQuery(
        start=first,
        end=last,
        group_by=group_by,
        pools=_values(pools),
        reps=[r.lower() for r in _values(reps) or []] or None,
        sources=_values(sources),
    )


def _date(field: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise KpiRequestError(
            field, f"{field} is a date written YYYY-MM-DD; got {text!r}"
        ) from None


def _values(values: list[str] | None) -> list[str] | None:
    cleaned = [v.strip() for v in values or [] if v.strip()]
    return cleaned or None


def scoped(query: KpiQuery, config: RoutingConfig, role: Role, email: str) -> KpiQuery:
    """A team lead's figures cover the pools they manage; viewers and admins see all."""
    if role != Role.team_lead:
        return query
    managed = [p.name for p in config.pools if p.manager == email]
    asked = query.pools
    pools = [p for p in managed if asked is None or p in asked]
    return query.model_copy(update={"pools": pools})


def kpi_report(
    context: AppContext, query: KpiQuery, *, role: Role = Role.admin, email: str = ""
) -> tuple[KpiQuery, KpiReport]:
    """The report for ``query`` as ``role`` sees it (blocking: run it in a thread)."""
    tz = ZoneInfo(context.settings.timezone)
    context.rollups.before_read(context.db, tz)  # the weeks changed since; never fails
    with context.db.snapshot() as session:
        _, config = in_force(session, context)
        query = scoped(query, config, role, email)
        return query, kpi_store.report(session, query, config, tz=tz, now=datetime.now(UTC))


def csv_text(report: KpiReport) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(csv_rows(report))
    return out.getvalue()


def today_in(context: AppContext) -> date:
    return datetime.now(ZoneInfo(context.settings.timezone)).date()


@router.get("/kpis", responses=ERRORS, dependencies=[BearerDoc])
async def get_kpis(
    context: Context,
    principal: ApiViewer,
    start: Annotated[
        str | None,
        Query(alias="from", description="first day, YYYY-MM-DD (default: 29 days before to)"),
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", description="last day, YYYY-MM-DD (default: today)")
    ] = None,
    group_by: Annotated[str | None, Query(description=" | ".join(GROUP_BYS))] = None,
    pool: Annotated[list[str] | None, Query(description="only these pools")] = None,
    rep: Annotated[list[str] | None, Query(description="only these reps' leads (emails)")] = None,
    source: Annotated[list[str] | None, Query(description="only these sources")] = None,
    format: Annotated[str, Query(description="json or csv")] = "json",
) -> Response:
    """The KPIs of the leads created from ``from`` to ``to``, per group if asked."""
    if format not in FORMATS:
        raise refused(422, "format", "format is json or csv")
    try:
        query = parse_query(
            start, end, group_by, pools=pool, reps=rep, sources=source, today=today_in(context)
        )
    except KpiRequestError as err:
        raise refused(422, err.field, err.message) from None
    _, report = await run_in_threadpool(
        kpi_report, context, query, role=principal.role, email=principal.actor
    )
    if format == "csv":
        return Response(
            csv_text(report),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="kpis_{query.start}_{query.end}.csv"'
            },
        )
    body: dict[str, Any] = report.model_dump(mode="json", by_alias=True)
    return JSONResponse(body)
