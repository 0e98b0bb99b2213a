"""The lead card's buttons in the inbox, for when Slack is not configured: **Contacted**,
**Meeting booked**, **Not a fit** (with the reason), **Request reassignment** (with the
reason) and **Why me?** (the lead page's routing explanation), each a CSRF-protected form
posting to ``POST /admin/inbox/leads/{lead_id}/events``.

The same rules as the Slack app (``bots/slack_app.py``): only the buttons that apply in
the lead's stage *now* (read from the ``leads`` table: the card's stored blocks may be
stale), shown to and accepted from only the lead's owner, the manager of the pool that
routed it and admins (``bots.slack_people.permission``); events go through the
lifecycle's one entry point (``bots.events.send_lead_event``) as the signed-in user, a
reassignment to the lead's workflow as ``request_approval``
(``bots.lead_requests.request_approval``). Each rendered form carries its own nonce, the
event's id: a double submit is applied once. What became of the click is told in the
flash message on the inbox."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCStatusCode

from bots.blocks.lead_card import (
    BUTTONS,
    CONTACTED,
    MEETING_BOOKED,
    NOT_A_FIT,
    REQUEST_REASSIGNMENT,
    STAGE_WORDS,
)
from bots.events import EventOutcome, Sent, send_lead_event
from bots.lead_requests import Asked, RequestOutcome, request_approval
from bots.slack_people import Actor, Permission, permission
from domain.approvals import ApprovalKind
from domain.lead import Stage, normalize_email
from domain.stages import LeadEventIn, LeadEventType, applies
from domain.users import Role
from store import leads as lead_store
from store.models import Notification
from web.admin.deps import AdminUser, CsrfForm, Viewer
from web.admin.leads import name_of
from web.admin.render import FlashKind, flash
from web.deps import AppContext, Context
from web.leads import LEAD_ID

router = APIRouter()
INBOX = "/admin/inbox"
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# The lead page's routing explanation ("Why this owner").
WHY_ANCHOR = "routing-h"
MAX_REASON = 500


@dataclass(frozen=True)
class Action:
    name: str  # the form's ``action`` value
    label: str
    event: LeadEventType  # decides where it applies (as on the Slack card)
    style: str  # the button's class: primary, danger or ""
    prompt: str | None = None  # the reason's label, when a reason is required
    done: str = ""  # the flash once applied


# The card's buttons (``bots.blocks.lead_card.BUTTONS``), in its order, as forms.
_FORMS = {
    CONTACTED: ("contacted", None, "Marked contacted"),
    MEETING_BOOKED: ("meeting_booked", None, "Marked meeting booked"),
    NOT_A_FIT: ("disqualified", "Why is it not a fit?", "Marked not a fit"),
    REQUEST_REASSIGNMENT: ("request_reassignment", "Why should someone else take it?", ""),
}
ACTIONS: dict[str, Action] = {
    name: Action(name, label, event, style or "", prompt, done)
    for action_id, label, event, style in BUTTONS
    for name, prompt, done in [_FORMS[action_id]]
}


@dataclass(frozen=True)
class Button:
    action: Action
    nonce: str  # this form's own: the event's id


@dataclass(frozen=True)
class CardActions:
    """What the inbox shows under a lead card's message."""

    lead_id: str
    stage: str
    stage_label: str
    may_act: bool
    owner_name: str | None
    buttons: list[Button]

    @property
    def why_url(self) -> str:
        return f"/admin/leads/{self.lead_id}#{WHY_ANCHOR}"

    @property
    def quick(self) -> list[Button]:
        """The one-click buttons."""
        return [b for b in self.buttons if b.action.prompt is None]

    @property
    def with_reason(self) -> list[Button]:
        """The buttons that ask why first."""
        return [b for b in self.buttons if b.action.prompt is not None]


def stage_label(stage: str) -> str:
    try:
        return STAGE_WORDS.get(Stage(stage), stage.replace("_", " ").capitalize())
    except ValueError:
        return stage.replace("_", " ").capitalize()


def has_card(row: Notification) -> bool:
    """Whether ``row`` is a lead card: a new lead's message, or one carrying the card's
    actions block."""
    if not row.lead_id:
        return False
    if row.kind == "new_lead":
        return True
    blocks = (row.blocks or {}).get("blocks") or []
    block_id = f"lead:{row.lead_id}"
    return any(
        isinstance(b, dict) and b.get("type") == "actions" and b.get("block_id") == block_id
        for b in blocks
    )


def actor_of(user: AdminUser) -> Actor:
    """The signed-in user as ``permission`` knows people: by their email."""
    return Actor(slack_id="", email=normalize_email(user.email), name=user.name)


def card_actions(
    context: AppContext, user: AdminUser, rows: list[Notification]
) -> dict[int, CardActions]:
    """The actions of each lead card among ``rows``, by the row's id (blocking)."""
    cards = [row for row in rows if has_card(row)]
    lead_ids = list(dict.fromkeys(str(row.lead_id) for row in cards))
    with context.db.read() as session:
        leads = {
            lead_id: (lead.stage, lead.owner.name if lead.owner else None)
            for lead_id, lead in lead_store.leads_by_id(session, lead_ids).items()
        }
    actor = actor_of(user)
    allowed = {
        # An admin may act on every lead (``permission``'s last check): nothing to look up.
        lead_id: user.role is Role.admin or permission(context.db, lead_id, actor).allowed
        for lead_id in leads
    }
    out: dict[int, CardActions] = {}
    for row in cards:
        lead_id = str(row.lead_id)
        if lead_id not in leads:
            continue
        stage, owner_name = leads[lead_id]
        may_act = allowed[lead_id]
        buttons = [
            Button(action, secrets.token_urlsafe(12))
            for action in ACTIONS.values()
            if may_act and _applies(stage, action.event)
        ]
        out[row.id] = CardActions(lead_id, stage, stage_label(stage), may_act, owner_name, buttons)
    return out


def _applies(stage: str, event: LeadEventType) -> bool:
    try:
        return applies(Stage(stage), event)
    except ValueError:
        return False


# ---------------------------------------------------------------------------- the click


@router.post("/inbox/leads/{lead_id}/events")
async def lead_event(
    request: Request, context: Context, user: Viewer, form: CsrfForm, lead_id: str
) -> RedirectResponse:
    """One of the card's buttons, as the signed-in user; back to the inbox with what
    became of it."""
    back = RedirectResponse(_back(form.get("rep")), status_code=303)
    action = ACTIONS.get(str(form.get("action") or ""))
    if not LEAD_ID.match(lead_id) or action is None:
        return _told(request, back, "That action could not be read: nothing was changed.")
    allowed, name = await run_in_threadpool(_permission, context, lead_id, user)
    if not allowed.found:
        return _told(request, back, "Leadflow does not know this lead: nothing was changed.")
    if not allowed.allowed:
        owner = allowed.owner_name or "nobody yet"
        text = (
            f"This lead belongs to {owner}: only its owner, the pool's manager or an admin "
            "can act on it. Nothing was changed."
        )
        return _told(request, back, text)
    reason = str(form.get("reason") or "").strip()[:MAX_REASON]
    if action.prompt is not None and not reason:
        text = f"{action.label} needs a reason: say why. Nothing was changed."
        return _told(request, back, text)
    nonce = str(form.get("nonce") or "")
    if not NONCE.fullmatch(nonce):
        text = "This button is out of date: reload the inbox and try again. Nothing was changed."
        return _told(request, back, text)
    if action.name == "request_reassignment":
        fields = {"kind": ApprovalKind.reassignment.value, "reason": reason}
        asked = await request_approval(context.temporal, lead_id, user.email, fields)
        return _told(request, back, *_asked_text(asked))
    try:
        event = LeadEventIn(
            type=action.event,
            event_id=f"inbox-{user.id}-{nonce}",
            reason=reason if action.prompt is not None else None,
            by=user.email,
        )
    except ValidationError:
        return _told(request, back, "That action could not be read: nothing was changed.")
    outcome = await send_lead_event(context.temporal, lead_id, event)
    return _told(request, back, *_sent_text(action, outcome, name))


def _permission(context: AppContext, lead_id: str, user: AdminUser) -> tuple[Permission, str]:
    """Whether ``user`` may act on the lead, and the lead's name (for the message)."""
    found = permission(context.db, lead_id, actor_of(user))
    if not found.found:
        return found, lead_id
    with context.db.read() as session:
        lead = lead_store.get_lead(session, lead_id)
        data: dict[str, Any] = (lead.data or {}) if lead is not None else {}
    name = name_of(data)
    return found, (data.get("email") or lead_id) if name == "—" else name


def _sent_text(action: Action, outcome: EventOutcome, name: str) -> tuple[str, FlashKind]:
    if outcome.sent is Sent.applied:
        return f"{action.done}: {name}.", "ok"
    if outcome.sent is Sent.not_allowed and outcome.stage is not None:
        now = stage_label(outcome.stage.value)
        end = "" if outcome.allowed else " Its lifecycle has ended."
        return (
            f"“{action.label}” no longer applies: this lead is now {now}. Nothing was "
            f"changed.{end}",
            "error",
        )
    if outcome.sent is Sent.no_lifecycle:
        return "This lead's lifecycle has ended: nothing was changed.", "error"
    if outcome.sent is Sent.unavailable:
        return (
            "Leadflow could not reach the workflow service: nothing was changed. Try again "
            "in a moment.",
            "error",
        )
    why = outcome.message or "no reason given"
    return f"Leadflow refused this: {why}. Nothing was changed.", "error"


def _asked_text(asked: RequestOutcome) -> tuple[str, FlashKind]:
    if asked.started is not None:
        started = asked.started
        who = ", ".join(started.approvers) or "the approvers"
        return (
            f"Your reassignment request went to {who} for approval (level {started.level} "
            f"of {started.levels}).",
            "ok",
        )
    if asked.asked is Asked.invalid:
        return f"That request could not be read: {asked.problems}. Nothing was changed.", "error"
    cause = asked.refusal.cause if asked.refusal is not None else None
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else {}
        stage = details.get("stage") if isinstance(details, dict) else None
        if cause.type == "ApprovalNotAllowed" and stage:
            text = f"A reassignment does not apply to a lead that is {stage_label(str(stage))}"
            return f"{text}: nothing was changed.", "error"
        if cause.type == "ApprovalOpen":
            return (
                "A reassignment of this lead is waiting for approval already: nothing was changed.",
                "error",
            )
        return f"{cause.message}: nothing was changed.", "error"
    if asked.refusal is not None:
        return "Leadflow refused this: nothing was changed.", "error"
    if asked.status is RPCStatusCode.NOT_FOUND:
        return "This lead's lifecycle has ended: nothing was changed.", "error"
    return (
        "Leadflow could not reach the workflow service: nothing was changed. Try again in a "
        "moment.",
        "error",
    )


def _told(
    request: Request, back: RedirectResponse, text: str, kind: FlashKind = "error"
) -> RedirectResponse:
    flash(request, text, kind)
    return back


def _back(rep: object) -> str:
    """The inbox, with the rep it showed (when one was picked)."""
    value = str(rep or "")
    picked = re.fullmatch(r"[0-9]{1,10}", value) and 0 < int(value) < 2**31
    return f"{INBOX}?rep={value}" if picked else INBOX
