"""Queries on leads and their timelines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from domain.lead import EventType, Stage
from domain.routing_review import RecordedLead
from store.models import Lead, LeadEvent, utcnow


def event_recorded(session: Session, idempotency_key: str) -> LeadEvent | None:
    return session.scalars(
        select(LeadEvent).where(LeadEvent.idempotency_key == idempotency_key)
    ).first()


def add_event(
    session: Session,
    lead_id: str,
    type_: EventType,
    *,
    stage: Stage | None = None,
    data: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    occurred_at: datetime | None = None,
) -> LeadEvent:
    event = LeadEvent(
        lead_id=lead_id,
        type=type_.value,
        stage=stage.value if stage else None,
        data=data or {},
        idempotency_key=idempotency_key,
        occurred_at=occurred_at or utcnow(),
    )
    session.add(event)
    return event


def add_event_once(
    session: Session,
    lead_id: str,
    type_: EventType,
    *,
    idempotency_key: str,
    stage: Stage | None = None,
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> bool:
    """Record the event unless one with this key already is; whether it was added."""
    if event_recorded(session, idempotency_key) is not None:
        return False
    add_event(
        session,
        lead_id,
        type_,
        stage=stage,
        data=data,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
    )
    return True


def get_lead(session: Session, lead_id: str) -> Lead | None:
    return session.get(Lead, lead_id)


def latest_event(session: Session, lead_id: str, type_: EventType) -> LeadEvent | None:
    return session.scalars(
        select(LeadEvent)
        .where(LeadEvent.lead_id == lead_id, LeadEvent.type == type_.value)
        .order_by(LeadEvent.id.desc())
        .limit(1)
    ).first()


def count_events(session: Session, lead_id: str, type_: EventType) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(LeadEvent)
            .where(LeadEvent.lead_id == lead_id, LeadEvent.type == type_.value)
        )
        or 0
    )


def lead_events(session: Session, lead_id: str, limit: int = 500) -> list[LeadEvent]:
    return list(
        session.scalars(
            select(LeadEvent)
            .where(LeadEvent.lead_id == lead_id)
            .order_by(LeadEvent.id)
            .limit(limit)
        )
    )


def count_routed(session: Session) -> int:
    return (
        session.scalar(select(func.count()).select_from(Lead).where(Lead.owner_rep_id.is_not(None)))
        or 0
    )


def speed_to_lead_histogram(session: Session, bounds_ms: list[int]) -> tuple[list[int], int, int]:
    """Cumulative counts of notified leads at or under each bound, the total count and the
    sum of milliseconds, in one pass."""
    column = Lead.speed_to_lead_ms
    buckets = [func.coalesce(func.sum(case((column <= b, 1), else_=0)), 0) for b in bounds_ms]
    row = session.execute(
        select(*buckets, func.count(column), func.coalesce(func.sum(column), 0)).where(
            column.is_not(None)
        )
    ).one()
    values = [int(v) for v in row]
    return values[: len(bounds_ms)], values[-2], values[-1]


# ------------------------------------------------------------ recorded routing decisions

_DECIDED_AT = func.coalesce(Lead.assigned_at, Lead.received_at)


def routed_leads(
    session: Session, *, since: datetime | None = None, limit: int | None = None
) -> list[RecordedLead]:
    """Leads with a recorded routing decision, oldest first: those decided since
    ``since``, or the latest ``limit``. A lead's decision time is when it was assigned,
    else when it was received."""
    query = select(Lead.id, Lead.routing, Lead.assigned_at, Lead.received_at).where(
        Lead.routing.is_not(None)
    )
    if since is not None:
        query = query.where(_DECIDED_AT >= since)
    rows = session.execute(query.order_by(_DECIDED_AT.desc(), Lead.id.desc()).limit(limit))
    out = []
    for lead_id, routing, assigned_at, received_at in rows:
        decision = routing.get("decision") if isinstance(routing, dict) else None
        if isinstance(decision, dict):
            facts = routing.get("facts")
            facts = facts if isinstance(facts, dict) else {}
            out.append(RecordedLead(lead_id, assigned_at or received_at, decision, facts))
    out.reverse()
    return out
