"""The lead's stages and the events that move it between them (LIFECYCLE.md part B).

One state machine serves the inbound and the outbound example::

    captured → scored → assigned → contacted → meeting_booked → qualified
                                                      └→ presentation ─┘ (outbound)
    qualified | presentation → proposal → negotiation → won → handed_off
    any open stage before won → disqualified (terminal)
    no_response | declined | presentation_failed | no meeting in time | lost → nurturing
    nurturing → assigned again (engagement over the recycle score, or the cool-off ends)

Pure: the workflow asks this module whether an event applies and what stage follows; the
API's 409 names the stage and ``allowed_events`` of it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.lead import Stage


class LeadEventType(StrEnum):
    """What people (and the CRM) tell Leadflow about a lead."""

    contacted = "contacted"
    meeting_booked = "meeting_booked"
    no_response = "no_response"
    declined = "declined"
    presentation_held = "presentation_held"
    presentation_failed = "presentation_failed"
    qualified = "qualified"
    disqualified = "disqualified"
    proposal_sent = "proposal_sent"
    negotiation_started = "negotiation_started"
    won = "won"
    lost = "lost"
    engagement = "engagement"
    reassign = "reassign"
    owner_changed = "owner_changed"


S = Stage
E = LeadEventType

# Stages a lead is worked in by its owner (before the deal is decided).
WORKED = (
    S.assigned,
    S.contacted,
    S.meeting_booked,
    S.presentation,
    S.qualified,
    S.proposal,
    S.negotiation,
)
TERMINAL = (S.disqualified, S.handed_off)
# Stages in which the lead has no owner yet (a queue holds it).
UNOWNED = (S.captured, S.scored)

# event → {stage it applies in: stage it leads to}. ``None`` as target: the stage stays.
TRANSITIONS: dict[LeadEventType, dict[Stage, Stage | None]] = {
    E.contacted: {S.assigned: S.contacted},
    E.meeting_booked: {S.assigned: S.meeting_booked, S.contacted: S.meeting_booked},
    E.no_response: {S.assigned: S.nurturing, S.contacted: S.nurturing},
    E.declined: {S.assigned: S.nurturing, S.contacted: S.nurturing, S.meeting_booked: S.nurturing},
    E.presentation_held: {S.meeting_booked: S.presentation},
    E.presentation_failed: {S.meeting_booked: S.nurturing, S.presentation: S.nurturing},
    E.qualified: {S.meeting_booked: S.qualified, S.presentation: S.qualified},
    E.disqualified: dict.fromkeys((S.scored, *WORKED, S.nurturing), S.disqualified),
    E.proposal_sent: {S.presentation: S.proposal, S.qualified: S.proposal},
    E.negotiation_started: {S.proposal: S.negotiation},
    E.won: {S.proposal: S.won, S.negotiation: S.won},
    # A lost deal is recorded as lost and goes back to nurture at once.
    E.lost: dict.fromkeys((S.presentation, S.qualified, S.proposal, S.negotiation), S.nurturing),
    E.engagement: dict.fromkeys((*UNOWNED, *WORKED, S.nurturing)),
    E.reassign: {S.scored: S.assigned, **dict.fromkeys(WORKED)},
    E.owner_changed: {S.scored: S.assigned, **dict.fromkeys((*WORKED, S.nurturing))},
}


def allowed_events(stage: Stage) -> list[str]:
    """The events that apply in ``stage``, in the order of ``LeadEventType``."""
    return [e.value for e in LeadEventType if stage in TRANSITIONS[e]]


def applies(stage: Stage, event: LeadEventType) -> bool:
    return stage in TRANSITIONS[event]


def next_stage(stage: Stage, event: LeadEventType) -> Stage:
    """The stage after ``event`` in ``stage`` (the same stage for events that do not move
    the lead). Raises ``EventNotAllowed`` when the event does not apply."""
    targets = TRANSITIONS[event]
    if stage not in targets:
        raise EventNotAllowed(stage, event)
    target = targets[stage]
    return stage if target is None else target


class EventNotAllowed(ValueError):
    """The event does not apply in the lead's current stage."""

    def __init__(self, stage: Stage, event: LeadEventType) -> None:
        self.stage = stage
        self.event = event
        self.allowed = allowed_events(stage)
        allowed = ", ".join(self.allowed) or "none: the lifecycle has ended"
        super().__init__(
            f"{event.value!r} does not apply to a lead in stage {stage.value!r}; "
            f"events allowed there: {allowed}"
        )


_CURRENCY = re.compile(r"^[A-Z]{3}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
EventId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[!-~]+$")
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Actor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class LeadEventIn(BaseModel):
    """An event for a lead, as every boundary hands it to the lifecycle. Which fields an
    event needs depends on its type: ``disqualified`` and ``lost`` a ``reason``, ``won``
    an ``amount`` and a ``currency``, ``engagement`` a ``kind``; ``reassign`` may name the
    rep (``to``, an email); ``owner_changed`` names the new owner (``owner_email`` or the
    CRM's ``crm_owner_id``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: LeadEventType
    event_id: EventId | None = None
    reason: Reason | None = None
    amount: Decimal | None = Field(None, ge=0, le=Decimal("1e12"), decimal_places=2)
    currency: str | None = None
    kind: str | None = None
    to: Annotated[str, StringConstraints(max_length=320)] | None = None
    owner_email: Annotated[str, StringConstraints(max_length=320)] | None = None
    crm_owner_id: Annotated[str, StringConstraints(max_length=100)] | None = None
    # Who reported the event (a rep's email, "api", "crm", "slack:<user>").
    by: Actor | None = None
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> LeadEventIn:
        t = self.type
        if t in (E.disqualified, E.lost) and not self.reason:
            raise ValueError(f"reason: required for a {t.value!r} event")
        if t is E.won:
            if self.amount is None:
                raise ValueError("amount: required for a 'won' event")
            if not self.currency or not _CURRENCY.match(self.currency.upper()):
                raise ValueError("currency: required for a 'won' event, as an ISO code like EUR")
            self.currency = self.currency.upper()
        elif self.amount is not None or self.currency is not None:
            raise ValueError("amount, currency: only a 'won' event carries them")
        if t is E.engagement:
            if not self.kind or not _KIND.match(self.kind):
                raise ValueError(
                    "kind: required for an 'engagement' event, in snake_case "
                    "(email_opened, link_clicked, page_visited, form_resubmitted, ...)"
                )
        elif self.kind is not None:
            raise ValueError("kind: only an 'engagement' event carries it")
        if self.to is not None and t is not E.reassign:
            raise ValueError("to: only a 'reassign' event names the rep to take the lead")
        if t is E.owner_changed and not (self.owner_email or self.crm_owner_id):
            raise ValueError("owner_email: an 'owner_changed' event names the new owner")
        if t is not E.owner_changed and (self.owner_email or self.crm_owner_id):
            raise ValueError("owner_email: only an 'owner_changed' event carries it")
        return self


class LeadEventResult(BaseModel):
    """What the lifecycle answers for an event: the stage after it, and whether it was
    applied now (False: the same ``event_id`` was applied before, this is its answer)."""

    lead_id: str
    event_id: str
    type: LeadEventType
    stage: Stage
    previous_stage: Stage
    owner_email: str | None = None
    score: int | None = None
    applied: bool = True
