"""The offline notifier's inbox."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from store.models import Notification


def notification_by_key(session: Session, idempotency_key: str) -> Notification | None:
    return session.scalars(
        select(Notification).where(Notification.idempotency_key == idempotency_key)
    ).first()


def recent_notifications(
    session: Session, rep_id: int | None = None, limit: int = 100
) -> list[Notification]:
    query = select(Notification).options(joinedload(Notification.rep))
    if rep_id is not None:
        query = query.where(Notification.rep_id == rep_id)
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))
