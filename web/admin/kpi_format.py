"""The KPI figures written for people, as the KPI page shows them: durations as
"4 min 12 s", shares as "37.5 %", days as "12.4 days", money with its currency, percent
error with its sign, and "—" where there is no figure. The page rounds only here; the
exact figure stays in the tile's ``data-value`` (the API's digits)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.kpis import FUNNEL_STAGES, Kpi

NONE = "—"
MINUS = "\u2212"
DASH = "\u2013"  # between dates
TITLES = {
    "leads_generated": "Leads generated",
    "follow_up_time": "Follow-up time",
    "sla_compliance": "Speed-to-lead SLA met",
    "qualification_rate": "Qualification rate",
    "proposal_rate": "Proposal rate",
    "win_rate": "Win rate",
    "close_rate": "Close rate",
    "sales_cycle_length": "Sales cycle",
    "deals_closed": "Deals closed",
    "revenue": "Revenue",
    "average_deal_size": "Average deal size",
    "average_quarterly_revenue_per_rep": "Quarterly revenue per rep",
    "activity_volume": "Activity volume",
    "quota_attainment": "Quota attainment",
    "forecast_accuracy": "Forecast accuracy",
    "funnel": "Funnel",
}
STAGE_TITLES = {stage: stage.capitalize() for stage in FUNNEL_STAGES}
# What a figure's count is, for the figures that are not a rate ("of" is None) and
# whose value is not the count itself.
COUNTED = {
    "sales_cycle_length": ("closed deal", "closed deals"),
    "revenue": ("won deal", "won deals"),
    "average_deal_size": ("won deal", "won deals"),
    "average_quarterly_revenue_per_rep": ("rep", "reps"),
    "activity_volume": ("event", "events"),
}


@dataclass(frozen=True)
class Shown:
    """A figure as a tile or a table cell shows it."""

    text: str  # the value for people, or "—"
    count: str  # "42 of 120", "12 won deals", or ""
    extra: str  # the figures beside it (mean and p90, days to first contact), or ""
    note: str  # the figure's note, or ""
    small: bool  # a small sample: shown greyed
    missing: bool  # no figure (zero denominator, nothing configured)


def shown(key: str, kpi: Kpi, *, currency: bool = True) -> Shown:
    """``kpi`` (the figure of ``key``) as the page writes it; ``currency=False``: money
    without its currency (a table whose heading names it)."""
    text = value_text(key, kpi)
    if not currency and kpi.value is not None and kpi.unit == kpi.unit.upper():
        text = f"{kpi.value:,.2f}"
    return Shown(
        text=text,
        count=count_text(key, kpi),
        extra=extra_text(kpi),
        note=kpi.note or "",
        small=kpi.small_sample,
        missing=kpi.value is None and key != "funnel",
    )


def value_text(key: str, kpi: Kpi) -> str:
    if key == "funnel" and kpi.stages:
        return " → ".join(f"{kpi.stages.get(stage, 0):,}" for stage in FUNNEL_STAGES)
    return number(kpi.value, kpi.unit)


def number(value: float | None, unit: str) -> str:
    """A value of ``unit`` for people."""
    if value is None:
        return NONE
    if unit == "seconds":
        return duration(value)
    if unit == "share":
        return f"{value * 100:.1f} %"
    if unit == "days":
        return f"{value:.1f} days"
    if unit == "percent":
        return f"{value:+.1f} %".replace("-", MINUS)
    if unit in ("leads", "deals"):
        return f"{value:,.0f}"
    if unit == "events per rep per day":
        return f"{value:.2f} per rep per day"
    return money(value, unit)


def money(value: float | Decimal, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def duration(seconds: float) -> str:
    """``4 min 12 s``, ``3 h 5 min``, ``2 d 4 h``: the two largest units."""
    whole = round(seconds)
    if whole < 60:
        return "under 1 s" if whole == 0 and seconds > 0 else f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def count_text(key: str, kpi: Kpi) -> str:
    if kpi.count is None:
        return ""
    if kpi.of is not None:
        return f"{kpi.count:,} of {kpi.of:,}"
    nouns = COUNTED.get(key)
    if nouns is None:
        return ""
    return f"{kpi.count:,} {nouns[0] if kpi.count == 1 else nouns[1]}"


def extra_text(kpi: Kpi) -> str:
    parts = []
    if kpi.mean is not None:
        parts.append(f"mean {duration(kpi.mean)}")
    if kpi.p90 is not None:
        parts.append(f"p90 {duration(kpi.p90)}")
    if kpi.first_contact_days is not None:
        parts.append(f"first contact after {kpi.first_contact_days:.1f} days")
    if kpi.leak is not None:
        parts.append(f"leaks most at {kpi.leak}")
    return " · ".join(parts)


def revenue_by_currency(amounts: Mapping[str, Decimal]) -> str:
    """A leaderboard row's revenue, one amount per currency."""
    return ", ".join(money(v, c) for c, v in sorted(amounts.items())) or NONE


def period_text(start: date, end: date) -> str:
    """``3-9 Nov 2026``, ``28 Oct - 3 Nov 2026``, ``1 Dec 2025 - 31 Jan 2026`` (with
    an en dash)."""
    if start == end:
        return f"{end.day} {end:%b %Y}"
    if start.year != end.year:
        return f"{start.day} {start:%b %Y} {DASH} {end.day} {end:%b %Y}"
    if start.month != end.month:
        return f"{start.day} {start:%b} {DASH} {end.day} {end:%b %Y}"
    return f"{start.day}{DASH}{end.day} {end:%b %Y}"


def axis_label(key: str, group_by: str) -> str:
    """A period group's key (``2026-11-03``, ``2026-W48``, ``2026-11``) on a time axis."""
    if group_by == "day":
        day = date.fromisoformat(key)
        return f"{day.day} {day:%b}"
    if group_by == "month":
        return date.fromisoformat(f"{key}-01").strftime("%b %Y")
    return key
