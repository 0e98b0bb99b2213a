"""Counts shown on the admin dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Lead


@dataclass(frozen=True)
class LeadCounts:
    received_since: int
    needing_attention: int


def lead_counts(session: Session, since: datetime) -> LeadCounts:
    """Leads received since ``since``, and all leads flagged as needing attention."""
    received = session.scalar(
        select(func.count()).select_from(Lead).where(Lead.received_at >= since)
    )
    attention = session.scalar(
        select(func.count()).select_from(Lead).where(Lead.needs_attention.is_(True))
    )
    return LeadCounts(int(received or 0), int(attention or 0))
