"""The App Home tab: a rep's open leads, what each waits for, and whether new leads can
reach them, with a one-click availability toggle (the same availability as
``/leadflow away`` and ``/leadflow back``)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from temporalio.client import Client

from bots.blocks.lead_card import STAGE_WORDS
from bots.blocks.text import Blocks, context, cut, esc, section, slack_time
from bots.slack_people import Actor, rep_timezone
from domain.lead import Stage, workflow_id_for
from domain.lifecycle import TimerName
from store import availability, crm_users
from store.db import Database
from store.models import Lead, Rep

AWAY_TODAY, BACK = "home_away_today", "home_back"
OPEN_STAGES = [s.value for s in Stage if s not in (Stage.disqualified, Stage.handed_off, Stage.won)]
MAX_LEADS = 15
QUERY_TIMEOUT = timedelta(seconds=2)


class SlackHome:
    def __init__(self, db: Database, temporal: Client, actor: Any, base_url: str) -> None:
        self._db = db
        self._temporal = temporal
        self._actor = actor
        self._base_url = base_url

    def register(self, app: AsyncApp) -> None:
        app.event("app_home_opened")(self.on_opened)
        app.action(AWAY_TODAY)(self.on_toggle)
        app.action(BACK)(self.on_toggle)
        app.action(re.compile(r"^open_lead_"))(self.on_link)

    async def on_link(self, ack: Any) -> None:
        await ack()  # a link button: Slack opens the URL itself

    async def on_opened(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if event.get("tab") not in (None, "home"):
            return
        # Slack delivers an event again when unsure (X-Slack-Retry-Num): once each.
        event_id = str(body.get("event_id") or "")
        if event_id and not await asyncio.to_thread(self._first_time, event_id):
            return
        await self.publish(client, str(event["user"]))

    def _first_time(self, event_id: str) -> bool:
        with self._db.session() as session:
            if crm_users.seen_inbound(session, "slack", event_id):
                return False
            crm_users.record_inbound(session, "slack", event_id)
            return True

    async def on_toggle(self, ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = str(body["user"]["id"])
        actor: Actor = await self._actor(client, user)
        away = body["actions"][0]["action_id"] == AWAY_TODAY
        await asyncio.to_thread(self._toggle, actor, away)
        await self.publish(client, user)

    async def publish(self, client: AsyncWebClient, user: str) -> None:
        actor: Actor = await self._actor(client, user)
        leads, away, zone = await asyncio.to_thread(self._read, actor)
        deadlines = await self._deadlines([lead_id for lead_id, *_ in leads])
        await client.views_publish(
            user_id=user,
            view={"type": "home", "blocks": self._blocks(actor, leads, away, zone, deadlines)},
        )

    # -- reading and writing ----------------------------------------------------------

    def _read(
        self, actor: Actor
    ) -> tuple[list[tuple[str, str, str | None, str, datetime]], datetime | None, ZoneInfo]:
        now = datetime.now(UTC)
        with self._db.read() as session:
            rep = (
                session.scalars(select(Rep).where(Rep.email == actor.email)).first()
                if actor.email
                else None
            )
            if rep is None:
                return [], None, ZoneInfo("UTC")
            rows = session.scalars(
                select(Lead)
                .where(Lead.owner_rep_id == rep.id, Lead.stage.in_(OPEN_STAGES))
                .order_by(Lead.received_at.desc())
                .limit(MAX_LEADS)
            )
            leads = [
                (
                    lead.id,
                    _name(lead.data),
                    (lead.data or {}).get("company"),
                    lead.stage,
                    lead.received_at,
                )
                for lead in rows
            ]
            return (
                leads,
                availability.away_of(session, rep.email, now),
                rep_timezone(session, rep.email),
            )

    def _toggle(self, actor: Actor, away: bool) -> None:
        if actor.email is None:
            return
        with self._db.session() as session:
            if not away:
                availability.set_back(session, actor.email)
                return
            zone = rep_timezone(session, actor.email)
            tomorrow = datetime.now(zone).date() + timedelta(days=1)
            until = datetime.combine(tomorrow, time(0), tzinfo=zone).astimezone(UTC)
            availability.set_away(session, actor.email, until, f"slack:{actor.slack_id}")

    async def _deadlines(self, lead_ids: list[str]) -> dict[str, datetime]:
        """The speed-to-lead deadline of each lead that has one running (asked of its
        workflow; a lead that cannot be asked now shows none)."""

        async def one(lead_id: str) -> tuple[str, datetime | None]:
            try:
                state = await self._temporal.get_workflow_handle(workflow_id_for(lead_id)).query(
                    "state", rpc_timeout=QUERY_TIMEOUT
                )
            except Exception:  # ended, or unreachable: no deadline to show
                return lead_id, None
            for timer in (state or {}).get("timers", []):
                if timer.get("name") == TimerName.sla_remind.value:
                    return lead_id, datetime.fromisoformat(timer["fires_at"])
            return lead_id, None

        found = await asyncio.gather(*(one(lead_id) for lead_id in lead_ids))
        return {lead_id: due for lead_id, due in found if due is not None}

    # -- the view ---------------------------------------------------------------------

    def _blocks(
        self,
        actor: Actor,
        leads: list[tuple[str, str, str | None, str, datetime]],
        away: datetime | None,
        zone: ZoneInfo,
        deadlines: dict[str, datetime],
    ) -> Blocks:
        if actor.email is None:
            return [section("Leadflow could not read your email from Slack.")]
        if away is not None:
            status = f"*You are away* until {slack_time(away)}: no new leads reach you."
            toggle = _button(BACK, "I'm back", "primary")
        else:
            status = "*You are available* for new leads."
            toggle = _button(AWAY_TODAY, "Away for the rest of today", None)
        blocks: Blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": "Your leads"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": status}, "accessory": toggle},
            {"type": "divider"},
        ]
        if not leads:
            blocks.append(section("No open leads right now."))
        for lead_id, name, company, stage, received in leads:
            who = esc(cut(name)) + (f" · {esc(cut(company))}" if company else "")
            words = STAGE_WORDS.get(Stage(stage), stage)
            due = deadlines.get(lead_id)
            waits = f" · contact by {slack_time(due)}" if due else ""
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"*{who}*\n{esc(words)}{waits} · received {slack_time(received)}",
                    },
                    "accessory": {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open"},
                        "url": f"{self._base_url}/admin/leads/{lead_id}",
                        "action_id": f"open_lead_{lead_id}"[:255],
                    },
                }
            )
        blocks.append(context(f"Times in your time zone · configured zone {zone.key}"))
        return blocks


def _button(action: str, label: str, style: str | None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action,
    }
    if style:
        button["style"] = style
    return button


def _name(data: dict[str, Any] | None) -> str:
    data = data or {}
    full = " ".join(str(data.get(k) or "") for k in ("first_name", "last_name")).strip()
    return full or str(data.get("email") or "a lead")
