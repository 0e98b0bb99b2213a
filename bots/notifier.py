"""Sending messages to reps, managers and the team's wins channel. The offline notifier
writes to the log and to the inbox table shown at ``/inbox``; a Slack notifier will
implement the same protocol."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from domain.lead import Owner, normalize_email
from store.db import Database
from store.inbox import notification_by_key
from store.models import Notification, Rep

log = logging.getLogger("leadflow.notifier")

# Where announcements go when no channel is configured.
WINS_CHANNEL = "#wins"


class Message(BaseModel):
    kind: str
    text: str
    blocks: list[dict[str, Any]]
    lead_id: str | None = None


class Notifier(Protocol):
    """Every delivery happens once per ``idempotency_key``: a repeated call delivers
    nothing and returns the first delivery's id."""

    def notify(self, owner: Owner, message: Message, idempotency_key: str) -> int:
        """Deliver ``message`` to ``owner`` once per ``idempotency_key``; returns the id
        of the delivered message (the same id on a repeated call)."""
        ...

    def notify_person(self, email: str, name: str, message: Message, idempotency_key: str) -> int:
        """Deliver ``message`` to a person who need not be a rep (a pool's manager), found
        by ``email``; once per ``idempotency_key``, returning the delivery's id."""
        ...

    def announce(self, message: Message, idempotency_key: str) -> int:
        """Post ``message`` to the team's wins channel once per ``idempotency_key``;
        returns the post's id."""
        ...


class OfflineNotifier:
    """Log plus inbox rows: needs no Slack workspace. A row's ``recipient`` is the email
    it went to, or the channel's name for announcements."""

    def __init__(self, db: Database, wins_channel: str = WINS_CHANNEL) -> None:
        self._db = db
        self._wins_channel = wins_channel

    def notify(self, owner: Owner, message: Message, idempotency_key: str) -> int:
        return self._deliver(message, idempotency_key, owner.rep_id, owner.email, owner.name)

    def notify_person(self, email: str, name: str, message: Message, idempotency_key: str) -> int:
        # A manager who is also a rep sees the message in their own inbox.
        with self._db.read() as session:
            rep_id = session.scalars(
                select(Rep.id).where(func.lower(Rep.email) == normalize_email(email))
            ).first()
        return self._deliver(message, idempotency_key, rep_id, email, name)

    def announce(self, message: Message, idempotency_key: str) -> int:
        channel = self._wins_channel
        return self._deliver(message, idempotency_key, None, channel, channel)

    def _deliver(
        self, message: Message, idempotency_key: str, rep_id: int | None, recipient: str, to: str
    ) -> int:
        """The inbox row of ``message`` for ``recipient`` (``to`` names them in the log)."""
        try:
            with self._db.session() as session:
                existing = notification_by_key(session, idempotency_key)
                if existing is not None:
                    return existing.id
                row = Notification(
                    idempotency_key=idempotency_key,
                    rep_id=rep_id,
                    recipient=recipient,
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
            "%s message %s delivered to %s in the inbox",
            message.kind,
            notification_id,
            to,
            extra={"lead_id": message.lead_id, "rep_id": rep_id, "kind": message.kind},
        )
        return notification_id
