"""The leads that need attention: a step of theirs failed for good and waits for a person
(``Lead.needs_attention``), newest failure first, each with the steps that failed.

A lead's failed steps are its ``attention`` entries (``domain.lifecycle.Attention``);
a lead flagged before those were recorded shows the failures on its timeline instead.
Every function works in the caller's session and transaction; none commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from domain.lead import EventType
from domain.lifecycle import Attention
from store.models import Lead, LeadEvent

# Timeline entries of a step that failed for good.
FAILURE_EVENTS = (EventType.step_failed.value, EventType.crm_sync_failed.value)
# The step a failure event names when its data does not (a CRM refusal).
_EVENT_STEP = {EventType.crm_sync_failed.value: "crm"}


@dataclass(frozen=True)
class NeedsAttention:
    """A lead that needs attention, the steps that failed (oldest first) and when the
    latest one did."""

    lead: Lead
    attention: list[Attention]
    failed_at: datetime


def attention_of(raw: object) -> list[Attention]:
    """The stored ``attention`` entries as models; an entry that does not read as one is
    kept with what it has (a failure is never hidden)."""
    if not isinstance(raw, list):
        return []
    out = []
    for entry in raw:
        try:
            out.append(Attention.model_validate(entry))
        except ValidationError:
            data: dict[str, Any] = entry if isinstance(entry, dict) else {}
            at = data.get("at")
            try:
                when = datetime.fromisoformat(at) if isinstance(at, str) else None
            except ValueError:
                when = None
            if when is None:
                continue  # no time to place it at: it is not a failure we can show
            out.append(
                Attention(
                    step=str(data.get("step") or "unknown step"),
                    error=str(data.get("error") or "unknown error"),
                    message=str(data.get("message") or ""),
                    at=when,
                )
            )
    return out


def _from_events(events: list[LeadEvent]) -> list[Attention]:
    return [
        Attention(
            step=str(e.data.get("step") or _EVENT_STEP.get(e.type, e.type)),
            error=str(e.data.get("error") or e.type),
            message=str(e.data.get("message") or ""),
            at=e.occurred_at,
        )
        for e in events
    ]


def lead_attention(session: Session, lead: Lead) -> list[Attention]:
    """What failed for good on ``lead`` (nothing when it does not need attention)."""
    if not lead.needs_attention:
        return []
    stored = attention_of(lead.attention)
    if stored:
        return stored
    return _from_events(_failure_events(session, [lead.id]).get(lead.id, []))


def _failure_events(session: Session, lead_ids: list[str]) -> dict[str, list[LeadEvent]]:
    if not lead_ids:
        return {}
    found: dict[str, list[LeadEvent]] = {}
    rows = session.scalars(
        select(LeadEvent)
        .where(LeadEvent.lead_id.in_(lead_ids), LeadEvent.type.in_(FAILURE_EVENTS))
        .order_by(LeadEvent.id)
    )
    for event in rows:
        found.setdefault(event.lead_id, []).append(event)
    return found


def count_needs_attention(session: Session) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Lead).where(Lead.needs_attention.is_(True)))
        or 0
    )


def needs_attention(
    session: Session, limit: int = 50, offset: int = 0
) -> tuple[list[NeedsAttention], int]:
    """One page of the leads that need attention, newest failure first (by their latest
    failure on the timeline, else their last update), with their owners; and how many
    need attention in all."""
    flagged = select(Lead.id).where(Lead.needs_attention.is_(True))
    latest = (
        select(LeadEvent.lead_id, func.max(LeadEvent.occurred_at).label("at"))
        .where(LeadEvent.type.in_(FAILURE_EVENTS), LeadEvent.lead_id.in_(flagged))
        .group_by(LeadEvent.lead_id)
        .subquery()
    )
    failed_at = func.coalesce(latest.c.at, Lead.updated_at)
    rows = session.execute(
        select(Lead, failed_at)
        .outerjoin(latest, latest.c.lead_id == Lead.id)
        .options(joinedload(Lead.owner))
        .where(Lead.needs_attention.is_(True))
        .order_by(failed_at.desc(), Lead.id)
        .offset(offset)
        .limit(limit)
    ).all()
    leads = [(lead, when) for lead, when in rows]
    stored = {lead.id: attention_of(lead.attention) for lead, _ in leads}
    events = _failure_events(session, [lead_id for lead_id, found in stored.items() if not found])
    page = [
        NeedsAttention(
            lead=lead,
            attention=stored[lead.id] or _from_events(events.get(lead.id, [])),
            failed_at=when,
        )
        for lead, when in leads
    ]
    return page, count_needs_attention(session)
