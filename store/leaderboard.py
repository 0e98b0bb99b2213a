"""What each rep did in a period, for the leaderboard (``domain.leaderboard``).

``tallies`` counts, per rep, the leads that first reached each milestone in the period
(contacted, meeting booked, qualified, proposal sent, won), from the leads' KPI facts
(``domain.kpi_facts``): each whole local week inside the period that is not dirty from
the leaderboard's weekly rollup (``store.kpi_rollup``, ``kpi_rep_weeks``), the rest from
the milestones' partial indexes (``store.kpi_counts.milestone_cells``); a year on the KPI
page reads some thousand rows, not the leads. Each lead earns each milestone's points
once, credited to its current owner; a contact's follow-up counts from when the lead
first had an owner. ``activities`` lists the events themselves (every one, repeats
included), for tests and audits of those figures."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from domain.leaderboard import POINTS, Activity, RepTally
from store import kpi_rollup
from store import leads as lead_store
from store.kpi_counts import (
    MILESTONE_COLUMNS,
    MilestoneCell,
    MilestoneKey,
    collection_paused,
    milestone_cells,
)
from store.models import Lead, LeadEvent, Rep

COLUMNS = MILESTONE_COLUMNS  # milestone → the lead's column holding its first time


def tallies(session: Session, start: datetime, end: datetime) -> list[RepTally]:
    """Per rep, what their leads first reached in [start, end)."""
    names = {
        int(rep_id): (email, name)
        for rep_id, email, name in session.execute(select(Rep.id, Rep.email, Rep.name))
    }
    found: dict[int, RepTally] = {}
    minor: dict[tuple[int, str | None], int] = {}
    with collection_paused():
        cells = _cells(session, start, end)
    for (rep_id, kind, currency), cell in sorted(
        cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")
    ):
        if not (cell.count or cell.follow_ups or cell.amount_minor is not None):
            continue
        if rep_id not in found:
            email, name = names[rep_id]
            found[rep_id] = RepTally(rep_email=email, rep_name=name)
        tally = found[rep_id]
        if cell.count:
            tally.counts[kind] = tally.counts.get(kind, 0) + cell.count
        if cell.amount_minor is not None:
            minor[(rep_id, currency)] = cell.amount_minor
        tally.follow_ups += cell.follow_ups
    for (rep_id, currency), amount in minor.items():
        money = found[rep_id].revenue
        code = (currency or "USD").upper()
        money[code] = money.get(code, Decimal(0)) + Decimal(amount) / 100
    return list(found.values())


def _cells(session: Session, start: datetime, end: datetime) -> dict[MilestoneKey, MilestoneCell]:
    """The period's milestones per owner, milestone and currency: whole clean local weeks
    from the rollup, the rest of [start, end) from the leads."""
    weeks: list[date] = []  # the Mondays of the weeks read from the rollup
    edges: list[tuple[datetime, datetime]] = []  # the rest, read from the leads
    at = start
    rollup = kpi_rollup.stored_state(session)
    if rollup is not None:
        tz = rollup.tz
        week = kpi_rollup.monday(start.astimezone(tz).date())
        while (after := kpi_rollup.midnight(week + timedelta(days=7), tz)) <= end:
            first = kpi_rollup.midnight(week, tz)
            if first >= start and rollup.clean(week):
                weeks.append(week)
                if at < first:
                    edges.append((at, first))
                at = after
            week += timedelta(days=7)
    if at < end:
        edges.append((at, end))
    out: dict[MilestoneKey, MilestoneCell] = {}
    parts = [milestone_cells(session, a, b) for a, b in edges]
    parts.append(kpi_rollup.rep_week_cells(session, weeks))
    for part in parts:
        for key, cell in part.items():
            kpi_rollup.add_milestones(out.setdefault(key, MilestoneCell()), cell)
    return out


def activities(session: Session, start: datetime, end: datetime) -> list[Activity]:
    """The events of ``POINTS``'s kinds that occurred in [start, end), each credited to its
    lead's current owner; a contact with the seconds since the lead first had an owner.

    Read as plain rows (the period may hold a year of events on the KPI page): the
    follow-up is computed by the database, the won amount read only for wins."""
    follow_up = case(
        (
            LeadEvent.type == "contacted",
            lead_store.seconds_between(session, Lead.first_assigned_at, LeadEvent.occurred_at),
        )
    )
    won_data = case((LeadEvent.type == "won", LeadEvent.data))
    rows = session.execute(
        select(LeadEvent.type, Rep.email, Rep.name, follow_up, won_data)
        .join(Lead, Lead.id == LeadEvent.lead_id)
        .join(Rep, Rep.id == Lead.owner_rep_id)
        .where(
            LeadEvent.type.in_(list(POINTS)),
            LeadEvent.occurred_at >= start,
            LeadEvent.occurred_at < end,
        )
    )
    out = []
    for kind, email, name, seconds, data in rows:
        won = data if isinstance(data, dict) else {}
        out.append(
            Activity.model_construct(
                rep_email=email,
                rep_name=name,
                kind=kind,
                at=None,
                amount=_amount(won.get("amount")) if kind == "won" else None,
                currency=won.get("currency") if kind == "won" else None,
                follow_up_s=max(0.0, float(seconds)) if seconds is not None else None,
            )
        )
    return out


def _amount(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None
