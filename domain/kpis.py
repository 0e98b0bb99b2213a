"""The sales-ops KPIs (LIFECYCLE.md, "The KPIs, as the documents define them", and the KPI
choices of part B; issue 13): their formulas over the leads created in a period. It
exports, too, the report's shape and CSV (``domain.kpi_report``) and the quota, forecast
and calendar buckets of a period (``domain.config_kpis``), so that one import serves.

Pure. The store reads the leads (``LeadFact``, or the same sums straight from SQL),
``totals_of`` adds them up per group, ``figures`` turns a group's ``Totals`` and the
period's ``Plan`` into every KPI with its count, denominator, unit, definition and note.
Nothing is rounded here: the page rounds for display, the JSON and CSV carry full floats.

Decisions (where the issue and LIFECYCLE.md are silent):
- Stage counts mean "reached this stage or a later one": a lead with a proposal counts as
  met and qualified, a won lead as having had a proposal. So each rate's numerator is part
  of its denominator (every rate is in [0, 1]) and the funnel never widens, even for the
  outbound path (presentation → proposal, no ``qualified``) and imported leads.
- A deal lost, nurtured and then won counts as won, not lost; its cycle ends at the first
  of the two.
- Durations that come out negative (a first contact recorded before the lead's creation,
  as imports may have it) count as zero.
- A figure is flagged as a small sample by the number of values behind it: a rate's
  denominator, a median's or average's count, the funnel's leads. Counts, sums and the
  figures against quota and forecast are exact and never flagged.
- A won deal in another currency than the reporting one is counted in ``deals_closed``
  but left out of revenue and the figures built on it, and their note says how many.
- Without a pool filter the forecast is the team's entries (no ``pool``); only when none
  covers the dates is it the sum of the pools' entries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from statistics import fmean, median
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from domain.config_kpis import PERIOD_GROUP_BYS, forecast_for, period_bounds, quota_for
from domain.kpi_report import CSV_HEADER, GROUP_BYS, Kpi, KpiGroup, KpiQuery, KpiReport, csv_rows
from domain.lead import normalize_email

KPI_KEYS: tuple[str, ...] = (
    "leads_generated",
    "follow_up_time",
    "sla_compliance",
    "qualification_rate",
    "proposal_rate",
    "win_rate",
    "close_rate",
    "sales_cycle_length",
    "deals_closed",
    "revenue",
    "average_deal_size",
    "average_quarterly_revenue_per_rep",
    "activity_volume",
    "quota_attainment",
    "forecast_accuracy",
    "funnel",
)
FUNNEL_STAGES = ("leads", "meetings", "proposals", "won")
DAYS_PER_QUARTER = Decimal("91.3125")  # 365.25 / 4
SECONDS_PER_DAY = 86_400.0
NO_QUOTA = "no quota configured"
NO_FORECAST = "no forecast configured"

DEFINITIONS: dict[str, str] = {
    "leads_generated": "Leads created in the period.",
    "follow_up_time": "Median time from a lead's creation to its first contact, over the "
    "leads contacted (the mean and the 90th percentile beside it).",
    "sla_compliance": "Share of the leads with a speed-to-lead deadline that were first "
    "contacted by it; a lead not contacted yet counts once its deadline has passed.",
    "qualification_rate": "Share of the leads generated that were qualified (or went on "
    "to a proposal).",
    "proposal_rate": "Share of the qualified leads that received a proposal.",
    "win_rate": "Share of the decided deals that were won: won ÷ (won + lost).",
    "close_rate": "Share of the leads that received a proposal that were won.",
    "sales_cycle_length": "Median days from a lead's creation to its deal being won or "
    "lost (the median days to first contact beside it).",
    "deals_closed": "Deals won among the period's leads.",
    "revenue": "Sum of the amounts of the deals won, in the reporting currency.",
    "average_deal_size": "Revenue ÷ the deals won in the reporting currency.",
    "average_quarterly_revenue_per_rep": "Revenue per rep owning leads of the period, "
    "scaled to a quarter of 91.3125 days.",
    "activity_volume": "Lifecycle events reported by reps on the period's leads, per rep per day.",
    "quota_attainment": "Revenue ÷ the quota of the reps in scope, prorated to the period's days.",
    "forecast_accuracy": "How far revenue landed from the forecast, in percent of the "
    "forecast, with its sign: above zero, revenue beat the forecast.",
    "funnel": "Leads that reached each stage (meeting, proposal, won), and the step that "
    "keeps the smallest share of its leads.",
}


def _utc(value: datetime) -> datetime:
    """Aware, in UTC; a naive time is taken to be UTC already (as the store keeps it)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Utc = Annotated[datetime, AfterValidator(_utc)]


class LeadFact(BaseModel):
    """One lead as the store knows it: how it is sliced and when it first reached each
    milestone (a later cycle through nurture does not move these times)."""

    created_at: Utc
    owner: str | None = None  # the current owner's email
    pool: str | None = None
    source: str | None = None
    territory: str | None = None
    sla_due_at: Utc | None = None
    first_contacted_at: Utc | None = None
    meeting_at: Utc | None = None
    qualified_at: Utc | None = None
    proposal_at: Utc | None = None
    won_at: Utc | None = None
    lost_at: Utc | None = None
    amount: Decimal | None = None  # the won amount
    currency: str | None = None  # of the amount
    rep_events: int = 0  # lifecycle events reported by reps on this lead


class Totals(BaseModel):
    """What the formulas need for one group of leads (or all of them). Stage counts are
    of leads that reached the stage or a later one (see the module's decisions)."""

    leads: int = 0
    follow_up_s: list[float] = Field(default_factory=list)  # per contacted lead
    sla_met: int = 0  # first contacted at or before sla_due_at
    sla_missed: int = 0  # contacted after it, or not contacted and it has passed
    meetings: int = 0  # a meeting, qualified, a proposal or won
    qualified: int = 0  # qualified, a proposal or won
    proposals: int = 0  # a proposal or won
    won: int = 0
    lost: int = 0  # lost and not won since
    revenue: Decimal = Decimal(0)  # won amounts in the reporting currency
    other_currency_won: int = 0  # won deals in another currency (not in revenue)
    cycle_days: list[float] = Field(default_factory=list)  # per won or lost lead
    first_contact_days: list[float] = Field(default_factory=list)  # per closed, contacted
    rep_events: int = 0
    reps: int = 0  # distinct owners among the leads


class Plan(BaseModel):
    """What the period and the configuration add to the totals."""

    days: int = Field(ge=1)  # in the period, both ends included
    currency: str = "USD"
    quota: Decimal | None = None  # of the reps in scope over the period, prorated
    forecast: Decimal | None = None  # over the period, prorated
    small_sample: int = Field(20, ge=1)


# ------------------------------------------------------------------------------ totals


def _days(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds() / SECONDS_PER_DAY)


def totals_of(facts: Iterable[LeadFact], *, currency: str, now: datetime) -> Totals:
    """The totals of ``facts``; revenue in ``currency``, SLAs not yet met judged at
    ``now``."""
    currency = currency.upper()
    now = _utc(now)
    t = Totals()
    owners: set[str] = set()
    for fact in facts:
        t.leads += 1
        contacted = fact.first_contacted_at
        if contacted is not None:
            t.follow_up_s.append(max(0.0, (contacted - fact.created_at).total_seconds()))
        due = fact.sla_due_at
        if due is not None:
            if contacted is not None and contacted <= due:
                t.sla_met += 1
            elif contacted is not None or due < now:
                t.sla_missed += 1
        won = fact.won_at is not None
        proposal = won or fact.proposal_at is not None
        qualified = proposal or fact.qualified_at is not None
        t.meetings += qualified or fact.meeting_at is not None
        t.qualified += qualified
        t.proposals += proposal
        if won:
            t.won += 1
            deal_currency = (fact.currency or currency).upper()
            if deal_currency == currency:
                t.revenue += fact.amount or Decimal(0)
            else:
                t.other_currency_won += 1
        elif fact.lost_at is not None:
            t.lost += 1
        closed = [at for at in (fact.won_at, fact.lost_at) if at is not None]
        if closed:
            t.cycle_days.append(_days(fact.created_at, min(closed)))
            if contacted is not None:
                t.first_contact_days.append(_days(fact.created_at, contacted))
        t.rep_events += fact.rep_events
        if fact.owner:
            owners.add(normalize_email(fact.owner))
    t.reps = len(owners)
    return t


# ------------------------------------------------------------------------------ figures


def p90(values: list[float]) -> float:
    """The 90th percentile by the nearest-rank method: the smallest value with at least
    90% of the values at or below it, the ceil(0.9 * n)-th of the sorted values (always one
    of the values, never interpolated). ``values`` must not be empty."""
    ordered = sorted(values)  # nearly free when ``values`` is sorted already
    rank = (9 * len(ordered) + 9) // 10  # ceil(0.9 * n) in integers: 0.9 * 70 is 63.00…01
    return ordered[rank - 1]


def _joined(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def _small(size: int, noun: str, plan: Plan) -> str | None:
    return f"small sample: {size} {noun}" if 0 < size < plan.small_sample else None


def _nothing(what: str) -> str:
    return f"nothing to compute from: no {what}"


def _kpi(
    key: str,
    value: float | None,
    count: int | None,
    of: int | None,
    unit: str,
    plan: Plan,
    *,
    sample: tuple[int, str] | None = None,
    note: str | None = None,
    empty: str | None = None,
) -> Kpi:
    """A figure; ``sample`` (size, noun) flags a small one, ``empty`` says what is
    missing when ``value`` is None."""
    small = _small(*sample, plan) if sample is not None else None
    missing = _nothing(empty) if value is None and empty is not None else None
    return Kpi(
        value=value,
        count=count,
        of=of,
        unit=unit,
        definition=DEFINITIONS[key],
        note=_joined(missing, small, note),
        small_sample=small is not None,
    )


def _rate(key: str, count: int, of: int, noun: str, empty: str, plan: Plan) -> Kpi:
    value = count / of if of else None
    return _kpi(key, value, count, of, "share", plan, sample=(of, noun), empty=empty)


def _median(values: list[float]) -> float | None:
    return float(median(values)) if values else None  # sorts: pass sorted lists


def _leak(stages: dict[str, int]) -> str | None:
    """The step keeping the smallest share of its leads (the earliest on a tie); a step
    from an empty stage has no share."""
    worst: tuple[Fraction, str] | None = None
    for before, after in itertools.pairwise(FUNNEL_STAGES):
        if stages[before] > 0:
            kept = Fraction(stages[after], stages[before])
            if worst is None or kept < worst[0]:
                worst = (kept, f"{before} → {after}")
    return worst[1] if worst is not None else None


def _elsewhere(other: int) -> str | None:
    if other == 0:
        return None
    if other == 1:
        return "1 won deal in another currency is not included"
    return f"{other} won deals in other currencies are not included"


def figures(totals: Totals, plan: Plan) -> dict[str, Kpi]:
    """Every KPI of ``totals`` over ``plan``, in the order of ``KPI_KEYS``."""
    t, cur = totals, plan.currency
    won_here = t.won - t.other_currency_won  # the deals in revenue
    elsewhere = _elsewhere(t.other_currency_won)
    # Sorted once, in place (the order of a total's durations means nothing): the median,
    # the p90 and later readers (the page's follow-up distribution) then sort sorted
    # lists, which costs a pass.
    t.follow_up_s.sort()
    t.cycle_days.sort()
    follow, cycle = t.follow_up_s, t.cycle_days
    contacted, closed = len(follow), len(cycle)
    out: dict[str, Kpi] = {}
    out["leads_generated"] = _kpi("leads_generated", float(t.leads), t.leads, None, "leads", plan)
    out["follow_up_time"] = _kpi(
        "follow_up_time",
        _median(follow),
        contacted,
        t.leads,
        "seconds",
        plan,
        sample=(contacted, "leads"),
        empty="contacted leads",
    ).model_copy(
        update={
            "mean": fmean(follow) if contacted else None,
            "p90": p90(follow) if contacted else None,
        }
    )
    met_or_missed = t.sla_met + t.sla_missed
    out["sla_compliance"] = _rate(
        "sla_compliance",
        t.sla_met,
        met_or_missed,
        "leads",
        "leads whose SLA was met or missed",
        plan,
    )
    out["qualification_rate"] = _rate(
        "qualification_rate", t.qualified, t.leads, "leads", "leads", plan
    )
    out["proposal_rate"] = _rate(
        "proposal_rate", t.proposals, t.qualified, "leads", "qualified leads", plan
    )
    out["win_rate"] = _rate("win_rate", t.won, t.won + t.lost, "deals", "won or lost deals", plan)
    out["close_rate"] = _rate("close_rate", t.won, t.proposals, "deals", "proposals", plan)
    out["sales_cycle_length"] = _kpi(
        "sales_cycle_length",
        _median(cycle),
        closed,
        None,
        "days",
        plan,
        sample=(closed, "deals"),
        empty="won or lost deals",
    ).model_copy(update={"first_contact_days": _median(t.first_contact_days)})
    out["deals_closed"] = _kpi("deals_closed", float(t.won), t.won, None, "deals", plan)
    out["revenue"] = _kpi("revenue", float(t.revenue), won_here, None, cur, plan, note=elsewhere)
    out["average_deal_size"] = _kpi(
        "average_deal_size",
        float(t.revenue / won_here) if won_here else None,
        won_here,
        None,
        cur,
        plan,
        sample=(won_here, "deals"),
        note=elsewhere,
        empty=f"won deals in {cur}",
    )
    per_rep = float(t.revenue * DAYS_PER_QUARTER / (t.reps * plan.days)) if t.reps else None
    out["average_quarterly_revenue_per_rep"] = _kpi(
        "average_quarterly_revenue_per_rep",
        per_rep,
        t.reps,
        None,
        cur,
        plan,
        note=elsewhere,
        empty="leads with an owner",
    )
    out["activity_volume"] = _kpi(
        "activity_volume",
        t.rep_events / t.reps / plan.days if t.reps else None,
        t.rep_events,
        None,
        "events per rep per day",
        plan,
        empty="leads with an owner",
    )
    attained = float(t.revenue / plan.quota) if plan.quota else None
    out["quota_attainment"] = _kpi(
        "quota_attainment",
        attained,
        won_here,
        None,
        "share",
        plan,
        note=_joined(NO_QUOTA if attained is None else None, elsewhere),
    )
    error = float((t.revenue - plan.forecast) / plan.forecast * 100) if plan.forecast else None
    out["forecast_accuracy"] = _kpi(
        "forecast_accuracy",
        error,
        won_here,
        None,
        "percent",
        plan,
        note=_joined(NO_FORECAST if error is None else None, elsewhere),
    )
    stages = dict(zip(FUNNEL_STAGES, (t.leads, t.meetings, t.proposals, t.won), strict=True))
    out["funnel"] = _kpi(
        "funnel",
        None,
        t.leads,
        None,
        "leads",
        plan,
        sample=(t.leads, "leads"),
        note=_nothing("leads") if not t.leads else None,
    ).model_copy(update={"stages": stages, "leak": _leak(stages)})
    return out


__all__ = [
    "CSV_HEADER",
    "DEFINITIONS",
    "FUNNEL_STAGES",
    "GROUP_BYS",
    "KPI_KEYS",
    "PERIOD_GROUP_BYS",
    "Kpi",
    "KpiGroup",
    "KpiQuery",
    "KpiReport",
    "LeadFact",
    "Plan",
    "Totals",
    "csv_rows",
    "figures",
    "forecast_for",
    "p90",
    "period_bounds",
    "quota_for",
    "totals_of",
]
