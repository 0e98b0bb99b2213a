"""The Slack app (slack-bolt, async): what reps do from a lead's card.

Mounted by the web app at ``POST /slack/events``; Bolt verifies every request's signature
(v0 HMAC over the timestamp and the raw body, 5-minute window) before any handler runs,
and answers 401 to an unsigned, stale or forged one.

Every click is acknowledged at once (Slack waits 3 seconds), checked (only the lead's
owner, its pool's manager or an admin may act: anyone else is told whose lead it is, and
nothing changes), then sent through the lifecycle's one entry point
(``bots.events.send_lead_event``, as ``POST /leads/{id}/events``). The card is then
rebuilt for the stage the lifecycle answered — also when the click no longer applied, so
the card never shows a stage the lead has left — and the clicker is told why in an
ephemeral message (through the interaction's ``response_url``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from bots import slack_commands
from bots.blocks.lead_card import (
    CONTACTED,
    EVENT_OF,
    MEETING_BOOKED,
    NOT_A_FIT,
    WHY_ME,
    LastAction,
    LeadCard,
    lead_card_blocks,
    lead_card_text,
    refusal_text,
)
from bots.blocks.lifecycle import REASSIGN_ACTION
from bots.blocks.text import esc
from bots.blocks.why_me import why_me_blocks, why_me_text
from bots.events import EventOutcome, Sent, send_lead_event
from bots.lead_cards import stored_card
from bots.slack_approvals import SlackApprovals
from bots.slack_home import SlackHome
from bots.slack_people import Actor, actor_from_profile, permission, rep_by_slack_id
from domain.lead import Stage
from domain.stages import LeadEventIn, LeadEventType
from store.db import Database
from store.models import Lead

log = logging.getLogger("leadflow.slack")

NOT_A_FIT_VIEW = "not_a_fit"
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"
LABELS = {CONTACTED: "Contacted", MEETING_BOOKED: "Meeting booked", NOT_A_FIT: "Not a fit"}


class SlackLeads:
    """The handlers, with what they need handed in."""

    def __init__(self, db: Database, temporal: Client, base_url: str) -> None:
        self._db = db
        self._temporal = temporal
        self._base_url = base_url
        self._approvals = SlackApprovals(temporal, self._actor, _Responder)

    def register(self, app: AsyncApp) -> None:
        self._approvals.register(app)
        SlackHome(self._db, self._temporal, self._actor, self._base_url).register(app)
        app.action(CONTACTED)(self.on_event_button)
        app.action(MEETING_BOOKED)(self.on_event_button)
        app.action(NOT_A_FIT)(self.on_not_a_fit)
        app.action(WHY_ME)(self.on_why_me)
        app.action(REASSIGN_ACTION)(self.on_reassign)
        app.action("open_lead")(self.on_link)
        app.action("open_crm")(self.on_link)
        app.view(NOT_A_FIT_VIEW)(self.on_not_a_fit_submitted)
        app.command("/leadflow")(self.on_command)

    # -- /leadflow ----------------------------------------------------------------------

    async def on_command(self, ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        actor = await self._actor(client, body["user_id"])
        words = str(body.get("text") or "").split()
        if words and words[0].lower() == "discount":
            reply = await self._approvals.discount_command(actor, words[1:])
        else:
            reply = await slack_commands.answer(self._db, actor, " ".join(words))
        await ack(text=reply)  # the answer is seen by the rep only

    # -- buttons ----------------------------------------------------------------------

    async def on_link(self, ack: Any) -> None:
        await ack()  # a link button: Slack opens the URL itself

    async def on_event_button(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        await ack()
        action = body["actions"][0]
        lead_id = str(action.get("value") or "")
        actor = await self._actor(client, body["user"]["id"])
        if not await self._may_act(lead_id, actor, respond):
            return
        event = LeadEventIn(
            type=EVENT_OF[action["action_id"]],
            event_id=f"slack-{action.get('action_ts') or body.get('trigger_id')}"[:100],
            by=actor.email or f"slack:{actor.slack_id}",
        )
        outcome = await send_lead_event(self._temporal, lead_id, event)
        await self._after(
            client,
            respond,
            body,
            lead_id,
            actor,
            outcome,
            LABELS.get(action["action_id"], action["action_id"]),
        )

    async def on_reassign(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        """The manager's **Reassign** on an escalation: the lead goes to the next rep the
        published rules choose (never back to one who let it lapse)."""
        await ack()
        lead_id = str(body["actions"][0].get("value") or "")
        actor = await self._actor(client, body["user"]["id"])
        if not await self._may_act(lead_id, actor, respond):
            return
        event = LeadEventIn(
            type=LeadEventType.reassign,
            event_id=f"slack-{body['actions'][0].get('action_ts')}"[:100],
            by=actor.email or f"slack:{actor.slack_id}",
        )
        outcome = await send_lead_event(self._temporal, lead_id, event)
        if outcome.sent is Sent.applied and outcome.result is not None:
            who = outcome.result.owner_email or "nobody yet (it waits in its queue)"
            text = f"Reassigned: the lead is now with {esc(who)}."
        elif outcome.sent is Sent.not_allowed and outcome.stage is not None:
            text = refusal_text(outcome.stage, outcome.allowed, "Reassign")
        else:
            text = f"The lead could not be reassigned: {esc(outcome.message or 'it has ended')}."
        await respond(text=text, response_type="ephemeral", replace_original=False)

    async def on_not_a_fit(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        await ack()
        lead_id = str(body["actions"][0].get("value") or "")
        # The trigger is good for 3 seconds: the modal opens before anything slow.
        actor = rep_by_slack_id(self._db, body["user"]["id"])
        if actor is not None and not await self._may_act(lead_id, actor, respond):
            return
        container = body.get("container") or {}
        metadata = json.dumps(
            {
                "lead_id": lead_id,
                "channel": container.get("channel_id"),
                "ts": container.get("message_ts"),
                "response_url": body.get("response_url"),
            }
        )
        await client.views_open(trigger_id=body["trigger_id"], view=_reason_modal(metadata))

    async def on_not_a_fit_submitted(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        values = view.get("state", {}).get("values", {})
        reason = str(values.get(REASON_BLOCK, {}).get(REASON_INPUT, {}).get("value") or "")
        reason = reason.strip()
        if not reason:
            await ack(response_action="errors", errors={REASON_BLOCK: "Say why it is not a fit"})
            return
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        lead_id = str(meta.get("lead_id") or "")
        actor = await self._actor(client, body["user"]["id"])
        respond = _Responder(client, meta.get("response_url"))
        if not await self._may_act(lead_id, actor, respond):
            return
        event = LeadEventIn(
            type=LeadEventType.disqualified,
            event_id=f"slack-view-{view.get('id')}"[:100],
            reason=reason[:500],
            by=actor.email or f"slack:{actor.slack_id}",
        )
        outcome = await send_lead_event(self._temporal, lead_id, event)
        message = {"channel": meta.get("channel"), "ts": meta.get("ts")}
        await self._after(
            client,
            respond,
            {"container": {"channel_id": message["channel"], "message_ts": message["ts"]}},
            lead_id,
            actor,
            outcome,
            f"Not a fit: {reason}",
        )

    async def on_why_me(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        await ack()
        lead_id = str(body["actions"][0].get("value") or "")
        actor = await self._actor(client, body["user"]["id"])
        if not await self._may_act(lead_id, actor, respond):
            return
        decision, owner = await asyncio.to_thread(self._decision, lead_id)
        await respond(
            text=why_me_text(decision),
            blocks=why_me_blocks(decision, owner),
            response_type="ephemeral",
            replace_original=False,
        )

    # -- helpers ----------------------------------------------------------------------

    async def _actor(self, client: AsyncWebClient, slack_id: str) -> Actor:
        known = await asyncio.to_thread(rep_by_slack_id, self._db, slack_id)
        if known is not None:
            return known
        try:
            answer = await client.users_info(user=slack_id)
        except SlackApiError as err:
            log.warning("could not read the Slack user %s: %s", slack_id, err.response["error"])
            return Actor(slack_id, None, slack_id)
        return actor_from_profile(slack_id, answer.get("user") or {})

    async def _may_act(self, lead_id: str, actor: Actor, respond: Any) -> bool:
        allowed = await asyncio.to_thread(permission, self._db, lead_id, actor)
        if allowed.allowed:
            return True
        if not allowed.found:
            text = "Leadflow does not know this lead any more."
        else:
            owner = esc(allowed.owner_name or "nobody yet")
            text = (
                f"This lead belongs to {owner}: only its owner, the pool's manager or an "
                "admin can act on it. Nothing was changed."
            )
        await respond(text=text, response_type="ephemeral", replace_original=False)
        return False

    async def _after(
        self,
        client: AsyncWebClient,
        respond: Any,
        body: dict[str, Any],
        lead_id: str,
        actor: Actor,
        outcome: EventOutcome,
        label: str,
    ) -> None:
        """Rebuild the card for the stage the lifecycle answered; tell the clicker when
        their click did not apply."""
        last = None
        if outcome.sent is Sent.applied and outcome.result is not None:
            last = LastAction(what=label, by=actor.name, at=datetime.now(UTC))
        card = await asyncio.to_thread(self._card, lead_id, outcome.stage, last)
        container = body.get("container") or {}
        channel, ts = container.get("channel_id"), container.get("message_ts")
        if card is not None and channel and ts:
            try:
                await client.chat_update(
                    channel=channel,
                    ts=ts,
                    text=esc(lead_card_text(card)),
                    blocks=lead_card_blocks(card),
                )
            except SlackApiError as err:
                log.warning("could not update a lead card: %s", err.response["error"])
        if outcome.sent is Sent.applied:
            return
        if outcome.sent is Sent.not_allowed and outcome.stage is not None:
            text = refusal_text(outcome.stage, outcome.allowed, label)
        elif outcome.sent is Sent.no_lifecycle:
            text = "This lead's lifecycle has ended: nothing can change it any more."
        elif outcome.sent is Sent.unavailable:
            text = "Leadflow could not be reached just now; nothing was changed. Try again."
        else:
            text = f"Leadflow refused this: {esc(outcome.message or 'unknown reason')}"
        await respond(text=text, response_type="ephemeral", replace_original=False)

    def _card(self, lead_id: str, stage: Stage | None, last: LastAction | None) -> LeadCard | None:
        with self._db.read() as session:
            lead = session.get(Lead, lead_id)
            if lead is None:
                return None
            return stored_card(session, lead_id, stage or Stage(lead.stage), last, self._base_url)

    def _decision(self, lead_id: str) -> tuple[dict[str, Any], str]:
        with self._db.read() as session:
            lead = session.get(Lead, lead_id)
            if lead is None:
                return {}, "nobody"
            decision: dict[str, Any] = (lead.routing or {}).get("decision") or {}
            return decision, lead.owner.name if lead.owner is not None else "nobody"


class _Responder:
    """``respond`` for a modal's submission, which has no response_url of its own: the
    one of the click that opened the modal."""

    def __init__(self, client: AsyncWebClient, url: str | None) -> None:
        self._client = client
        self._url = url

    async def __call__(self, **message: Any) -> None:
        if not self._url:
            return
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        await AsyncWebhookClient(self._url).send_dict(message)


def _reason_modal(metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": NOT_A_FIT_VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Not a fit"},
        "submit": {"type": "plain_text", "text": "Disqualify"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why is this lead not a fit?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": 500,
                    "placeholder": {"type": "plain_text", "text": "No budget this year, …"},
                },
            }
        ],
    }


def build_slack_app(
    signing_secret: str,
    client: AsyncWebClient,
    db: Database,
    temporal: Client,
    base_url: str,
) -> AsyncApp:
    app = AsyncApp(signing_secret=signing_secret, client=client)
    SlackLeads(db, temporal, base_url).register(app)
    return app
