"""The Slack notifier through the real slack-sdk against the HTTP fake of Slack's Web API:
a message is an inbox row first, then one Slack message per idempotency key (updated,
never posted twice); Slack's failures retry through Temporal or divert the message to the
inbox with the reason. Then the fake itself keeps Slack's documented rules."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookClient
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from bots.notifier import Message, OfflineNotifier
from bots.slack_notifier import MAX_ATTEMPTS, SlackNotifier
from domain.lead import Owner
from settings import Settings
from store import reps as rep_store
from store.db import Database
from store.migrate import upgrade
from store.models import Notification
from tests.fakes.slack_api import FakeSlack, running_slack
from tests.fakes.slack_payloads import SlackRequests

LEAD = "Eve Mallory"
BUTTON: dict[str, Any] = {
    "type": "actions",
    "elements": [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open lead"},
            "action_id": "open_lead",
            "value": "lead-1",
        }
    ],
}
NEW_LEAD = Message(
    kind="new_lead",
    lead_id="lead-1",
    text=f"New lead: {LEAD} <eve@example.com>",
    blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Eve* &lt;eve@example.com&gt;"}},
        BUTTON,
    ],
)
CONTACTED = NEW_LEAD.model_copy(
    update={"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Contacted"}}]}
)
WIN = Message(kind="win", lead_id="lead-1", text="Sam won Acme", blocks=[])


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with running_slack() as fake:
        yield fake


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'app.db'}")
    upgrade(database)
    with database.session() as session:
        rep_store.seed_demo(session)
    yield database
    database.dispose()


@pytest.fixture
def owner(db: Database, slack: FakeSlack) -> Owner:
    """A demo rep, known to Slack by the user id the app has for them."""
    with db.read() as session:
        owner = rep_store.owner_of(rep_store.list_reps(session)[0])
    assert owner.slack_user_id is not None
    slack.add_user(owner.email, owner.name, user_id=owner.slack_user_id)
    return owner


def notifier(db: Database, slack: FakeSlack, wins: str = "#wins") -> SlackNotifier:
    return SlackNotifier(db, slack.web_client(timeout=5), wins)


def error_of(db: Database, key: str) -> str:
    """The delivery error shown in the inbox for ``key`` ("" when none)."""
    return row(db, key).delivery_error or ""


def row(db: Database, key: str) -> Notification:
    with db.read() as session:
        return session.scalars(
            select(Notification).where(Notification.idempotency_key == key)
        ).one()


# ------------------------------------------------------------------ direct messages


def test_a_rep_gets_one_direct_message_and_its_place_is_stored(db, slack, owner) -> None:
    notification_id = notifier(db, slack).notify(owner, NEW_LEAD, "lead-1:notify")
    [message] = slack.messages(owner.slack_user_id)
    stored = row(db, "lead-1:notify")
    assert stored.id == notification_id
    assert (stored.delivery, stored.channel, stored.ts) == ("slack", message.channel, message.ts)
    assert (stored.channel or "").startswith("D") and stored.channel == slack.dm_channel(
        owner.slack_user_id
    )
    # The plain text is escaped once; the blocks come escaped from their builder.
    assert message.text == f"New lead: {LEAD} &lt;eve@example.com&gt;"
    assert message.blocks == NEW_LEAD.blocks


def test_a_retried_key_updates_the_message_in_its_dm_instead_of_posting_again(
    db, slack, owner
) -> None:
    sender = notifier(db, slack)
    first = sender.notify(owner, NEW_LEAD, "lead-1:notify")
    assert sender.notify(owner, CONTACTED, "lead-1:notify") == first
    assert len(slack.calls("chat.postMessage")) == 1
    [update] = slack.calls("chat.update")
    assert (
        update.args["channel"].startswith("D") and update.args["ts"] == row(db, "lead-1:notify").ts
    )
    [message] = slack.messages(owner.slack_user_id)
    assert message.blocks == CONTACTED.blocks and message.edits == 1
    assert row(db, "lead-1:notify").blocks == {"blocks": CONTACTED.blocks}


def test_update_message_follows_a_delivered_message_and_skips_inbox_only_ones(
    db, slack, owner
) -> None:
    sender = notifier(db, slack)
    sender.notify(owner, NEW_LEAD, "lead-1:notify")
    sender.update_message("lead-1:notify", CONTACTED)
    assert slack.messages(owner.slack_user_id)[0].blocks == CONTACTED.blocks
    OfflineNotifier(db).notify(owner, NEW_LEAD, "lead-2:notify")
    sender.update_message("lead-2:notify", CONTACTED)
    sender.update_message("no-such-key", CONTACTED)
    assert len(slack.calls("chat.update")) == 1
    assert row(db, "lead-2:notify").blocks == {"blocks": CONTACTED.blocks}


def test_a_rep_without_a_slack_id_is_looked_up_by_email_once(db, slack, owner) -> None:
    unknown = owner.model_copy(update={"slack_user_id": None})
    sender = notifier(db, slack)
    sender.notify(unknown, NEW_LEAD, "lead-1:notify")
    sender.notify(unknown, WIN.model_copy(update={"text": "again"}), "lead-2:notify")
    assert len(slack.calls("users.lookupByEmail")) == 1
    assert len(slack.messages(owner.slack_user_id)) == 2


def test_a_person_with_no_slack_user_is_diverted_to_the_inbox(db, slack) -> None:
    notifier(db, slack).notify_person("morgan@example.com", "Morgan", NEW_LEAD, "k")
    stored = row(db, "k")
    assert stored.delivery == "diverted"
    assert stored.delivery_error == "users_not_found: no Slack user for morgan@example.com"


# ------------------------------------------------------------------ Slack's failures


def test_a_rate_limit_raises_a_retryable_error_after_retry_after(db, slack, owner) -> None:
    slack.fail("429")
    with pytest.raises(ApplicationError) as raised:
        notifier(db, slack).notify(owner, NEW_LEAD, "k")
    assert not raised.value.non_retryable and raised.value.type == "SlackRateLimited"
    assert raised.value.next_retry_delay == timedelta(seconds=1)
    assert (row(db, "k").attempts, row(db, "k").delivery) == (1, "inbox")
    notifier(db, slack).notify(owner, NEW_LEAD, "k")  # Temporal's retry
    assert row(db, "k").delivery == "slack" and len(slack.messages(owner.slack_user_id)) == 1


def test_five_transient_failures_divert_the_message(db, slack, owner) -> None:
    slack.fail("5xx", times=MAX_ATTEMPTS)
    sender = notifier(db, slack)
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(ApplicationError) as raised:
            sender.notify(owner, NEW_LEAD, "k")
        assert not raised.value.non_retryable and LEAD not in str(raised.value)
    sender.notify(owner, NEW_LEAD, "k")
    stored = row(db, "k")
    assert (stored.delivery, stored.attempts) == ("diverted", MAX_ATTEMPTS)
    assert error_of(db, "k").startswith("service_unavailable: Slack is unavailable")
    assert slack.messages(owner.slack_user_id) == []


def test_an_unreachable_slack_is_a_retryable_failure(db, owner) -> None:
    client = WebClient(token="xoxb-1", base_url="http://127.0.0.1:9/api/", retry_handlers=[])
    with pytest.raises(ApplicationError) as raised:
        SlackNotifier(db, client, "#wins").notify(owner, NEW_LEAD, "k")
    assert not raised.value.non_retryable and raised.value.type == "SlackUnavailable"


@pytest.mark.parametrize("error", ["invalid_auth", "channel_not_found"])
def test_a_permanent_error_diverts_at_once_and_shows_why(
    db, slack, owner, error, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fail(error)
    notifier(db, slack).notify(owner, NEW_LEAD, "k")
    stored = row(db, "k")
    assert (stored.delivery, stored.attempts) == ("diverted", 0)
    assert error_of(db, "k").startswith(f"{error}: ")
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert error in warning.getMessage() and LEAD not in warning.getMessage()


def test_blocks_slack_refuses_divert_the_message(db, slack, owner) -> None:
    long_label = {"type": "plain_text", "text": "x" * 76}
    bad = NEW_LEAD.model_copy(
        update={"blocks": [{**BUTTON, "elements": [{**BUTTON["elements"][0], "text": long_label}]}]}
    )
    notifier(db, slack).notify(owner, bad, "k")
    assert error_of(db, "k").startswith("invalid_blocks: ")
    assert slack.calls("chat.postMessage")[0].error == "invalid_blocks"


# ------------------------------------------------------------------ the wins channel


def test_a_win_is_announced_in_the_wins_channel_and_a_reply_goes_in_its_thread(db, slack) -> None:
    channel = slack.add_channel("wins")
    sender = notifier(db, slack)
    sender.announce(WIN, "lead-1:announce")
    sender.announce(
        WIN.model_copy(update={"text": "Welcome aboard"}), "k2", thread_of="lead-1:announce"
    )
    first, reply = slack.messages("#wins")
    assert first.thread_ts is None and reply.thread_ts == first.ts
    assert row(db, "lead-1:announce").channel == channel == row(db, "k2").channel
    assert row(db, "k2").thread_of == "lead-1:announce"


def test_a_wins_channel_without_the_bot_diverts_the_announcement(db, slack) -> None:
    slack.add_channel("wins", bot_member=False)
    notifier(db, slack).announce(WIN, "k")
    assert error_of(db, "k").startswith("not_in_channel: ")


def test_the_offline_notifier_records_the_thread(db) -> None:
    OfflineNotifier(db).announce(WIN, "k2", thread_of="k1")
    assert row(db, "k2").thread_of == "k1"


# ------------------------------------------------------------------ the token


def test_the_token_travels_in_the_authorization_header(db, slack, owner) -> None:
    notifier(db, slack).notify(owner, NEW_LEAD, "k")
    assert {c.token_in for c in slack.calls()} == {"header"}
    in_body = httpx.post(f"{slack.api_url}auth.test", data={"token": slack.token})
    assert in_body.json() == {"ok": False, "error": "not_authed"}


def test_from_settings_turns_slack_sdk_retries_off(db, slack) -> None:
    settings = Settings(_env_file=None, slack_bot_token=slack.token, slack_api_url=slack.api_url)
    built = SlackNotifier.from_settings(settings, db)
    assert built._client.retry_handlers == [] and built._client.timeout == 10
    assert built._client.auth_test()["user_id"] == slack.workspace.bot_user_id


# ------------------------------------------------------------------ the fake keeps Slack's rules


def test_chat_update_needs_the_dm_id_not_the_user_id(slack, owner) -> None:
    client = slack.web_client()
    posted = client.chat_postMessage(channel=owner.slack_user_id, text="hi")
    with pytest.raises(SlackApiError) as raised:
        client.chat_update(channel=owner.slack_user_id, ts=posted["ts"], text="hello")
    assert raised.value.response["error"] == "channel_not_found"
    client.chat_update(channel=posted["channel"], ts=posted["ts"], text="hello")
    assert slack.messages(owner.slack_user_id)[0].text == "hello"


def test_ephemeral_messages_need_the_bot_in_the_channel(slack, owner) -> None:
    client = slack.web_client()
    client.chat_postEphemeral(
        channel=slack.add_channel("sales"), user=owner.slack_user_id, text="x"
    )
    outside = slack.add_channel("random", bot_member=False)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postEphemeral(channel=outside, user=owner.slack_user_id, text="x")
    assert raised.value.response["error"] == "not_in_channel"


MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Reassign"}, "blocks": []}


def test_a_trigger_opens_one_modal_within_three_seconds(slack, owner) -> None:
    client = slack.web_client()
    trigger = slack.issue_trigger(owner.slack_user_id)
    opened = client.views_open(trigger_id=trigger, view=MODAL)
    assert slack.views_opened()[0].id == opened["view"]["id"]
    for trigger_id, error in [
        (trigger, "exchanged_trigger_id"),
        (slack.issue_trigger(owner.slack_user_id, age_s=3.5), "expired_trigger_id"),
        ("1.2.made-up", "invalid_trigger_id"),
    ]:
        with pytest.raises(SlackApiError) as raised:
            client.views_open(trigger_id=trigger_id, view=MODAL)
        assert raised.value.response["error"] == error
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "t" * 25}}
    with pytest.raises(SlackApiError) as raised:
        client.views_open(trigger_id=slack.issue_trigger(owner.slack_user_id), view=long_title)
    assert raised.value.response["error"] == "invalid_blocks"


def test_a_click_is_signed_and_its_response_url_replaces_the_message(slack, owner) -> None:
    posted = slack.web_client().chat_postMessage(
        channel=owner.slack_user_id, text="new lead", blocks=[BUTTON]
    )
    requests = SlackRequests(slack)
    body, headers = requests.block_actions(
        owner.slack_user_id, "open_lead", channel=posted["channel"], message_ts=posted["ts"]
    )
    assert SignatureVerifier(slack.signing_secret).is_valid_request(body, headers)
    wrong, wrong_headers = requests.block_actions(
        owner.slack_user_id,
        "open_lead",
        channel=posted["channel"],
        message_ts=posted["ts"],
        secret="not-the-secret",
    )
    assert not SignatureVerifier(slack.signing_secret).is_valid_request(wrong, wrong_headers)
    payload = json.loads(httpx.QueryParams(body.decode())["payload"])
    assert payload["actions"][0]["value"] == "lead-1"
    assert payload["container"]["message_ts"] == posted["ts"]
    WebhookClient(payload["response_url"]).send(text="Taken by you", replace_original=True)
    [response] = slack.response_posts()
    assert response.replace_original and response.text == "Taken by you"
    assert slack.messages(owner.slack_user_id)[0].text == "Taken by you"


def test_a_slash_command_opens_a_modal_whose_submission_carries_its_values(slack, owner) -> None:
    requests = SlackRequests(slack)
    body, _ = requests.slash_command(owner.slack_user_id, "/leads", "mine")
    fields = httpx.QueryParams(body.decode())
    assert (fields["command"], fields["text"], fields["user_id"]) == (
        "/leads",
        "mine",
        owner.slack_user_id,
    )
    modal = {**MODAL, "callback_id": "reassign", "private_metadata": "lead-1"}
    opened = slack.web_client().views_open(trigger_id=fields["trigger_id"], view=modal)
    body, _ = requests.view_submission(
        owner.slack_user_id, view_id=opened["view"]["id"], values={"rep": {"pick": "U0X"}}
    )
    view = json.loads(httpx.QueryParams(body.decode())["payload"])["view"]
    assert (view["callback_id"], view["private_metadata"]) == ("reassign", "lead-1")
    assert view["state"]["values"]["rep"]["pick"]["value"] == "U0X"
    WebhookClient(fields["response_url"]).send(text="Done")
    assert [e.text for e in slack.ephemerals()] == ["Done"]


async def test_the_async_client_publishes_a_home_tab_shown_on_app_home_opened(slack, owner) -> None:
    client = AsyncWebClient(token=slack.token, base_url=slack.api_url, retry_handlers=[])
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "Your leads"}}
    home = {"type": "home", "blocks": [section]}
    await client.views_publish(user_id=owner.slack_user_id, view=home)
    assert slack.home_view(owner.slack_user_id) == home
    body, headers = SlackRequests(slack).app_home_opened(owner.slack_user_id, event_id="Ev1")
    envelope = json.loads(body)
    assert (envelope["type"], envelope["event_id"]) == ("event_callback", "Ev1")
    assert envelope["event"]["view"] == home
    old, old_headers = SlackRequests(slack).url_verification(timestamp=int(time.time()) - 600)
    verifier = SignatureVerifier(slack.signing_secret)
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(old, old_headers)
