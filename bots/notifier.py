"""Sending messages to reps. The offline notifier writes to the log and to the inbox table
shown at ``/inbox``; a Slack notifier will implement the same protocol."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from domain.lead import Owner
from store.db import Database
from store.inbox import notification_by_key
from store.models import Notification

log = logging.getLogger("leadflow.notifier")


class Message(BaseModel):
    kind: str
    text: str
    blocks: list[dict[str, Any]]
    lead_id: str | None = None


class Notifier(Protocol):
    def notify(self, owner: Owner, message: Message, idempotency_key: str) -> int:
        """Deliver ``message`` to ``owner`` once per ``idempotency_key``; returns the id
        of the delivered message (the same id on a repeated call)."""
        ...


class OfflineNotifier:
    """Log plus inbox rows: needs no Slack workspace."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def notify(self, owner: Owner, message: Message, idempotency_key: str) -> int:
        try:
            with self._db.session() as session:
                existing = notification_by_key(session, idempotency_key)
                if existing is not None:
                    return existing.id
                row = Notification(
                    idempotency_key=idempotency_key,
                    rep_id=owner.rep_id,
                    lead_id=message.lead_id,
                    kind=message.kind,
                    text=message.text,
                    blocks={"blocks": message.blocks},
                )
                session.add(row)
                session.flush()
                notification_id = row.id
        except IntegrityError:
            with self._db.session() as session:
                found = notification_by_key(session, idempotency_key)
                if found is None:
                    raise
                return found.id
        # The message text holds the lead's contact details: it goes to the inbox, not
        # the log.
        log.info(
            "%s message %s delivered to %s's inbox",
            message.kind,
            notification_id,
            owner.name,
            extra={"lead_id": message.lead_id, "rep_id": owner.rep_id, "kind": message.kind},
        )
        return notification_id
