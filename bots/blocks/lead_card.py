"""The lead's card: the message its owner gets on assignment, with everything needed to
act on it and one button per thing they can do now. Clicking a button changes the lead;
the card is then rebuilt for the new stage (who did what, when; only the buttons that
still apply), so it never shows a stage the lead has left.

Action ids are the contract with the Slack app (``bots/slack_app.py``) and the inbox:
every button's ``value`` is the lead id."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from bots.blocks.text import (
    Blocks,
    context,
    cut,
    esc,
    fields,
    mention,
    section,
    slack_time,
)
from domain.lead import Stage
from domain.stages import LeadEventType, applies

CONTACTED = "lead_contacted"
MEETING_BOOKED = "lead_meeting_booked"
NOT_A_FIT = "lead_not_a_fit"
REQUEST_REASSIGNMENT = "lead_request_reassignment"
WHY_ME = "lead_why_me"

# button: (action id, label, the event it sends, style)
BUTTONS: list[tuple[str, str, LeadEventType, str | None]] = [
    (CONTACTED, "Contacted", LeadEventType.contacted, "primary"),
    (MEETING_BOOKED, "Meeting booked", LeadEventType.meeting_booked, None),
    (NOT_A_FIT, "Not a fit", LeadEventType.disqualified, "danger"),
    (REQUEST_REASSIGNMENT, "Request reassignment", LeadEventType.reassign, None),
]
EVENT_OF = {action: event for action, _, event, _ in BUTTONS}
STRATEGIES = {
    "round_robin": "round robin",
    "weighted": "weighted rotation",
    "least_loaded": "least-loaded rotation",
    "named": "named rep",
}
STAGE_WORDS = {
    Stage.assigned: "Assigned",
    Stage.contacted: "Contacted",
    Stage.meeting_booked: "Meeting booked",
    Stage.presentation: "Presentation held",
    Stage.qualified: "Qualified",
    Stage.proposal: "Proposal sent",
    Stage.negotiation: "In negotiation",
    Stage.won: "Won",
    Stage.handed_off: "Handed off",
    Stage.disqualified: "Not a fit",
    Stage.nurturing: "In nurture",
    Stage.lost: "Lost",
}


class LastAction(BaseModel):
    what: str  # "Contacted", "Not a fit: no budget"
    by: str  # the person's name
    at: datetime


class LeadCard(BaseModel):
    """What the card shows. Values from the form are escaped by the builder."""

    lead_id: str
    name: str
    email: str
    company: str | None = None
    title: str | None = None
    country: str | None = None
    source: str | None = None
    score: int | None = None
    grade: str | None = None
    score_reasons: list[str] = Field(default_factory=list)
    rule: str | None = None
    pool: str | None = None
    strategy: str | None = None
    owner_name: str
    owner_slack_id: str | None = None
    stage: Stage = Stage.assigned
    sla_due: datetime | None = None
    crm_url: str | None = None
    lead_url: str | None = None
    last: LastAction | None = None


def lead_card_text(card: LeadCard) -> str:
    """The plain-text fallback (notifications, the inbox list)."""
    company = f" at {card.company}" if card.company else ""
    scored = f", score {card.score}" if card.score is not None else ""
    return f"New lead for {card.owner_name}: {card.name}{company} <{card.email}>{scored}"


def lead_card_blocks(card: LeadCard) -> Blocks:
    who = mention(card.owner_name, card.owner_slack_id)
    name = esc(cut(card.name))
    headline = (
        f"{who}, you have a new lead: *{name}*"
        if card.last is None
        else f"*{name}* · {esc(STAGE_WORDS.get(card.stage, card.stage.value))}"
    )
    score = f"{card.score}" + (f" ({card.grade})" if card.grade else "") if card.score else "—"
    blocks: Blocks = [
        section(headline),
        fields(
            ("Company", card.company or "—"),
            ("Title", card.title or "—"),
            ("Country", card.country or "—"),
            ("Source", card.source or "web form"),
            ("Email", card.email),
            ("Score", score),
        ),
    ]
    notes = []
    if card.score_reasons:
        notes.append("Score: " + "; ".join(esc(cut(r, 80)) for r in card.score_reasons[:3]))
    why = routing_reason(card)
    if why:
        notes.append(why)
    if card.sla_due is not None and card.stage is Stage.assigned:
        notes.append(f"Contact by {slack_time(card.sla_due)}")
    if notes:
        blocks.append(context("\n".join(notes)))
    if card.last is not None:
        blocks.append(
            context(
                f"{esc(cut(card.last.what, 300))} · by {esc(cut(card.last.by))} · "
                f"{slack_time(card.last.at)}"
            )
        )
    blocks.append(
        {"type": "actions", "block_id": f"lead:{card.lead_id}", "elements": buttons(card)}
    )
    return blocks


def routing_reason(card: LeadCard) -> str:
    """ "rule *DACH enterprise*, weighted rotation in pool *EMEA AE*"."""
    if not card.rule:
        return ""
    text = f"Routed by rule *{esc(cut(card.rule, 80))}*"
    if card.pool:
        how = STRATEGIES.get(card.strategy or "", "rotation")
        text += f", {how} in pool *{esc(cut(card.pool, 80))}*"
    return text


def buttons(card: LeadCard) -> list[dict[str, object]]:
    """The buttons that apply in the card's stage, then links and *Why me?*."""
    out: list[dict[str, object]] = []
    for action, label, event, style in BUTTONS:
        if not applies(card.stage, event):
            continue
        button: dict[str, object] = {
            "type": "button",
            "text": {"type": "plain_text", "text": label},
            "action_id": action,
            "value": card.lead_id,
        }
        if style:
            button["style"] = style
        out.append(button)
    out.append(_button(WHY_ME, "Why me?", value=card.lead_id))
    if card.crm_url:
        out.append(_button("open_crm", "Open in CRM", url=card.crm_url))
    if card.lead_url:
        out.append(_button("open_lead", "Open lead", url=card.lead_url))
    return out


def _button(
    action: str, label: str, *, value: str | None = None, url: str | None = None
) -> dict[str, object]:
    button: dict[str, object] = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action,
    }
    if value is not None:
        button["value"] = value
    if url is not None:
        button["url"] = url
    return button


def refusal_text(stage: Stage, allowed: list[str], tried: str) -> str:
    """What a click that no longer applies is told (ephemeral)."""
    now = STAGE_WORDS.get(stage, stage.value)
    return f"“{tried}” no longer applies: this lead is now *{esc(now)}*. " + (
        "The card shows what you can do now." if allowed else "Its lifecycle has ended."
    )
