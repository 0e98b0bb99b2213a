"""Reps away by their own word (``/leadflow away until …``, ``/leadflow back``), which
routing reads at every decision (``RoutingSnapshot.away_until``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import RepAvailability, utcnow


def set_away(session: Session, email: str, until: datetime, by: str) -> None:
    row = session.get(RepAvailability, email)
    if row is None:
        session.add(RepAvailability(email=email, away_until=until, set_by=by))
    else:
        row.away_until, row.set_by, row.set_at = until, by, utcnow()


def set_back(session: Session, email: str) -> bool:
    """Whether the rep had said they were away."""
    row = session.get(RepAvailability, email)
    if row is None:
        return False
    session.delete(row)
    return True


def away_until(session: Session, now: datetime) -> dict[str, datetime]:
    """The reps away at ``now``, until when."""
    rows = session.scalars(select(RepAvailability).where(RepAvailability.away_until > now))
    return {row.email: row.away_until for row in rows}


def away_of(session: Session, email: str, now: datetime) -> datetime | None:
    row = session.get(RepAvailability, email)
    return row.away_until if row is not None and row.away_until > now else None
