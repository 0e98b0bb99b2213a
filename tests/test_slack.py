"""The Slack app end to end: the running stack posts a lead's card to its owner's DM in
the fake Slack workspace; clicks, signed as Slack signs them, go to ``POST /slack/events``
and through the lifecycle's one entry point; the card follows the lead's stage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.client import Client

from bots.slack_notifier import SlackNotifier
from store.db import Database
from tests.conftest import API_TOKEN, LEAD_ID_SECRET, Stack, running_stack
from tests.crm_support import SCENARIO_REPS, app_database
from tests.fakes.slack_api import FakeSlack, running_slack
from tests.fakes.slack_payloads import SlackRequests
from tests.lifecycle_support import event, eventually, lead, publish, until
from tests.processes import Processes, kill_tree, leadflow_env
from tests.test_lifecycle_paths import (
    KILLED_ACTIVITY_TIMEOUT_S,
    RECOVERY_S,
    handoff_counts,
    web_only,
)

ACTION_IDS = ("lead_contacted", "lead_meeting_booked", "lead_not_a_fit", "lead_why_me")


@dataclass
class SlackStack:
    stack: Stack
    fake: FakeSlack
    requests: SlackRequests
    users: dict[str, str]  # rep email → Slack user id

    async def post(self, signed: tuple[bytes, dict[str, str]]) -> Any:
        body, headers = signed
        return await self.stack.http.post("/slack/events", content=body, headers=headers)

    def card(self, user: str) -> Any:
        channel = self.fake.dm_channel(user)
        assert channel is not None, f"no DM with {user}"
        messages = self.fake.messages(channel)
        assert messages, f"no message to {user}"
        return messages[-1]


@pytest.fixture
async def slack(client: Client, task_queue: str, tmp_path: Path) -> AsyncIterator[SlackStack]:
    db: Database = app_database(tmp_path)
    try:
        with running_slack() as fake:
            users = {
                email: fake.add_user(email, email.split("@")[0].replace(".", " ").title())
                for email in SCENARIO_REPS
            }
            fake.add_channel("wins")
            publish(db)
            notifier = SlackNotifier(db, fake.web_client(), "#wins")
            async with running_stack(
                client,
                db,
                task_queue,
                tmp_path,
                notifier=notifier,
                slack_bot_token=fake.token,
                slack_signing_secret=fake.signing_secret,
                slack_api_url=fake.api_url,
            ) as stack:
                yield SlackStack(stack, fake, SlackRequests(fake), users)
    finally:
        db.dispose()


async def assigned(s: SlackStack, **fields: object) -> tuple[str, str]:
    """A new lead; its id and its owner's Slack user id."""
    fields.setdefault("email", f"pat-{id(fields)}@acme-robotics.example")
    fields.setdefault("first_name", "Pat")
    fields.setdefault("company", "Acme Robotics")
    lead_id = (await s.stack.submit(**fields)).json()["lead_id"]
    body = await s.stack.wait_for(lead_id)
    return lead_id, s.users[body["owner"]["email"]]


def action_ids(message: Any) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


async def test_the_owner_gets_a_card_and_contacted_moves_the_lead(slack: SlackStack) -> None:
    lead_id, owner = await assigned(slack, title="VP Sales", country="DE")
    card = slack.card(owner)
    assert [a for a in action_ids(card) if a in ACTION_IDS] == list(ACTION_IDS)
    assert "Routed by rule" in str(card.blocks)
    click = slack.requests.block_actions(
        owner, "lead_contacted", channel=card.channel, message_ts=card.ts
    )
    answer = await slack.post(click)
    assert answer.status_code == 200, answer.text
    await until(slack.stack, lead_id, lambda b: b["stage"] == "contacted", 10, "contacted")

    def updated() -> Any:
        now = slack.card(owner)
        return now if "lead_contacted" not in action_ids(now) else None

    now = await eventually(updated, "the card updated in place")
    assert now.ts == card.ts  # the same message, updated with chat.update
    assert "lead_meeting_booked" in action_ids(now)
    assert "Contacted · by" in str(now.blocks)
    assert slack.fake.calls("chat.update")


async def test_someone_else_is_refused_and_nothing_changes(slack: SlackStack) -> None:
    lead_id, owner = await assigned(slack)
    intruder = next(u for e, u in slack.users.items() if u != owner and "morgan" not in e)
    card = slack.card(owner)
    click = slack.requests.block_actions(
        intruder, "lead_contacted", channel=card.channel, message_ts=card.ts
    )
    assert (await slack.post(click)).status_code == 200
    posts = await eventually(lambda: slack.fake.response_posts() or None, "an ephemeral answer")
    assert "belongs to" in (posts[-1].text or "")
    await asyncio.sleep(0.5)
    assert (await lead(slack.stack, lead_id))["stage"] == "assigned"


async def test_not_a_fit_asks_for_a_reason_then_disqualifies(slack: SlackStack) -> None:
    lead_id, owner = await assigned(slack)
    card = slack.card(owner)
    click = slack.requests.block_actions(
        owner, "lead_not_a_fit", channel=card.channel, message_ts=card.ts
    )
    assert (await slack.post(click)).status_code == 200
    views = await eventually(lambda: slack.fake.views_opened() or None, "the reason modal")
    submit = slack.requests.view_submission(
        owner, view_id=views[-1].id, values={"reason": {"reason_input": "No budget this year"}}
    )
    assert (await slack.post(submit)).status_code == 200
    body = await until(slack.stack, lead_id, lambda b: b["stage"] == "disqualified", 10, "out")
    assert any(e["data"].get("reason") == "No budget this year" for e in body["events"])
    await eventually(
        lambda: "Not a fit: No budget this year" in str(slack.card(owner).blocks) or None,
        "the card saying so",
    )


async def test_why_me_explains_the_decision_privately(slack: SlackStack) -> None:
    _, owner = await assigned(slack)
    card = slack.card(owner)
    click = slack.requests.block_actions(
        owner, "lead_why_me", channel=card.channel, message_ts=card.ts
    )
    assert (await slack.post(click)).status_code == 200
    posts = await eventually(lambda: slack.fake.response_posts() or None, "the explanation")
    assert posts[-1].response_type == "ephemeral"
    assert "got this lead" in str(posts[-1].blocks)


async def test_a_click_that_no_longer_applies_is_told_why(slack: SlackStack) -> None:
    lead_id, owner = await assigned(slack)
    card = slack.card(owner)
    answer = await slack.stack.http.post(
        f"/leads/{lead_id}/events",
        json={"type": "disqualified", "reason": "duplicate"},
        headers=slack.stack.auth,
    )
    assert answer.status_code == 202
    # The rep's Slack still shows the old card (the update may not have reached it).
    click = slack.requests.block_actions(
        owner, "lead_contacted", channel=card.channel, message_ts=card.ts, value=lead_id
    )
    assert (await slack.post(click)).status_code == 200
    posts = await eventually(lambda: slack.fake.response_posts() or None, "an ephemeral answer")
    text = posts[-1].text or ""
    assert "no longer applies" in text or "ended" in text, text
    await eventually(
        lambda: "lead_contacted" not in action_ids(slack.card(owner)) or None, "the card fixed"
    )


async def test_forged_and_stale_requests_are_refused(slack: SlackStack) -> None:
    _, owner = await assigned(slack)
    card = slack.card(owner)
    forged = slack.requests.block_actions(
        owner, "lead_contacted", channel=card.channel, message_ts=card.ts, secret="wrong"
    )
    stale = slack.requests.block_actions(
        owner, "lead_contacted", channel=card.channel, message_ts=card.ts, timestamp=1
    )
    for signed in (forged, stale):
        assert (await slack.post(signed)).status_code == 401


async def test_lead_text_cannot_ping_or_link(slack: SlackStack) -> None:
    _, owner = await assigned(
        slack, first_name="<!channel>", company="<https://evil.example|Invoice>"
    )
    card = slack.card(owner)
    raw = str(card.blocks) + card.text
    assert "<!channel>" not in raw and "<https://evil.example" not in raw
    assert "&lt;!channel&gt;" in raw


async def test_a_win_is_posted_once_with_the_hand_off_in_its_thread(slack: SlackStack) -> None:
    lead_id, _ = await assigned(slack)
    for step in ("contacted", "meeting_booked", "qualified", "proposal_sent"):
        await event(slack.stack, lead_id, step)
    await event(slack.stack, lead_id, "won", amount="48000", currency="EUR")
    await until(slack.stack, lead_id, lambda b: b["stage"] == "handed_off", 30, "handed off")
    posts = await eventually(lambda: slack.fake.messages("#wins") or None, "the win")
    wins = [m for m in posts if m.thread_ts is None]
    assert len(wins) == 1 and "€48,000" in wins[0].text
    replies = [m for m in posts if m.thread_ts == wins[0].ts]
    assert len(replies) == 1 and "account management" in replies[0].text


async def test_a_rep_away_by_slash_command_gets_no_leads_until_back(slack: SlackStack) -> None:
    avery = slack.users["avery.park@example.com"]
    away = await slack.post(
        slack.requests.slash_command(avery, "/leadflow", "away until 2099-01-01")
    )
    assert away.status_code == 200 and "away until" in away.text, away.text
    status = await slack.post(slack.requests.slash_command(avery, "/leadflow", "status"))
    assert "away until" in status.text
    owners = set()
    for index in range(4):
        lead_id = (await slack.stack.submit(email=f"away-{index}@acme.example")).json()["lead_id"]
        owners.add((await slack.stack.wait_for(lead_id))["owner"]["email"])
    assert "avery.park@example.com" not in owners
    back = await slack.post(slack.requests.slash_command(avery, "/leadflow", "back"))
    assert "Welcome back" in back.text
    wrong = await slack.post(slack.requests.slash_command(avery, "/leadflow", "away until soon"))
    assert "not a date" in wrong.text


async def test_a_discount_is_requested_and_approved_in_slack(slack: SlackStack) -> None:
    def chain(config: dict[str, Any]) -> None:
        config["approvals"] = {
            "discount": {"levels": [{"up_to": 20, "approvers": ["pool_manager"], "timeout": "1h"}]}
        }

    publish(slack.stack, chain)
    lead_id, owner = await assigned(slack)
    for step in (
        "contacted",
        "meeting_booked",
        "qualified",
        "proposal_sent",
        "negotiation_started",
    ):
        await event(slack.stack, lead_id, step)
    asked = await slack.post(
        slack.requests.slash_command(owner, "/leadflow", f"discount {lead_id} 15 multi-year")
    )
    assert "went to morgan.hale@example.com" in asked.text, asked.text
    manager = slack.users["morgan.hale@example.com"]

    def request_message() -> Any:
        channel = slack.fake.dm_channel(manager)
        found = list(slack.fake.messages(channel)) if channel else []
        return next((m for m in found if "approval_approve" in action_ids(m)), None)

    message = await eventually(request_message, "the approval request in the manager's DM")
    intruder = slack.users["sam.rivera@example.com"]
    refused = slack.requests.block_actions(
        intruder, "approval_approve", channel=message.channel, message_ts=message.ts
    )
    assert (await slack.post(refused)).status_code == 200
    posts = await eventually(lambda: slack.fake.response_posts() or None, "the refusal")
    assert "not an approver" in (posts[-1].text or "")
    approve = slack.requests.block_actions(
        manager, "approval_approve", channel=message.channel, message_ts=message.ts
    )
    assert (await slack.post(approve)).status_code == 200
    body = await until(
        slack.stack, lead_id, lambda b: b.get("approved_discount") == "15", 20, "approved"
    )
    assert body["stage"] == "negotiation"
    await eventually(
        lambda: (
            "approval_approve"
            not in action_ids(
                next(m for m in slack.fake.messages(message.channel) if m.ts == message.ts)
            )
            or None
        ),
        "the request's message locked",
    )


async def test_a_reassignment_request_rejected_with_a_comment(slack: SlackStack) -> None:
    def chain(config: dict[str, Any]) -> None:
        config["approvals"] = {
            "reassignment": {"levels": [{"approvers": ["pool_manager"], "timeout": "1h"}]}
        }

    publish(slack.stack, chain)
    lead_id, owner = await assigned(slack)
    card = slack.card(owner)
    click = slack.requests.block_actions(
        owner, "lead_request_reassignment", channel=card.channel, message_ts=card.ts
    )
    assert (await slack.post(click)).status_code == 200
    views = await eventually(lambda: slack.fake.views_opened() or None, "the reason modal")
    submit = slack.requests.view_submission(
        owner, view_id=views[-1].id, values={"comment": {"comment_input": "Wrong territory"}}
    )
    assert (await slack.post(submit)).status_code == 200
    manager = slack.users["morgan.hale@example.com"]

    def request_message() -> Any:
        channel = slack.fake.dm_channel(manager)
        found = list(slack.fake.messages(channel)) if channel else []
        return next((m for m in found if "approval_reject" in action_ids(m)), None)

    message = await eventually(request_message, "the request in the manager's DM")
    reject = slack.requests.block_actions(
        manager, "approval_reject", channel=message.channel, message_ts=message.ts
    )
    assert (await slack.post(reject)).status_code == 200
    modal = await eventually(
        lambda: next((v for v in slack.fake.views_opened() if v.id != views[-1].id), None),
        "the comment modal",
    )
    empty = slack.requests.view_submission(manager, view_id=modal.id, values={})
    refused = await slack.post(empty)
    assert "errors" in refused.text  # a rejection needs a comment
    done = slack.requests.view_submission(
        manager, view_id=modal.id, values={"comment": {"comment_input": "Keep working it"}}
    )
    assert (await slack.post(done)).status_code == 200
    body = await until(
        slack.stack,
        lead_id,
        lambda b: any(e["type"] == "approval_decided" for e in b["events"]),
        20,
        "decided",
    )
    decided = next(e for e in body["events"] if e["type"] == "approval_decided")
    assert decided["data"].get("outcome") == "rejected", decided
    assert body["owner"]["email"] == next(e for e, u in slack.users.items() if u == owner)


async def test_the_home_tab_lists_open_leads_and_toggles_availability(slack: SlackStack) -> None:
    lead_id, owner = await assigned(slack, first_name="Hana", company="Umbra")
    opened = await slack.post(slack.requests.app_home_opened(owner))
    assert opened.status_code == 200
    home = await eventually(lambda: slack.fake.home_view(owner), "the home tab")
    text = str(home["blocks"])
    assert "Hana" in text and "Umbra" in text and "contact by" in text
    assert "home_away_today" in text
    view_id = slack.fake.workspace.home[owner].id
    click = slack.requests.block_actions(owner, "home_away_today", view_id=view_id)
    assert (await slack.post(click)).status_code == 200
    await eventually(
        lambda: "home_back" in str((slack.fake.home_view(owner) or {}).get("blocks")) or None,
        "the home tab saying away",
    )
    status = await slack.post(slack.requests.slash_command(owner, "/leadflow", "status"))
    assert "away until" in status.text
    assert (await lead(slack.stack, lead_id))["stage"] == "assigned"


async def test_socket_mode_carries_the_same_commands(slack: SlackStack) -> None:
    from cli_slack import serve_socket_mode

    settings = slack.stack.settings.model_copy(
        update={"slack_app_token": SecretStr(slack.fake.app_token)}
    )
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_socket_mode(settings, stop))
    try:
        await eventually(lambda: slack.fake.socket.connections or None, "the socket connection")
        avery = slack.users["avery.park@example.com"]
        envelope = slack.fake.socket.send(
            "slash_commands",
            {
                "command": "/leadflow",
                "text": "status",
                "user_id": avery,
                "team_id": "T1",
                "channel_id": slack.fake.open_dm(avery),
                "response_url": "",
                "trigger_id": "",
            },
        )
        ack = await asyncio.to_thread(slack.fake.socket.ack, envelope)
        assert "available for new leads" in str(ack.get("payload")), ack
    finally:
        stop.set()
        await serving


async def test_the_manager_reassigns_an_escalated_lead_from_slack(slack: SlackStack) -> None:
    publish(slack.stack, remind="1s", reassign="2s", escalate="3s", max_reassignments=0)
    lead_id, owner = await assigned(slack)
    manager = slack.users["morgan.hale@example.com"]

    def escalation() -> Any:
        channel = slack.fake.dm_channel(manager)
        found = list(slack.fake.messages(channel)) if channel else []
        return next((m for m in found if "lead_reassign" in action_ids(m)), None)

    message = await eventually(escalation, "the escalation with its Reassign button", within=20)
    click = slack.requests.block_actions(
        manager, "lead_reassign", channel=message.channel, message_ts=message.ts
    )
    assert (await slack.post(click)).status_code == 200
    posts = await eventually(lambda: slack.fake.response_posts() or None, "the answer")
    assert "Reassigned" in (posts[-1].text or ""), posts[-1].text
    body = await until(
        slack.stack, lead_id, lambda b: slack.users[b["owner"]["email"]] != owner, 15, "moved"
    )
    assert "reassigned" in [e["type"] for e in body["events"]]


async def test_a_pool_with_a_channel_gets_its_cards_there(slack: SlackStack) -> None:
    slack.fake.add_channel("inbound-leads")

    def channel(config: dict[str, Any]) -> None:
        next(p for p in config["pools"] if p["name"] == "Inbound")["slack_channel"] = (
            "#inbound-leads"
        )

    publish(slack.stack, channel)
    lead_id, owner = await assigned(slack)
    posted = await eventually(
        lambda: slack.fake.messages("#inbound-leads") or None, "the card in the pool's channel"
    )
    assert lead_id in str(posted[-1].blocks)
    assert slack.fake.dm_channel(owner) is None or not slack.fake.messages(
        slack.fake.dm_channel(owner) or ""
    )


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_each_win_is_posted_once_across_a_worker_kill(
    procs: Processes,
    client: Client,
    db: Database,
    temporal_target: str,
    task_queue: str,
    tmp_path: Path,
) -> None:
    """Four deals won at once; the worker (a real process, posting to the fake Slack) is
    killed with SIGKILL during the hand-offs and started again: each win is in the wins
    channel once, with one hand-off reply in its thread."""
    with running_slack() as fake:
        fake.add_channel("wins")
        for email in SCENARIO_REPS:
            fake.add_user(email, email.split("@")[0].replace(".", " ").title())
        env = leadflow_env(
            temporal_address=temporal_target,
            temporal_task_queue=task_queue,
            database_url=db.url,
            data_dir=tmp_path,
            api_token=API_TOKEN,
            lead_id_secret=LEAD_ID_SECRET,
            activity_timeout_s=KILLED_ACTIVITY_TIMEOUT_S,
            slack_bot_token=fake.token,
            slack_signing_secret=fake.signing_secret,
            slack_api_url=fake.api_url,
            slack_wins_channel="#wins",
            leaderboard_cron="",
        )
        worker = procs.cli("worker", "worker", env)
        async with web_only(client, db, task_queue, tmp_path) as stack:
            publish(stack)
            lead_ids = []
            for index in range(4):
                response = await stack.submit(
                    email=f"win{index}@co{index}.example", company=f"Winco {index}"
                )
                lead_ids.append(response.json()["lead_id"])
            for lead_id in lead_ids:
                await stack.wait_for(lead_id, within=RECOVERY_S)
                for type_ in ("contacted", "meeting_booked", "qualified", "proposal_sent"):
                    await event(stack, lead_id, type_)
            wins = [
                asyncio.create_task(event(stack, i, "won", amount="5000.00", currency="EUR"))
                for i in lead_ids
            ]
            await eventually(
                lambda: any(c["converted"] for c in handoff_counts(db, lead_ids).values()),
                "a lead converted",
                within=RECOVERY_S,
                interval=0.01,
            )
            kill_tree(worker)
            procs.cli("worker", "worker", env)
            await asyncio.gather(*wins)
            for lead_id in lead_ids:
                await until(
                    stack,
                    lead_id,
                    lambda b: b["stage"] == "handed_off",
                    RECOVERY_S,
                    f"handed off\n{procs.tails()}",
                )
            await asyncio.sleep(0.5)
        posts = fake.messages("#wins")
        for index in range(4):
            top = [m for m in posts if m.thread_ts is None and f"Winco {index}" in m.text]
            assert len(top) == 1, [m.text for m in posts]
            replies = [m for m in posts if m.thread_ts == top[0].ts]
            assert len(replies) == 1, [m.text for m in replies]


async def test_the_card_follows_a_stage_change_made_elsewhere(slack: SlackStack) -> None:
    lead_id, owner = await assigned(slack)
    card = slack.card(owner)
    await event(slack.stack, lead_id, "contacted")  # through the API, not Slack
    now = await eventually(
        lambda: ((m := slack.card(owner)) and "lead_contacted" not in action_ids(m) and m) or None,
        "the card updated for the new stage",
    )
    assert now.ts == card.ts and "Contacted · by" in str(now.blocks)


async def test_a_repeated_event_is_handled_once(slack: SlackStack) -> None:
    _, owner = await assigned(slack)
    first = slack.requests.app_home_opened(owner, event_id="Ev0REPEAT01")
    again = slack.requests.app_home_opened(owner, event_id="Ev0REPEAT01", retry_num=1)
    for signed in (first, again):
        assert (await slack.post(signed)).status_code == 200
    await eventually(lambda: slack.fake.calls("views.publish") or None, "the home tab")
    await asyncio.sleep(0.5)
    assert len(slack.fake.calls("views.publish")) == 1
