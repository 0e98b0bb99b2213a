"""The Slack notifier: every message is first an inbox row (as the offline notifier
writes it, so nothing is lost whatever Slack does), then a Slack message: a direct
message to a rep or a person (found by their Slack user id, else by email), or a post in
the team's wins channel.

Once per idempotency key: the row remembers where the message went (``channel``, ``ts``),
so a repeated call updates the Slack message instead of posting it again. Slack's
failures are sorted by ``bots/slack_delivery.py``: a transient one raises a retryable
``ApplicationError`` (Temporal is the only retry layer, slack-sdk's retries are off) until
the 5th, after which the message is diverted; a permanent one diverts it at once. A
diverted message stays in the inbox with Slack's error code and plain words
(``delivery="diverted"``, ``delivery_error``), and the call returns normally.

Sync, like slack-sdk's ``WebClient``: it runs in sync activities on the worker's thread
pool."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select, update

from bots.notifier import Message, inbox_row
from bots.slack_delivery import SlackFailure, Undeliverable, classify, escape
from domain.lead import Owner, normalize_email
from settings import Settings
from store.db import Database
from store.inbox import notification_by_key
from store.models import Notification, Rep

log = logging.getLogger("leadflow.slack")

# A transient failure diverts the message from this many failed attempts on.
MAX_ATTEMPTS = 5
API_TIMEOUT_S = 10


@dataclass(frozen=True)
class _Person:
    email: str
    slack_user_id: str | None


@dataclass(frozen=True)
class _Channel:
    name: str  # "#wins" or an id
    thread_of: str | None


@dataclass(frozen=True)
class _Row:
    id: int
    channel: str | None
    ts: str | None
    delivery: str


class SlackNotifier:
    """``Notifier`` over Slack's Web API through ``client``; announcements go to
    ``wins_channel`` (``#name`` or an id)."""

    def __init__(self, db: Database, client: WebClient, wins_channel: str) -> None:
        self._db = db
        self._client = client
        self._wins_channel = wins_channel
        self._user_ids: dict[str, str] = {}  # email -> Slack user id, found by lookup
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> SlackNotifier:
        """A notifier for the bot token and API of ``settings``, with slack-sdk's retry
        handlers off: Temporal retries the activity instead."""
        if settings.slack_bot_token is None:
            raise ValueError("LEADFLOW_SLACK_BOT_TOKEN is not set")
        base_url = settings.slack_api_url
        client = WebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=base_url if base_url.endswith("/") else f"{base_url}/",
            timeout=API_TIMEOUT_S,
            retry_handlers=[],
        )
        return cls(db, client, settings.slack_wins_channel)

    # -- the Notifier protocol -----------------------------------------------------------

    def notify(self, owner: Owner, message: Message, idempotency_key: str) -> int:
        row_id, written = inbox_row(self._db, message, idempotency_key, owner.rep_id, owner.email)
        target = (
            _Channel(message.channel, None)
            if message.channel
            else _Person(owner.email, owner.slack_user_id)
        )
        self._deliver(row_id, written, message, target)
        return row_id

    def notify_person(
        self,
        email: str,
        name: str,  # noqa: ARG002 -- the protocol's; Slack finds people by email
        message: Message,
        idempotency_key: str,
    ) -> int:
        rep_id, slack_user_id = self._rep(email)
        row_id, written = inbox_row(self._db, message, idempotency_key, rep_id, email)
        self._deliver(row_id, written, message, _Person(email, slack_user_id))
        return row_id

    def announce(self, message: Message, idempotency_key: str, thread_of: str | None = None) -> int:
        channel = self._wins_channel
        row_id, written = inbox_row(
            self._db, message, idempotency_key, None, channel, thread_of=thread_of
        )
        self._deliver(row_id, written, message, _Channel(channel, thread_of))
        return row_id

    # -- beyond the protocol -------------------------------------------------------------

    def update_message(self, idempotency_key: str, message: Message) -> None:
        """Make the message sent under ``idempotency_key`` say ``message`` now: its
        inbox row, and its Slack message when it was delivered there (a lead's message
        kept true to its stage). Nothing happens for an unknown key."""
        with self._db.session() as session:
            row = notification_by_key(session, idempotency_key)
            if row is None:
                return
            row.text, row.blocks = message.text, {"blocks": message.blocks}
            state = _Row(row.id, row.channel, row.ts, row.delivery)
        if state.delivery == "slack" and state.channel and state.ts:
            self._attempt(state, message, lambda: self._update(state, message), updating=True)

    # -- delivery --------------------------------------------------------------------------

    def _deliver(
        self, row_id: int, written: bool, message: Message, to: _Person | _Channel
    ) -> None:
        state = self._row(row_id, None if written else message)
        if state.delivery == "diverted":
            return
        if state.channel and state.ts:  # a repeated call: bring the message up to date
            self._attempt(state, message, lambda: self._update(state, message), updating=True)
        else:
            self._attempt(state, message, lambda: self._post(state, message, to), updating=False)

    def _attempt(
        self, state: _Row, message: Message, call: Callable[[], None], *, updating: bool
    ) -> None:
        """Run ``call``; on a Slack failure retry (transient, before the 5th attempt)
        or keep the message in the inbox with the reason."""
        try:
            call()
        except Exception as err:
            failure = classify(err)
            if failure is None:
                raise
            if failure.transient:
                attempts = self._count_attempt(state.id)
                if attempts < MAX_ATTEMPTS:
                    log.info(
                        "%s message %s: Slack failed (%s), attempt %s",
                        message.kind,
                        state.id,
                        failure.code,
                        attempts,
                    )
                    method = "chat.update" if updating else "chat.postMessage"
                    raise failure.application_error(method) from None
                failure = SlackFailure(
                    failure.code, f"{failure.words}; gave up after {attempts} attempts", False
                )
            self._give_up(state, message, failure, updating=updating)

    def _post(self, state: _Row, message: Message, to: _Person | _Channel) -> None:
        thread_ts: str | None = None
        if isinstance(to, _Person):
            channel = state.channel or self._open_dm(state.id, to)
        else:
            channel, thread_ts = self._thread(to)
        response = self._client.chat_postMessage(
            channel=channel,
            text=escape(message.text),
            blocks=message.blocks or None,
            thread_ts=thread_ts,
        )
        self._save(
            state.id,
            channel=str(response["channel"]),
            ts=str(response["ts"]),
            delivery="slack",
            delivery_error=None,
        )
        log.info(
            "%s message %s posted to Slack",
            message.kind,
            state.id,
            extra={"lead_id": message.lead_id, "kind": message.kind},
        )

    def _update(self, state: _Row, message: Message) -> None:
        # Always send blocks: without them Slack keeps the old ones.
        self._client.chat_update(
            channel=state.channel or "",
            ts=state.ts or "",
            text=escape(message.text),
            blocks=message.blocks,
        )
        self._save(state.id, delivery_error=None)

    def _open_dm(self, row_id: int, person: _Person) -> str:
        """The ``D…`` id of the bot's direct message with ``person``, stored on the row
        so that a retry posts to it without opening it again."""
        user_id = person.slack_user_id or self._lookup(person.email)
        response = self._client.conversations_open(users=user_id)
        channel = str(response["channel"]["id"])
        self._save(row_id, channel=channel)
        return channel

    def _lookup(self, email: str) -> str:
        key = normalize_email(email)
        with self._lock:
            known = self._user_ids.get(key)
        if known is not None:
            return known
        try:
            response = self._client.users_lookupByEmail(email=key)
        except SlackApiError as err:
            if err.response.get("error") == "users_not_found":
                failure = SlackFailure("users_not_found", f"no Slack user for {email}", False)
                raise Undeliverable(failure) from None
            raise
        user_id = str(response["user"]["id"])
        with self._lock:
            self._user_ids[key] = user_id
        return user_id

    def _thread(self, to: _Channel) -> tuple[str, str | None]:
        """Where an announcement goes: the thread of the message ``to.thread_of`` when
        that one reached Slack, the channel itself otherwise."""
        if to.thread_of is not None:
            with self._db.read() as session:
                parent = notification_by_key(session, to.thread_of)
                if parent is not None and parent.channel and parent.ts:
                    return parent.channel, parent.ts
        return to.name, None

    def _give_up(
        self, state: _Row, message: Message, failure: SlackFailure, *, updating: bool
    ) -> None:
        """Keep the message in the inbox with the reason Slack gave. A failed update
        leaves the message delivered (its first version is in Slack)."""
        if updating:
            self._save(state.id, delivery_error=f"update failed: {failure.shown}")
        else:
            self._save(state.id, delivery="diverted", delivery_error=failure.shown)
        # Slack's code only: the message (a lead's details) stays out of the log.
        log.warning(
            "%s message %s %s Slack (%s): kept in the inbox",
            message.kind,
            state.id,
            "not updated in" if updating else "not delivered to",
            failure.code,
            extra={"lead_id": message.lead_id, "kind": message.kind, "slack_error": failure.code},
        )

    # -- the inbox row -------------------------------------------------------------------

    def _row(self, row_id: int, refresh: Message | None) -> _Row:
        """The row's delivery state; with ``refresh``, its text and blocks become that
        message's first (a repeated call sends the message as it is now)."""
        with self._db.session() as session:
            row = session.get_one(Notification, row_id)
            if refresh is not None and row.delivery != "diverted":
                row.text, row.blocks = refresh.text, {"blocks": refresh.blocks}
            return _Row(row.id, row.channel, row.ts, row.delivery)

    def _save(self, row_id: int, **values: Any) -> None:
        with self._db.session() as session:
            row = session.get_one(Notification, row_id)
            for name, value in values.items():
                setattr(row, name, value)

    def _count_attempt(self, row_id: int) -> int:
        """One more failed attempt; how many there have been."""
        with self._db.session() as session:
            session.execute(
                update(Notification)
                .where(Notification.id == row_id)
                .values(attempts=Notification.attempts + 1)
            )
            return session.scalars(
                select(Notification.attempts).where(Notification.id == row_id)
            ).one()

    def _rep(self, email: str) -> tuple[int | None, str | None]:
        """The rep with this email, if any: their id and Slack user id."""
        with self._db.read() as session:
            found = session.execute(
                select(Rep.id, Rep.slack_user_id).where(
                    func.lower(Rep.email) == normalize_email(email)
                )
            ).first()
        return (found[0], found[1]) if found is not None else (None, None)
