"""The KPI page's filters (``/admin/kpis``): the period (from and to dates, or a preset
such as ``period=this_month``), pool, rep and source, read from the query string, and
what each user may pick (a team lead: the pools they manage and their members).

A filter that cannot be used is left out with a message naming its field; with a bad
period the default one, the last 30 days, is used."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from domain.config import RoutingConfig
from domain.kpis import KpiQuery
from domain.users import Role
from web.admin.deps import AdminUser
from web.admin.kpi_format import period_text
from web.api_kpis import MAX_DAYS

PRESETS = {
    "this_week": "This week",
    "last_7_days": "Last 7 days",
    "this_month": "This month",
    "last_30_days": "Last 30 days",
    "this_quarter": "This quarter",
    "last_quarter": "Last quarter",
    "this_year": "This year",
}
DEFAULT_PRESET = "last_30_days"
# The per-rep table's columns, with their short headings.


def preset_dates(name: str, today: date) -> tuple[date, date]:
    """The dates of a preset period, ``today`` being in it (except "last quarter")."""
    quarter_start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    if name == "this_week":
        return today - timedelta(days=today.weekday()), today
    if name == "last_7_days":
        return today - timedelta(days=6), today
    if name == "this_month":
        return today.replace(day=1), today
    if name == "last_30_days":
        return today - timedelta(days=29), today
    if name == "this_quarter":
        return quarter_start, today
    if name == "last_quarter":
        last = quarter_start - timedelta(days=1)
        return date(last.year, (last.month - 1) // 3 * 3 + 1, 1), last
    if name == "this_year":
        return date(today.year, 1, 1), today
    raise KeyError(name)


@dataclass
class Filters:
    """The page's filters as asked (``values``, for the form) and as used (``query``,
    before a team lead's scope), with the problems of those left out."""

    values: dict[str, str]
    query: KpiQuery
    preset: str | None
    errors: dict[str, str] = field(default_factory=dict)


def parse_filters(
    params: dict[str, str], today: date, config: RoutingConfig, user: AdminUser
) -> Filters:
    """The filters of the page's query string; each one that cannot be used is left out
    with a message naming its field."""
    names = ("from", "to", "period", "pool", "rep", "source")
    values = {k: params.get(k, "").strip() for k in names}
    errors: dict[str, str] = {}
    start, end = _period(values, today, errors)
    values["from"], values["to"] = start.isoformat(), end.isoformat()
    asked = values.pop("period")
    matching = [n for n in PRESETS if preset_dates(n, today) == (start, end)]
    preset = asked if asked in matching else next(iter(matching), None)
    pools = pools_for(config, user)
    if values["pool"] and values["pool"] not in pools:
        errors["pool"] = (
            f"Pool: you can see only the pools you manage ({', '.join(pools) or 'none'}); "
            f"“{values['pool']}” is not one of them, so every pool you manage is shown."
            if user.role == Role.team_lead
            else f"Pool: there is no pool named “{values['pool']}”; every pool is shown."
        )
        values["pool"] = ""
    if values["rep"] and values["rep"].lower() not in reps_for(config, user):
        errors["rep"] = f"Rep: “{values['rep']}” is not a rep you can see; every rep is shown."
        values["rep"] = ""
    query = KpiQuery(
        start=start,
        end=end,
        pools=[values["pool"]] if values["pool"] else None,
        reps=[values["rep"].lower()] if values["rep"] else None,
        sources=[values["source"]] if values["source"] else None,
    )
    return Filters(values, query, preset, errors)


def _period(values: dict[str, str], today: date, errors: dict[str, str]) -> tuple[date, date]:
    """The dates asked for (from and to, else a preset), or the default period with the
    problem in ``errors``."""
    if values["from"] or values["to"]:
        end = _date(values["to"], "to", "To", errors) if values["to"] else today
        start = _date(values["from"], "from", "From", errors) if values["from"] else None
        if start is None and end is not None and not values["from"]:
            start = end - timedelta(days=29)
        if start is not None and end is not None:
            days = (end - start).days + 1
            if start > end:
                errors["from"] = (
                    f"From date: {period_text(start, start)} is after the To date, "
                    f"{period_text(end, end)}; the From date must come first."
                )
            elif days > MAX_DAYS:
                errors["to"] = (
                    f"To date: the period is {days:,} days long and the page covers at most "
                    f"{MAX_DAYS:,}; choose a later From date or an earlier To date."
                )
            else:
                return start, end
    elif values["period"]:
        if values["period"] in PRESETS:
            return preset_dates(values["period"], today)
        errors["period"] = (
            f"Period: there is no preset “{values['period']}”; the presets are "
            f"{', '.join(PRESETS.values()).lower()}."
        )
    return preset_dates(DEFAULT_PRESET, today)


def _date(text: str, name: str, label: str, errors: dict[str, str]) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = f"{label} date: “{text}” is not a date; write it as YYYY-MM-DD."
        return None


def pools_for(config: RoutingConfig, user: AdminUser) -> list[str]:
    """The pools ``user`` may look at."""
    if user.role == Role.team_lead:
        return list(user.managed_pools)
    return [p.name for p in config.pools]


def reps_for(config: RoutingConfig, user: AdminUser) -> dict[str, str]:
    """Email → name of the reps ``user`` may pick (a team lead: their pools' members)."""
    names = {r.email.lower(): r.name for r in config.reps}
    if user.role != Role.team_lead:
        return names
    managed = set(user.managed_pools)
    members = {m.rep.lower() for p in config.pools if p.name in managed for m in p.members}
    return {email: name for email, name in names.items() if email in members}
