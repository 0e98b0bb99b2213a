"""What a failed Slack Web API call means for a message, decided in one place.

::

    exception from a Slack call (slack-sdk, urllib)
    ├── transient: try again later (Temporal retries the activity)
    │   ├── HTTP 429 / ``ratelimited``        wait Retry-After
    │   ├── HTTP 5xx, ``fatal_error``, ``internal_error``, ``service_unavailable``,
    │   │   ``request_timeout``
    │   └── timeouts, refused or dropped connections (OSError, http.client errors)
    └── permanent: Slack will say the same again; the message stays in the inbox
        ├── the token: ``invalid_auth``, ``not_authed``, ``account_inactive``,
        │   ``token_revoked``, ``token_expired``, ``missing_scope``
        ├── where it goes: ``channel_not_found``, ``not_in_channel``, ``is_archived``,
        │   ``users_not_found``, ``user_not_found``, ``restricted_action``
        ├── what it says: ``invalid_blocks``, ``invalid_blocks_format``, ``no_text``,
        │   ``msg_too_long``
        └── any other error code, and slack-sdk's own request errors

Failures carry Slack's error code and plain words for the people reading the inbox, never
the message itself (it holds a lead's contact details)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from datetime import timedelta

from slack_sdk.errors import SlackApiError, SlackClientError
from temporalio.exceptions import ApplicationError

TRANSIENT_CODES = frozenset(
    {"ratelimited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"}
)
WORDS = {
    "invalid_auth": "Slack refused the bot token (check LEADFLOW_SLACK_BOT_TOKEN)",
    "not_authed": "no bot token reached Slack",
    "account_inactive": "the Slack app's bot user or its workspace is deactivated",
    "token_revoked": "the bot token was revoked (reinstall the Slack app)",
    "token_expired": "the bot token has expired",
    "missing_scope": "the bot token lacks a permission this needs",
    "channel_not_found": "the channel does not exist or the bot cannot see it",
    "not_in_channel": "the bot is not a member of the channel (invite it there)",
    "is_archived": "the channel is archived",
    "users_not_found": "no Slack user has this email",
    "user_not_found": "the Slack user does not exist",
    "restricted_action": "a workspace setting stops the bot from posting there",
    "invalid_blocks": "Slack refused the message's layout (Block Kit)",
    "invalid_blocks_format": "Slack could not read the message's layout (Block Kit)",
    "no_text": "the message is empty",
    "msg_too_long": "the message is too long for Slack",
    "message_not_found": "the message is no longer in Slack",
    "cant_update_message": "the bot may not edit this message",
    "edit_window_closed": "the workspace no longer allows editing this message",
}


@dataclass(frozen=True)
class SlackFailure:
    """Why a Slack call failed: Slack's error ``code``, ``words`` for people, whether a
    later try may succeed, and how long Slack asked us to wait (``retry_after``, s)."""

    code: str
    words: str
    transient: bool
    retry_after: float | None = None

    @property
    def shown(self) -> str:
        """The failure as the inbox shows it: ``channel_not_found: the channel …``."""
        return f"{self.code}: {self.words}"

    def application_error(self, method: str) -> ApplicationError:
        """The retryable Temporal failure of a transient failure of ``method``."""
        delay = timedelta(seconds=self.retry_after) if self.retry_after is not None else None
        return ApplicationError(
            f"Slack {method}: {self.shown}",
            type="SlackRateLimited" if self.code == "ratelimited" else "SlackUnavailable",
            non_retryable=False,
            next_retry_delay=delay,
        )


class Undeliverable(Exception):
    """Raised by the notifier itself when a message cannot go to Slack (no Slack user
    for a person); ``failure`` says why."""

    def __init__(self, failure: SlackFailure) -> None:
        super().__init__(failure.shown)
        self.failure = failure


def classify(err: BaseException) -> SlackFailure | None:
    """What ``err`` from a Slack call means; None when it is no Slack failure at all
    (a bug of ours: let it raise)."""
    if isinstance(err, Undeliverable):
        return err.failure
    if isinstance(err, SlackApiError):
        return _api_failure(err)
    if isinstance(err, TimeoutError):
        return SlackFailure("timeout", "Slack did not answer in time", transient=True)
    if isinstance(err, OSError | http.client.HTTPException):
        return SlackFailure("connection_error", "Slack could not be reached", transient=True)
    if isinstance(err, SlackClientError):
        return SlackFailure("request_error", "the Slack request could not be sent", False)
    return None


def _api_failure(err: SlackApiError) -> SlackFailure:
    response = err.response
    status = int(response.status_code)
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"http_{status}")
    if status == 429 or code == "ratelimited":
        return SlackFailure(
            "ratelimited",
            "Slack asked us to slow down",
            transient=True,
            retry_after=_retry_after(response.headers),
        )
    if status >= 500 or code in TRANSIENT_CODES:
        if code.startswith("Received a response in a non-JSON format"):
            code = f"http_{status}"
        return SlackFailure(code, f"Slack is unavailable (HTTP {status})", transient=True)
    words = WORDS.get(code, "Slack refused the message")
    needed = data.get("needed")
    if code == "missing_scope" and needed:
        words = f"{words} ({needed})"
    return SlackFailure(code, words, transient=False)


def _retry_after(headers: object) -> float | None:
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if str(key).lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None


def escape(text: str) -> str:
    """Plain prose made safe for Slack's ``text`` (mrkdwn): ``&``, ``<`` and ``>``
    escaped, so a lead named ``<!channel>`` pings nobody. Blocks come escaped from their
    builders and are sent as they are."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
