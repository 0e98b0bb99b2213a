"""Queries on leads and their timelines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, update
from sqlalchemy.orm import Session, joinedload

from domain.kpi_facts import MILESTONES, REP_EVENTS, currency_of, minor_units
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
    _apply_kpi_facts(session, lead_id, type_.value, event.occurred_at, data or {})
    return event


def _apply_kpi_facts(
    session: Session, lead_id: str, type_: str, at: datetime, data: dict[str, Any]
) -> None:
    """Keep the lead's KPI facts (``domain.kpi_facts``) in the event's transaction: the
    first time of a milestone, the won amount, the count of reps' events. One UPDATE,
    only for the events that matter to the KPIs."""
    column = MILESTONES.get(type_)
    if column is None and type_ not in REP_EVENTS:
        return
    values: dict[str, Any] = {}
    if column is not None:
        values[column] = func.coalesce(getattr(Lead, column), at)
        since_created = seconds_between(session, Lead.created_at, literal(at, Lead.created_at.type))
        if type_ == "contacted":
            values["follow_up_s"] = func.coalesce(Lead.follow_up_s, since_created)
        elif type_ in ("won", "lost"):
            values["cycle_s"] = func.coalesce(Lead.cycle_s, since_created)
    if type_ == "won":
        amount, currency = minor_units(data.get("amount")), currency_of(data.get("currency"))
        # The first win's amount stays (a repeated win does not change the figures).
        values["won_amount_minor"] = case(
            (Lead.won_at.is_(None), amount), else_=Lead.won_amount_minor
        )
        values["currency"] = case((Lead.won_at.is_(None), currency), else_=Lead.currency)
    if type_ in REP_EVENTS:
        values["rep_events"] = Lead.rep_events + 1
    session.execute(
        update(Lead)
        .where(Lead.id == lead_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )


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


def seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[float]:
    """Seconds from ``start`` to ``end`` in SQL, on either backend (NULL when either is)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[float], func.extract("epoch", end - start))
    return cast(ColumnElement[float], (func.julianday(end) - func.julianday(start)) * 86400.0)


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


# ------------------------------------------------------------------------ the lead list

SEARCHED = ("first_name", "last_name", "company")  # with the email, what a search reads


@dataclass(frozen=True)
class LeadQuery:
    """Which leads a list shows. ``text``: every word in the email, first or last name or
    company; ``owner``: a rep's id, or 0 for leads nobody owns; ``source``: exactly."""

    text: str = ""
    stage: str | None = None
    owner: int | None = None
    source: str | None = None
    needs_attention: bool = False
    newest_first: bool = True


def _where(query: LeadQuery) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    for word in query.text.split()[:10]:
        columns = [Lead.email, *(Lead.data[name].as_string() for name in SEARCHED)]
        found.append(or_(*(c.icontains(word, autoescape=True) for c in columns)))
    if query.stage:
        found.append(Lead.stage == query.stage)
    if query.owner == 0:
        found.append(Lead.owner_rep_id.is_(None))
    elif query.owner is not None:
        found.append(Lead.owner_rep_id == query.owner)
    if query.source:
        found.append(Lead.data["source"].as_string() == query.source)
    if query.needs_attention:
        found.append(Lead.needs_attention.is_(True))
    return found


def search_leads(
    session: Session, query: LeadQuery, *, offset: int = 0, limit: int = 50
) -> tuple[list[Lead], int]:
    """One page of the leads ``query`` selects, by received time, with their owners; and
    how many it selects in all."""
    conditions = _where(query)
    where = and_(*conditions) if conditions else None
    order = Lead.received_at.desc() if query.newest_first else Lead.received_at.asc()
    select_leads = select(Lead).options(joinedload(Lead.owner))
    count = select(func.count()).select_from(Lead)
    if where is not None:
        select_leads, count = select_leads.where(where), count.where(where)
    rows = session.scalars(select_leads.order_by(order, Lead.id).offset(offset).limit(limit))
    return list(rows), int(session.scalar(count) or 0)


def leads_by_id(session: Session, lead_ids: list[str]) -> dict[str, Lead]:
    """The stored leads of ``lead_ids`` (missing ones left out)."""
    if not lead_ids:
        return {}
    return {lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_(lead_ids)))}


def lead_sources(session: Session, limit: int = 200) -> list[str]:
    """The sources leads gave, alphabetically (for a filter)."""
    column = Lead.data["source"].as_string()
    rows = session.scalars(
        select(column).where(column.is_not(None)).distinct().order_by(column).limit(limit)
    )
    return [value for value in rows if value]
