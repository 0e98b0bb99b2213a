"""Telling a lead's owner about it: the lead's card when it is routed (``notify_owner``),
and the one message a rep gets for the leads an import gave them (``import_summary``).

``notify_owner`` records ``owner_notified`` once per idempotency key, with the speed to
lead. For an imported lead the notice is quiet: recorded, but no message is sent (its
owner hears of the import's leads in one summary when the import finishes)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from temporalio import activity

from activities.base import StepActivities
from activities.errors import classified
from bots.blocks.lead_card import lead_card_blocks, lead_card_text
from bots.blocks.text import context, cut, esc, section
from bots.lead_cards import card_of, lead_card
from bots.notifier import Message
from domain.lead import EventType
from domain.lifecycle import NotifyOwnerInput, NotifyOwnerResult
from store import leads as lead_store
from store.models import utcnow

log = logging.getLogger("leadflow.activities")

IMPORT_SUMMARY = "import_summary"


class NotifyActivities(StepActivities):
    """The owner's notice of a new lead."""

    @activity.defn(name="notify_owner")
    @classified
    def notify_owner(self, params: NotifyOwnerInput) -> NotifyOwnerResult:
        """Tell the owner about the new lead, once (an imported lead: record it only)."""
        quiet = params.origin.quiet_notice
        notification_id = None if quiet else self._send_card(params)
        with self._db.session() as session:
            done = lead_store.event_recorded(session, params.idempotency_key)
            if done is not None:
                return NotifyOwnerResult(
                    notification_id=notification_id,
                    speed_to_lead_ms=int(done.data.get("speed_to_lead_ms") or 0),
                )
            now = utcnow()
            elapsed = max(0, round((now - params.received_at).total_seconds() * 1000))
            lead = lead_store.get_lead(session, params.lead_id)
            if lead is not None:
                lead.notified_at = now
                # ``/metrics``' speed-to-lead histogram is the live form's: an imported lead
                # keeps its time only on the event.
                lead.speed_to_lead_ms = None if quiet else elapsed
                # The KPIs' speed-to-lead SLA is the first owner's first deadline (an
                # imported lead has none: it stays out of the SLA compliance).
                lead.sla_due_at = lead.sla_due_at or params.sla_due
            lead_store.add_event(
                session,
                params.lead_id,
                EventType.owner_notified,
                idempotency_key=params.idempotency_key,
                occurred_at=now,
                data={
                    "rep_id": params.owner.rep_id,
                    "notification_id": notification_id,
                    "speed_to_lead_ms": elapsed,
                    **({"quiet": True} if quiet else {}),
                },
            )
        return NotifyOwnerResult(notification_id=notification_id, speed_to_lead_ms=elapsed)

    def _send_card(self, params: NotifyOwnerInput) -> int:
        """The lead's card to its owner (or the pool's channel), once per key."""
        crm_url = self._crm.record_url(params.crm_id) if params.crm_id else None
        lead_url = self._lead_url(params.lead_id)
        facts = params.card
        if facts is not None:  # what the assignment handed on: nothing to read
            card = card_of(
                params.lead_id,
                facts,
                owner=params.owner,
                submission=params.submission,
                score=params.score,
                grade=params.grade,
                lead_url=lead_url,
                sla_due=params.sla_due,
                crm_url=crm_url,
            )
            channel = facts.channel
        else:  # a run that started before the card travelled with the assignment
            with self._db.read() as session:
                card = lead_card(
                    session,
                    params.lead_id,
                    owner=params.owner,
                    submission=params.submission,
                    score=params.score,
                    grade=params.grade,
                    lead_url=lead_url,
                    sla_due=params.sla_due,
                    crm_url=crm_url,
                )
                config = self._routers.current(session).config
            pool = next((p for p in config.pools if p.name == card.pool), None)
            channel = pool.slack_channel if pool is not None else None
        message = Message(
            kind="new_lead",
            lead_id=params.lead_id,
            text=lead_card_text(card),
            blocks=lead_card_blocks(card),
            channel=channel,
        )
        return self._notifier.notify(params.owner, message, params.idempotency_key)


def import_summary_message(
    count: int, filename: str, *, base_url: str, rep_id: int, source: str
) -> Message:
    """The summary a rep gets: "N leads from the import of FILE were assigned to you",
    with a link to the admin leads list filtered on the rep and the import's source."""
    leads = "1 lead" if count == 1 else f"{count:,} leads"
    were = "was" if count == 1 else "were"
    name = cut(filename)
    url = f"{base_url}/admin/leads?" + urlencode({"owner": rep_id, "source": source})
    text = f"{leads} from the import of {name} {were} assigned to you: {url}"
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Open my leads"},
        "url": url,
        "action_id": "open_import_leads",
    }
    blocks = [
        section(f"*{leads}* from the import of *{esc(name)}* {were} assigned to you."),
        context(
            "They existed before Leadflow: no speed-to-lead clock runs on them, and this "
            "message replaces one per lead."
        ),
        {"type": "actions", "elements": [button]},
    ]
    return Message(kind=IMPORT_SUMMARY, text=text, blocks=blocks)
