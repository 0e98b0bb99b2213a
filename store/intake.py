"""The intake's per-lead counters (see ``domain.intake``), claimed atomically."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from domain.intake import Admission, FloodPolicy, IntakeCounts, admit
from store.models import IntakeCounter


def admit_post(session: Session, lead_id: str, policy: FloodPolicy, now: datetime) -> Admission:
    """Decide on one more post for ``lead_id`` and store the counters, in the caller's
    transaction. The row is created if missing and then locked (PostgreSQL: ``FOR UPDATE``;
    SQLite: write transactions hold the database lock), so concurrent posts of one address
    are counted one after the other."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(IntakeCounter)
        .values(lead_id=lead_id, posts=0, window_started_at=now, window_posts=0)
        .on_conflict_do_nothing(index_elements=["lead_id"])
    )
    row = session.scalars(
        select(IntakeCounter).where(IntakeCounter.lead_id == lead_id).with_for_update()
    ).one()
    decision = admit(
        policy,
        IntakeCounts(
            posts=row.posts, window_started_at=row.window_started_at, window_posts=row.window_posts
        ),
        now,
    )
    if decision.allowed:
        row.posts = decision.counts.posts
        row.window_started_at = decision.counts.window_started_at
        row.window_posts = decision.counts.window_posts
    return decision
