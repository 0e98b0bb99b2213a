"""Sending messages to reps, managers and the team's wins channel. Every message is first
a row of the inbox table shown at ``/inbox`` (``inbox_row``); the offline notifier stops
there (plus a log line), the Slack notifier (``bots/slack_notifier.py``) then posts it to
Slack."""

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
    # Slack: post in this channel (a pool's) rather than the recipient's direct message;
    # the inbox row stays the recipient's.
    channel: str | None = None


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

    def announce(self, message: Message, idempotency_key: str, thread_of: str | None = None) -> int:
        """Post ``message`` to the team's wins channel once per ``idempotency_key``;
        returns the post's id. ``thread_of``: the idempotency key of an earlier
        announcement this one replies to, in its thread."""
        ...


def rep_id_by_email(db: Database, email: str) -> int | None:
    """The rep with this email (any case, outer spaces ignored), if any."""
    with db.read() as session:
        return session.scalars(
            select(Rep.id).where(func.lower(Rep.email) == normalize_email(email))
        ).first()


def inbox_row(
    db: Database,
    message: Message,
    idempotency_key: str,
    rep_id: int | None,
    recipient: str,
    *,
    thread_of: str | None = None,
) -> tuple[int, bool]:
    """The inbox row of ``message`` for ``recipient`` (an email, or a channel for
    announcements), written once per ``idempotency_key``: its id, and whether this call
    wrote it."""
    try:
        with db.session() as session:
            existing = notification_by_key(session, idempotency_key)
            if existing is not None:
                return existing.id, False
            row = Notification(
                idempotency_key=idempotency_key,
                rep_id=rep_id,
                recipient=recipient,
                lead_id=message.lead_id,
                kind=message.kind,
                text=message.text,
                blocks={"blocks": message.blocks},
                thread_of=thread_of,
            )
            session.add(row)
            session.flush()
            return row.id, True
    except IntegrityError:
        # Another try of the same step wrote it first.
        with db.session() as session:
            found = notification_by_key(session, idempotency_key)
            if found is None:
                raise
            return found.id, False


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
        rep_id = rep_id_by_email(self._db, email)
        return self._deliver(message, idempotency_key, rep_id, email, name)

    def announce(self, message: Message, idempotency_key: str, thread_of: str | None = None) -> int:
        channel = self._wins_channel
        return self._deliver(message, idempotency_key, None, channel, channel, thread_of)

    def _deliver(
        self,
        message: Message,
        idempotency_key: str,
        rep_id: int | None,
        recipient: str,
        to: str,
        thread_of: str | None = None,
    ) -> int:
        """The inbox row of ``message`` for ``recipient`` (``to`` names them in the log)."""
        notification_id, written = inbox_row(
            self._db, message, idempotency_key, rep_id, recipient, thread_of=thread_of
        )
        if not written:
            return notification_id
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
