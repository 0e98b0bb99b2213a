"""What each rep did in a period, for the leaderboard (``domain.leaderboard``).

``tallies`` counts, per rep, the leads that first reached each milestone in the period
(contacted, meeting booked, qualified, proposal sent, won), from the leads' KPI facts
(``domain.kpi_facts``) and their covering index: a year on the KPI page is one scan of the
leads, not of a million events. Each lead earns each milestone's points once, credited to
its current owner; a contact's follow-up counts from when the lead first had an owner.
``activities`` lists the events themselves (every one, repeats included), for tests and
audits of those figures."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from domain.leaderboard import POINTS, Activity, RepTally
from store import leads as lead_store
from store.models import Lead, LeadEvent, Rep

# Milestone → the lead's column holding the first time it was reached.
COLUMNS = {
    "contacted": Lead.first_contacted_at,
    "meeting_booked": Lead.meeting_at,
    "qualified": Lead.qualified_at,
    "proposal_sent": Lead.proposal_at,
    "won": Lead.won_at,
}


def tallies(session: Session, start: datetime, end: datetime) -> list[RepTally]:
    """Per rep, what their leads first reached in [start, end)."""

    def within(column: Any) -> ColumnElement[bool]:
        return and_(column >= start, column < end)

    conn = session.connection()
    names = {
        int(rep_id): (email, name)
        for rep_id, email, name in conn.execute(select(Rep.id, Rep.email, Rep.name))
    }
    found: dict[int, RepTally] = {}

    def rep(rep_id: int) -> RepTally:
        if rep_id not in found:
            email, name = names[rep_id]
            found[rep_id] = RepTally(rep_email=email, rep_name=name)
        return found[rep_id]

    # One small query per milestone, each a range of its own partial index.
    for kind, column in COLUMNS.items():
        counts = conn.execute(
            select(Lead.owner_rep_id, func.count())
            .where(within(column), Lead.owner_rep_id.is_not(None))
            .group_by(Lead.owner_rep_id)
        )
        for rep_id, n in counts:
            if rep_id is not None and n:
                rep(int(rep_id)).counts[kind] = int(n)
    revenue = conn.execute(
        select(Lead.owner_rep_id, Lead.currency, func.sum(Lead.won_amount_minor))
        .where(Lead.owner_rep_id.is_not(None), within(Lead.won_at))
        .group_by(Lead.owner_rep_id, Lead.currency)
    )
    for rep_id, currency, minor in revenue:
        if minor is not None:
            money = rep(int(rep_id or 0)).revenue
            code = (currency or "USD").upper()
            money[code] = money.get(code, Decimal(0)) + Decimal(int(minor)) / 100
    waited = lead_store.seconds_between(session, Lead.first_assigned_at, Lead.first_contacted_at)
    follow_ups = conn.execute(
        select(Lead.owner_rep_id, waited).where(
            Lead.owner_rep_id.is_not(None),
            Lead.first_assigned_at.is_not(None),
            within(Lead.first_contacted_at),
        )
    )
    for rep_id, seconds in follow_ups:
        rep(int(rep_id or 0)).follow_ups.append(max(0.0, float(seconds)))
    return list(found.values())


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
