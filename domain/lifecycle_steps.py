"""Inputs and results of the lifecycle's steps after routing: reassignments and
recycles, stage changes, CRM updates, engagement, reminders, and the hand-off.

Fields are only ever added with defaults, so running workflows keep decoding their history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.lead import EventType, LeadSubmission, Owner, Stage
from domain.lifecycle import Origin, Timer, TimerName
from domain.scoring import Engagement


class RerouteReason(StrEnum):
    sla_lapsed = "sla_lapsed"
    reassign = "reassign"
    owner_changed = "owner_changed"
    recycle = "recycle"
    queue_retry = "queue_retry"


class Rerouted(BaseModel):
    """The lead's new owner after a reassignment, a recycle or a queue retry (None: nobody
    could take it), the decision's reason, and the timers the new owner's clock starts."""

    owner: Owner | None
    previous: Owner | None = None
    reason: str
    rule: str | None = None
    pool: str | None = None
    config_version: int | None = None
    timers: list[Timer] = Field(default_factory=list)


class RerouteInput(BaseModel):
    """Route a lead that had an owner (or sat in a queue) again. ``to`` names the rep
    (a manual reassignment or the CRM's owner); otherwise the published rules decide,
    never choosing a rep of ``exclude``."""

    lead_id: str
    idempotency_key: str
    why: RerouteReason
    submission: LeadSubmission
    previous: Owner | None = None
    exclude: list[str] = Field(default_factory=list)
    to: str | None = None
    crm_owner_id: str | None = None
    by: str | None = None
    origin: Origin = Origin.inbound
    # Start the speed-to-lead SLA for the new owner (not once the lead was contacted).
    start_sla: bool = True
    reassignments: int = 0
    score: int | None = None
    grade: str | None = None


class StageChangeInput(BaseModel):
    """Record an event that moves (or keeps) the lead's stage, and learn the timers the
    new stage starts."""

    lead_id: str
    idempotency_key: str
    type: EventType
    stage: Stage
    previous_stage: Stage
    data: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    occurred_at: datetime
    # Timers to start: "stale" (a worked stage), "cool_off" / "lost_cool_off" (nurture).
    start: list[str] = Field(default_factory=list)
    owner: Owner | None = None


class StageChanged(BaseModel):
    timers: list[Timer] = Field(default_factory=list)
    config_version: int | None = None
    recycle_score: int | None = None
    nurture_list: str | None = None


class CrmUpdateInput(BaseModel):
    """Bring the CRM record in line with the lead: written (with its owner) when it is
    not there yet, its status, and its nurture-list membership."""

    lead_id: str
    idempotency_key: str
    submission: LeadSubmission
    owner: Owner | None
    score: int | None = None
    crm_id: str | None = None
    status: str | None = None
    reason: str | None = None
    nurture: bool | None = None


class EngagementInput(BaseModel):
    lead_id: str
    idempotency_key: str
    kind: str
    occurred_at: datetime
    engagement: Engagement
    submission: LeadSubmission
    stage: Stage
    by: str | None = None


class EngagementResult(BaseModel):
    engagement: Engagement
    points: int
    score: int
    grade: str
    recycle_score: int


class ReminderInput(BaseModel):
    """An SLA or stale-lead step: remind the owner, or escalate to the pool's manager."""

    lead_id: str
    idempotency_key: str
    timer: TimerName
    owner: Owner
    submission: LeadSubmission
    assigned_at: datetime
    stage_entered_at: datetime | None = None
    pool: str | None = None
    reassignments: int = 0
    reminders: int = 0
    stage: Stage | None = None
    # When the next SLA step falls due (shown in the reminder).
    deadline: datetime | None = None


class ReminderResult(BaseModel):
    elapsed_s: float
    notified: str | None = None
    # The next stale reminder, for a lead still not moving.
    timers: list[Timer] = Field(default_factory=list)
    # No manager to escalate to: a person has to look at the lead.
    needs_attention: str | None = None


class HandoffInput(BaseModel):
    """Child workflow ``Handoff``: a won lead becomes a customer of account management."""

    lead_id: str
    submission: LeadSubmission
    owner: Owner | None
    crm_id: str | None
    received_at: datetime
    won_at: datetime
    amount: str
    currency: str
    activity_timeout_s: float = 10.0
    step_give_up_s: float = 6 * 3600.0


class HandoffResult(BaseModel):
    account_manager: Owner | None
    account_id: str | None = None
    contact_id: str | None = None
    deal_id: str | None = None
    tasks: list[str] = Field(default_factory=list)
    cycle_days: float


class ConvertInput(BaseModel):
    lead_id: str
    idempotency_key: str
    submission: LeadSubmission
    owner: Owner | None
    crm_id: str | None
    amount: str
    currency: str
    won_at: datetime


class ConvertResult(BaseModel):
    crm_id: str
    account_id: str
    contact_id: str
    deal_id: str


class AccountManagerInput(BaseModel):
    lead_id: str
    idempotency_key: str
    submission: LeadSubmission


class OnboardingInput(BaseModel):
    lead_id: str
    idempotency_key: str
    crm_id: str
    account_manager: Owner
    won_at: datetime


class AnnounceWinInput(BaseModel):
    lead_id: str
    idempotency_key: str
    submission: LeadSubmission
    owner: Owner | None
    account_manager: Owner | None
    amount: str
    currency: str
    cycle_days: float
    received_at: datetime
    won_at: datetime


# Resolve the annotations now (they name classes of this module), not at first use.
Rerouted.model_rebuild()
RerouteInput.model_rebuild()
StageChangeInput.model_rebuild()
StageChanged.model_rebuild()
CrmUpdateInput.model_rebuild()
EngagementInput.model_rebuild()
EngagementResult.model_rebuild()
ReminderInput.model_rebuild()
ReminderResult.model_rebuild()
HandoffInput.model_rebuild()
HandoffResult.model_rebuild()
ConvertInput.model_rebuild()
ConvertResult.model_rebuild()
AccountManagerInput.model_rebuild()
OnboardingInput.model_rebuild()
AnnounceWinInput.model_rebuild()
