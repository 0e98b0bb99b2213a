"""Changes made in the CRM, as lifecycle events (docs/crm.md has the mapping per vendor).

A change becomes the same ``LeadEventIn`` every boundary sends, with an ``event_id``
derived from the change's stable id, so a change seen twice (a repeated webhook, a poll
after a webhook) is applied once. A change the lead already reflects (Leadflow's own
write seen coming back, an owner the lead already has) is not sent at all."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel

from domain.crm import CrmChange, CrmChangeKind, CrmNotice
from domain.lead import Stage
from domain.stages import LeadEventIn, LeadEventType

K = CrmChangeKind
# Stages in which a lead has been contacted (a "contacted" status adds nothing there).
CONTACTED_OR_LATER = frozenset(
    {
        Stage.contacted,
        Stage.meeting_booked,
        Stage.presentation,
        Stage.qualified,
        Stage.proposal,
        Stage.negotiation,
        Stage.won,
        Stage.handed_off,
    }
)
DEFAULT_CURRENCY = "USD"


def event_id_for(change: CrmChange) -> str:
    """A lifecycle event id for the change: printable, at most 100 characters, stable."""
    digest = hashlib.sha256(change.change_id.encode()).hexdigest()[:40]
    return f"crm-{digest}"


def event_for(change: CrmChange, crm: str) -> LeadEventIn:
    """The lifecycle event a CRM change stands for."""
    common = {"event_id": event_id_for(change), "by": crm, "note": change.change_id[:2000]}
    if change.kind is K.contacted:
        return LeadEventIn(type=LeadEventType.contacted, **common)
    if change.kind is K.disqualified:
        reason = change.reason or f"disqualified in {crm}"
        return LeadEventIn(type=LeadEventType.disqualified, reason=reason[:500], **common)
    if change.kind is K.owner_changed:
        return LeadEventIn(type=LeadEventType.owner_changed, crm_owner_id=change.owner_id, **common)
    if change.kind is K.won:
        amount = change.amount if change.amount is not None else Decimal(0)
        return LeadEventIn(
            type=LeadEventType.won,
            amount=amount.quantize(Decimal("0.01")),
            currency=(change.currency or DEFAULT_CURRENCY).upper(),
            **common,
        )
    reason = change.reason or f"lost in {crm}"
    return LeadEventIn(type=LeadEventType.lost, reason=reason[:500], **common)


def already_reflected(
    change: CrmChange, stage: Stage, owner_email: str | None, new_owner_email: str | None
) -> bool:
    """Whether the lead already is what the change says (nothing to send)."""
    if change.kind is K.contacted:
        return stage in CONTACTED_OR_LATER
    if change.kind is K.disqualified:
        return stage is Stage.disqualified
    if change.kind is K.owner_changed:
        return new_owner_email is not None and new_owner_email == owner_email
    if change.kind is K.won:
        return stage in (Stage.won, Stage.handed_off)
    return stage is Stage.lost


class Outcome(StrEnum):
    applied = "applied"
    duplicate = "duplicate"  # the same change was applied before
    reflected = "reflected"  # the lead already is what the change says
    not_applied = "not_applied"  # does not apply in the lead's stage: recorded
    unknown_lead = "unknown_lead"  # a record Leadflow does not track


class ChangeOutcome(BaseModel):
    change_id: str
    lead_id: str | None
    outcome: Outcome
    detail: str | None = None


class NoticeFailure(BaseModel):
    """A step of a webhook notice's workflow that failed for good, to be shown on the
    needs-attention page and retried from there: ``step`` is ``read`` (the connector
    could not say what changed) or ``send <n>`` (the n-th change, from 1, could not be
    sent to its lead)."""

    workflow_id: str
    step: str
    notice: CrmNotice
    error_type: str
    message: str
