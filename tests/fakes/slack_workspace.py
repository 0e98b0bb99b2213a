"""What the fake Slack holds: one workspace's users, channels (public ones and the bot's
direct-message conversations), the messages in them, ephemeral messages, views, the
``trigger_id`` s and ``response_url`` s it handed out, and what was posted to those.

IDs look like Slack's: ``T…`` team, ``U…`` users, ``C…`` channels, ``D…`` direct
messages, ``V…`` views; a message's ``ts`` is ``<seconds>.<microseconds>`` and unique in
the workspace. Every method here is called with ``Workspace.lock`` held."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

TRIGGER_TTL_S = 3.0  # Slack: a trigger_id can be exchanged once, within 3 seconds
RESPONSE_URL_USES = 5  # Slack: a response_url takes up to 5 posts within 30 minutes
RESPONSE_URL_TTL_S = 30 * 60


class SlackError(Exception):
    """An ``{"ok": false, "error": code}`` answer (plus ``extra`` fields)."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


@dataclass
class User:
    id: str
    email: str
    name: str
    tz: str = "UTC"
    deleted: bool = False

    def json(self, team_id: str) -> dict[str, Any]:
        handle = self.email.split("@")[0]
        return {
            "id": self.id,
            "team_id": team_id,
            "name": handle,
            "real_name": self.name,
            "deleted": self.deleted,
            "is_bot": False,
            "tz": self.tz,
            "profile": {"email": self.email, "real_name": self.name, "display_name": handle},
        }


@dataclass
class Channel:
    id: str
    name: str | None  # None for a direct message
    im_user: str | None = None  # the person of a direct message
    bot_member: bool = True
    archived: bool = False
    created: int = field(default_factory=lambda: int(time.time()))

    def json(self) -> dict[str, Any]:
        if self.im_user is not None:
            return {"id": self.id, "is_im": True, "user": self.im_user, "created": self.created}
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_im": False,
            "is_private": False,
            "is_archived": self.archived,
            "is_member": self.bot_member,
            "created": self.created,
        }


@dataclass
class Message:
    """A message as it stands now (``chat.update`` changes ``text`` and ``blocks``)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    user: str
    thread_ts: str | None = None
    edits: int = 0

    def json(self, bot_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "message",
            "text": self.text,
            "user": self.user,
            "bot_id": bot_id,
            "ts": self.ts,
            "blocks": self.blocks,
        }
        if self.thread_ts is not None:
            body["thread_ts"] = self.thread_ts
        return body


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    message_ts: str
    thread_ts: str | None = None


@dataclass
class ResponseUrl:
    """A ``response_url`` handed out in a payload: where it came from and its uses."""

    id: str
    channel: str | None
    user: str | None
    message_ts: str | None
    issued: float
    uses: int = 0


@dataclass
class ResponsePost:
    """One post to a ``response_url``."""

    url_id: str
    response_type: str | None
    replace_original: bool
    delete_original: bool
    text: str | None
    blocks: list[dict[str, Any]] | None
    body: dict[str, Any]


@dataclass
class View:
    id: str
    user: str
    view: dict[str, Any]
    hash: str
    opened_with: str | None = None  # the trigger_id of views.open

    def json(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": team_id,
            "type": self.view.get("type"),
            "title": self.view.get("title"),
            "blocks": self.view.get("blocks", []),
            "callback_id": self.view.get("callback_id", ""),
            "private_metadata": self.view.get("private_metadata", ""),
            "external_id": self.view.get("external_id", ""),
            "state": {"values": {}},
            "hash": self.hash,
            "root_view_id": self.id,
        }


@dataclass
class Trigger:
    user: str
    issued: float
    used: bool = False


class Workspace:
    def __init__(self, *, trigger_ttl_s: float = TRIGGER_TTL_S) -> None:
        self.lock = threading.RLock()
        self.team_id = "T0FAKE0001"
        self.team_domain = "leadflow-fake"
        self.bot_user_id = "U0BOT00001"
        self.bot_id = "B0BOT00001"
        self.trigger_ttl_s = trigger_ttl_s
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, list[Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.home: dict[str, View] = {}  # user id -> published Home tab
        self.opened: list[View] = []
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.response_posts: list[ResponsePost] = []
        self._counter = itertools.count(1)
        self._last_ts = 0.0

    # -- ids ---------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}0{next(self._counter):08X}"

    def new_ts(self) -> str:
        """A message ts: the time in microseconds, strictly increasing."""
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    # -- people and conversations --------------------------------------------------------

    def add_user(self, email: str, name: str, user_id: str | None = None) -> str:
        user = User(id=user_id or self.new_id("U"), email=email, name=name)
        self.users[user.id] = user
        return user.id

    def user_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u.email.lower() == wanted), None)

    def add_channel(self, name: str, bot_member: bool) -> str:
        channel = Channel(id=self.new_id("C"), name=name.lstrip("#"), bot_member=bot_member)
        self.channels[channel.id] = channel
        self.messages[channel.id] = []
        return channel.id

    def dm_with(self, user_id: str) -> Channel:
        """The bot's direct-message conversation with ``user_id`` (one per person)."""
        for channel in self.channels.values():
            if channel.im_user == user_id:
                return channel
        channel = Channel(id=self.new_id("D"), name=None, im_user=user_id)
        self.channels[channel.id] = channel
        self.messages[channel.id] = []
        return channel

    def find_dm(self, user_id: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.im_user == user_id), None)

    def channel(self, ref: str, *, by_name: bool = True, by_user: bool = False) -> Channel:
        """The channel ``ref`` names: an id, or (``by_name``) a name with or without
        ``#``, or (``by_user``) a user id meaning the bot's DM with them."""
        if ref in self.channels:
            return self.channels[ref]
        if by_user and ref in self.users:
            return self.dm_with(ref)
        if by_name:
            name = ref.lstrip("#")
            for channel in self.channels.values():
                if channel.name == name:
                    return channel
        raise SlackError("channel_not_found")

    def message(self, channel_id: str, ts: str) -> Message | None:
        return next((m for m in self.messages.get(channel_id, []) if m.ts == ts), None)

    # -- interactivity -----------------------------------------------------------------

    def issue_trigger(self, user: str, age_s: float = 0.0) -> str:
        trigger_id = f"{next(self._counter)}.{int(time.time())}.{secrets.token_hex(16)}"
        self.triggers[trigger_id] = Trigger(user=user, issued=time.monotonic() - age_s)
        return trigger_id

    def take_trigger(self, trigger_id: str) -> Trigger:
        """Exchange ``trigger_id``: valid once, within ``trigger_ttl_s`` of its issue."""
        trigger = self.triggers.get(trigger_id)
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued > self.trigger_ttl_s:
            raise SlackError("expired_trigger_id")
        trigger.used = True
        return trigger

    def issue_response_url(
        self, channel: str | None, user: str | None, message_ts: str | None
    ) -> str:
        url_id = secrets.token_urlsafe(12)
        self.response_urls[url_id] = ResponseUrl(
            id=url_id, channel=channel, user=user, message_ts=message_ts, issued=time.monotonic()
        )
        return url_id
