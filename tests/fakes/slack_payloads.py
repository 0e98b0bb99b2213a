"""What Slack sends to the app's request URL (``POST /slack/events``), signed as Slack
signs it: ``X-Slack-Signature: v0=<hex>``, the HMAC-SHA256 with the signing secret of
``v0:<timestamp>:<raw body>``, and ``X-Slack-Request-Timestamp: <timestamp>``.

Interactions (``block_actions``, ``view_submission``) are a form with one field,
``payload``, holding JSON; slash commands are a form; events and the ``url_verification``
challenge are JSON. ``trigger_id`` s and ``response_url`` s come from the fake
(``FakeSlack.issue_trigger`` / ``issue_response_url``), so ``views.open`` and posts to the
``response_url`` work as they do with Slack. Every builder returns ``(body, headers)``;
``secret=`` signs with another secret and ``timestamp=`` (epoch seconds) with another time,
for the negative tests."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack_api import FakeSlack

Signed = tuple[bytes, dict[str, str]]
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
VERIFICATION_TOKEN = "fake-verification-token"  # Slack's deprecated per-app token


def sign(body: bytes, secret: str, content_type: str, *, timestamp: int | None = None) -> Signed:
    """``body`` with the headers Slack sends it with, signed with ``secret`` at
    ``timestamp`` (now by default)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    return body, headers


class SlackRequests:
    """Builds the requests Slack would send about ``fake`` 's workspace to an app whose
    signing secret is ``fake.signing_secret``."""

    def __init__(self, fake: FakeSlack, *, api_app_id: str = "A0LEADFLOW") -> None:
        self.fake = fake
        self.api_app_id = api_app_id

    # -- interactions --------------------------------------------------------------------

    def block_actions(
        self,
        user: str,
        action_id: str,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
        view_id: str | None = None,
        value: str | None = None,
        block_id: str | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> Signed:
        """``user`` clicks the element ``action_id``: of the message ``message_ts`` in
        ``channel`` (id, or a user id for their DM with the bot), or of the view
        ``view_id`` (a modal or Home tab). ``value`` and ``block_id`` default to the
        element's, found in the message's or view's blocks."""
        payload: dict[str, Any] = self._common("block_actions", user)
        blocks: list[dict[str, Any]] = []
        channel_id = self.fake.channel_id(channel) if channel is not None else None
        if channel_id is not None and message_ts is not None:
            found = [m for m in self.fake.messages(channel_id) if m.ts == message_ts]
            if not found:
                raise KeyError(f"no message {message_ts} in {channel_id}")
            message = found[0]
            blocks = message.blocks
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            }
            payload["message"] = message.json(self.fake.workspace.bot_id)
        elif view_id is not None:
            view = self.fake.view(view_id)
            if view is None:
                raise KeyError(f"no view {view_id}")
            blocks = view.view.get("blocks", [])
            payload["container"] = {"type": "view", "view_id": view_id}
            payload["view"] = view.json(self.fake.workspace.team_id)
        if channel_id is not None:
            payload["channel"] = {"id": channel_id, "name": self._channel_name(channel_id)}
        element, found_block = _element(blocks, action_id)
        action = {
            "type": element.get("type", "button"),
            "action_id": action_id,
            "block_id": block_id or found_block or "blk0",
            "action_ts": f"{time.time():.6f}",
        }
        if "text" in element:
            action["text"] = element["text"]
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        payload["actions"] = [action]
        payload["state"] = {"values": {}}
        payload["trigger_id"] = self.fake.issue_trigger(user)
        payload["response_url"] = self.fake.issue_response_url(
            channel=channel_id, user=user, message_ts=message_ts
        )
        return self._form({"payload": json.dumps(payload)}, secret, timestamp)

    def view_submission(
        self,
        user: str,
        *,
        view_id: str | None = None,
        callback_id: str | None = None,
        private_metadata: str | None = None,
        values: dict[str, dict[str, Any]] | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> Signed:
        """``user`` submits a modal: the one opened as ``view_id`` (its ``callback_id``
        and ``private_metadata`` unless given), with ``values`` as
        ``{block_id: {action_id: text or a full element state}}``."""
        view: dict[str, Any] = {
            "id": view_id or self.fake.workspace.new_id("V"),
            "team_id": self.fake.workspace.team_id,
            "type": "modal",
            "blocks": [],
            "callback_id": "",
            "private_metadata": "",
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "app_id": self.api_app_id,
            "bot_id": self.fake.workspace.bot_id,
            "previous_view_id": None,
        }
        if view_id is not None:
            opened = self.fake.view(view_id)
            if opened is None:
                raise KeyError(f"no view {view_id}")
            view.update(opened.json(self.fake.workspace.team_id))
        if callback_id is not None:
            view["callback_id"] = callback_id
        if private_metadata is not None:
            view["private_metadata"] = private_metadata
        view["state"] = {"values": _state(values or {})}
        view["root_view_id"] = view["id"]
        payload = self._common("view_submission", user)
        payload.update(view=view, response_urls=[], trigger_id=self.fake.issue_trigger(user))
        return self._form({"payload": json.dumps(payload)}, secret, timestamp)

    # -- slash commands ------------------------------------------------------------------

    def slash_command(
        self,
        user: str,
        command: str,
        text: str = "",
        *,
        channel: str | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> Signed:
        """``user`` types ``command text`` in ``channel`` (their DM with the bot by
        default)."""
        channel_id = self.fake.channel_id(channel) if channel else self.fake.open_dm(user)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.fake.workspace.team_id,
            "team_domain": self.fake.workspace.team_domain,
            "channel_id": channel_id,
            "channel_name": self._channel_name(channel_id),
            "user_id": user,
            "user_name": self._user_name(user),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self.fake.issue_response_url(channel=channel_id, user=user),
            "trigger_id": self.fake.issue_trigger(user),
        }
        return self._form(fields, secret, timestamp)

    # -- events ----------------------------------------------------------------------------

    def event_callback(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> Signed:
        """An Events API delivery of ``event``; ``retry_num`` marks a redelivery
        (``X-Slack-Retry-Num``, reason ``http_timeout``) of the same ``event_id``."""
        ws = self.fake.workspace
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": ws.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": ws.team_id,
                    "user_id": ws.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        body, headers = self._json(envelope, secret, timestamp)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return body, headers

    def app_home_opened(
        self,
        user: str,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> Signed:
        """``user`` opens the app's Home tab (the view last published for them, if any,
        comes with the event)."""
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.fake.open_dm(user),
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        home = self.fake.home_view(user)
        if home is not None:
            event["view"] = home
        return self.event_callback(
            event, event_id=event_id, retry_num=retry_num, secret=secret, timestamp=timestamp
        )

    def url_verification(
        self,
        challenge: str | None = None,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> Signed:
        """The challenge Slack sends when the request URL is saved; the app must answer
        with ``challenge``."""
        body = {
            "token": VERIFICATION_TOKEN,
            "challenge": challenge or secrets.token_urlsafe(24),
            "type": "url_verification",
        }
        return self._json(body, secret, timestamp)

    # -- helpers ---------------------------------------------------------------------------

    def _common(self, kind: str, user: str) -> dict[str, Any]:
        ws = self.fake.workspace
        return {
            "type": kind,
            "user": {
                "id": user,
                "username": self._user_name(user),
                "name": self._user_name(user),
                "team_id": ws.team_id,
            },
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "team": {"id": ws.team_id, "domain": ws.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _user_name(self, user: str) -> str:
        with self.fake.workspace.lock:
            found = self.fake.workspace.users.get(user)
        return found.email.split("@")[0] if found else user.lower()

    def _channel_name(self, channel_id: str) -> str:
        with self.fake.workspace.lock:
            found = self.fake.workspace.channels.get(channel_id)
        if found is None or found.name is None:
            return "directmessage"
        return found.name

    def _form(self, fields: dict[str, str], secret: str | None, timestamp: int | None) -> Signed:
        body = urlencode(fields).encode()
        return sign(body, secret or self.fake.signing_secret, FORM, timestamp=timestamp)

    def _json(self, data: dict[str, Any], secret: str | None, timestamp: int | None) -> Signed:
        body = json.dumps(data).encode()
        return sign(body, secret or self.fake.signing_secret, JSON, timestamp=timestamp)


def _element(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], str | None]:
    """The element ``action_id`` in ``blocks`` and its block's ``block_id`` (Slack makes
    one up for a block sent without); an empty element and None when it is not there."""
    for index, block in enumerate(blocks):
        candidates = list(block.get("elements", []))
        if "accessory" in block:
            candidates.append(block["accessory"])
        if "element" in block:
            candidates.append(block["element"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element, block.get("block_id") or f"blk{index}"
    return {}, None


def _state(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{block_id: {action_id: state}}``; a plain string is a text input's value."""
    return {
        block: {
            action: {"type": "plain_text_input", "value": state}
            if isinstance(state, str)
            else state
            for action, state in actions.items()
        }
        for block, actions in values.items()
    }
