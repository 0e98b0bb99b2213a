"""A period's lifecycle events as leaderboard activities (``domain.leaderboard``): each
event of a counted kind, credited to the lead's owner."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.leaderboard import POINTS, Activity
from store.models import Lead, LeadEvent, Rep


def activities(session: Session, start: datetime, end: datetime) -> list[Activity]:
    rows = session.execute(
        select(LeadEvent, Rep.email, Rep.name)
        .join(Lead, Lead.id == LeadEvent.lead_id)
        .join(Rep, Rep.id == Lead.owner_rep_id)
        .where(
            LeadEvent.type.in_(list(POINTS)),
            LeadEvent.occurred_at >= start,
            LeadEvent.occurred_at < end,
        )
    ).all()
    contacted_leads = [event.lead_id for event, _, _ in rows if event.type == "contacted"]
    assigned = _first_assigned(session, contacted_leads)
    out = []
    for event, email, name in rows:
        follow_up = None
        if event.type == "contacted" and event.lead_id in assigned:
            follow_up = max(0.0, (event.occurred_at - assigned[event.lead_id]).total_seconds())
        out.append(
            Activity(
                rep_email=email,
                rep_name=name,
                kind=event.type,
                at=event.occurred_at,
                amount=_amount(event.data.get("amount")) if event.type == "won" else None,
                currency=event.data.get("currency") if event.type == "won" else None,
                follow_up_s=follow_up,
            )
        )
    return out


def _first_assigned(session: Session, lead_ids: list[str]) -> dict[str, datetime]:
    if not lead_ids:
        return {}
    found: dict[str, datetime] = {}
    rows = session.execute(
        select(LeadEvent.lead_id, LeadEvent.occurred_at)
        .where(LeadEvent.lead_id.in_(lead_ids), LeadEvent.type == "assigned")
        .order_by(LeadEvent.occurred_at)
    )
    for lead_id, at in rows:
        found.setdefault(lead_id, at)
    return found


def _amount(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None
