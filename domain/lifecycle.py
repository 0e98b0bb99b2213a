"""Inputs and results of the lead lifecycle workflow, its signals, queries and activities.

Fields are only ever added with defaults, so running workflows keep decoding their history.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.approvals import ApprovalResult
from domain.lead import EventType, LeadSubmission, Owner, Stage
from domain.routing import RoutingDecision
from domain.scoring import Engagement, ScoreResult
from domain.stages import LeadEventResult

# A batch of resubmissions handed to one activity stays far below Temporal's 2 MB payload
# limit: at most this many, and at most this many bytes of submissions.
RESUBMISSION_BATCH_ITEMS = 25
RESUBMISSION_BATCH_BYTES = 256 * 1024
# Submission ids remembered to drop a signal delivered twice (a retried intake call).
RECENT_SUBMISSION_IDS = 64
# Event ids remembered (with their answers) to apply an event delivered twice once.
RECENT_EVENT_IDS = 64


class Origin(StrEnum):
    """Inbound leads come from a form and enter at ``captured``; outbound leads are
    entered by the rep who found them and enter at ``assigned``; imported leads come from
    a bulk import and enter at ``captured`` like inbound ones, but existed before
    Leadflow: no speed-to-lead SLA, and their owner hears of them once per import (a
    summary) instead of once per lead."""

    inbound = "inbound"
    outbound = "outbound"
    imported = "imported"

    @property
    def has_speed_to_lead_sla(self) -> bool:
        """Whether a new owner's speed-to-lead clock (remind, reassign, escalate) runs."""
        return self is Origin.inbound

    @property
    def quiet_notice(self) -> bool:
        """Whether the owner's notice of the new lead is recorded without a message."""
        return self is Origin.imported


class LeadLifecycleInput(BaseModel):
    lead_id: str
    source_system: str = "web"
    idle_timeout_s: float = 90 * 24 * 3600.0
    activity_timeout_s: float = 10.0
    # Carried across continue-as-new so the state survives a new run.
    state: LeadState | None = None
    # Submissions received but not yet absorbed when the previous run continued as new.
    pending: list[SubmissionReceived] = Field(default_factory=list)
    # Resubmissions kept in detail per lead; later ones are only counted.
    detail_cap: int = 20
    # Continue as new well before Temporal's history limits (50 MB / 51,200 events).
    history_events_limit: int = 2_000
    history_bytes_limit: int = 2_000_000
    # A step that keeps failing transiently gives up after this long and parks the lead
    # as needs attention (an admin's retry resumes it): nothing retries forever silently.
    step_give_up_s: float = 6 * 3600.0
    origin: Origin = Origin.inbound


class SubmissionReceived(BaseModel):
    """Signal: the intake accepted a submission for this lead."""

    submission: LeadSubmission
    received_at: datetime
    submission_id: str
    # False once the lead's detail cap is reached: the submission carries only the email
    # and is counted, not recorded in detail.
    detailed: bool = True
    # An outbound lead, entered through the API by the rep who found it (``owner_email``).
    origin: Origin = Origin.inbound
    owner_email: str | None = None


class Timer(BaseModel):
    """A timer the lifecycle has running: what fires next and when. ``config_version`` is
    the published configuration its duration came from (a later publish applies to
    timers started after it)."""

    name: TimerName
    fires_at: datetime
    started_at: datetime
    config_version: int | None = None


class TimerName(StrEnum):
    sla_remind = "sla_remind"
    sla_reassign = "sla_reassign"
    sla_escalate = "sla_escalate"
    no_meeting = "no_meeting"
    stale = "stale"
    cool_off = "cool_off"
    queue_retry = "queue_retry"


class Attention(BaseModel):
    """A step that failed for good and waits for a person: the reason the lead needs
    attention. An admin's retry runs the step again from where it stopped."""

    step: str
    error: str
    message: str
    at: datetime


class RetryRequest(BaseModel):
    """Signal ``retry``: run the lead's failed steps again."""

    requested_by: str = "api"


class LeadState(BaseModel):
    """What the workflow knows; answered by the ``state`` query."""

    lead_id: str
    stage: Stage = Stage.captured
    submission: LeadSubmission | None = None
    received_at: datetime | None = None
    score: int | None = None
    grade: str | None = None
    owner: Owner | None = None
    crm_id: str | None = None
    submissions: int = 0
    routed: bool = False
    detailed_resubmissions: int = 0
    notified: bool = False
    needs_attention: bool = False
    # Values resubmissions proposed for fields that already had one, for the owner.
    proposed: dict[str, str | int] = Field(default_factory=dict)
    recent_ids: list[str] = Field(default_factory=list)
    # The full lifecycle (fields below): where the lead came from, what runs next, what
    # failed, and the answers to the events it was sent.
    origin: Origin = Origin.inbound
    timers: list[Timer] = Field(default_factory=list)
    attention: list[Attention] = Field(default_factory=list)
    engagement: Engagement = Field(default_factory=Engagement)
    # When the current owner got the lead (the SLA clock) and the stage was entered.
    assigned_at: datetime | None = None
    stage_entered_at: datetime | None = None
    pool: str | None = None
    card: CardFacts | None = None  # the owner's card, from the assignment
    config_version: int | None = None
    contacted: bool = False
    sla_reminded: bool = False
    sla_escalated: bool = False
    reassignments: int = 0
    # Reps (emails) who let the speed-to-lead SLA lapse on this lead: never given it again.
    lapsed_reps: list[str] = Field(default_factory=list)
    nurture_reason: str | None = None
    recycles: int = 0
    stale_reminders: int = 0
    won_at: datetime | None = None
    won_amount: str | None = None
    won_currency: str | None = None
    account_manager: Owner | None = None
    # Outbound: the rep who entered the lead (its owner from the start).
    entered_by: str | None = None
    # Answers to recent events by ``event_id``: the same id is applied once.
    event_results: dict[str, LeadEventResult] = Field(default_factory=dict)
    events_applied: int = 0
    # Approvals (``workflows.approval``): how many were requested (the next one's number),
    # the open ones (approval id → kind), those of them withdrawn because the lead moved
    # on (their result comes back like any other), results signalled but not applied
    # yet, and the discount approved last (percent).
    approvals_requested: int = 0
    open_approvals: dict[str, str] = Field(default_factory=dict)
    approvals_withdrawn: list[str] = Field(default_factory=list)
    approval_results: list[ApprovalResult] = Field(default_factory=list)
    approved_discount: Decimal | None = None


class LeadLifecycleResult(BaseModel):
    lead_id: str
    stage: Stage
    owner: Owner | None


class AssignLeadInput(BaseModel):
    lead_id: str
    workflow_id: str
    idempotency_key: str
    submission: LeadSubmission
    received_at: datetime
    source_system: str = "web"
    submissions: int = 1
    # Outbound: the rep who entered the lead owns it (no routing).
    origin: Origin = Origin.inbound
    owner_email: str | None = None


class Assignment(BaseModel):
    score: ScoreResult
    decision: RoutingDecision
    # Set when the lead already had an owner: the lead as stored, for a run that starts
    # after an earlier one ended. Nothing was routed or written.
    kept: LeadState | None = None
    # The timers the new situation starts (speed-to-lead SLA, no meeting, queue retry).
    timers: list[Timer] = Field(default_factory=list)
    # What the owner's card shows of the decision, so that notifying reads nothing.
    card: CardFacts | None = None


class CardFacts(BaseModel):
    """The routing decision and the score as the lead's card shows them."""

    rule: str | None = None
    pool: str | None = None
    strategy: str | None = None
    score_reasons: list[str] = Field(default_factory=list)
    channel: str | None = None  # the pool's Slack channel, if it has one


class CrmSyncInput(BaseModel):
    lead_id: str
    idempotency_key: str
    submission: LeadSubmission
    owner: Owner | None
    score: int | None = None


class CrmSyncResult(BaseModel):
    crm: str
    crm_id: str
    created: bool
    # The rep (email) who is not linked to a user of the CRM: the record has no owner.
    owner_unlinked: str | None = None


class NotifyOwnerInput(BaseModel):
    lead_id: str
    idempotency_key: str
    owner: Owner
    submission: LeadSubmission
    score: int | None = None
    grade: str | None = None
    received_at: datetime
    crm_id: str | None = None
    # When the owner must have made contact (the speed-to-lead SLA's first reminder).
    sla_due: datetime | None = None
    card: CardFacts | None = None
    # An imported lead's notice is quiet: recorded, no message (``Origin.quiet_notice``).
    origin: Origin = Origin.inbound


class NotifyOwnerResult(BaseModel):
    # None: a quiet notice (nothing was sent).
    notification_id: int | None = None
    speed_to_lead_ms: int | None = None


class Resubmission(BaseModel):
    """One repeated submission as recorded on the timeline."""

    submission_id: str
    received_at: datetime
    filled: dict[str, str | int] = Field(default_factory=dict)
    proposed: dict[str, str | int] = Field(default_factory=dict)


class RecordResubmissionsInput(BaseModel):
    lead_id: str
    idempotency_key: str
    # Only in histories of runs recorded before batches were bounded.
    submissions: list[SubmissionReceived] = Field(default_factory=list)
    resubmissions: list[Resubmission] = Field(default_factory=list)
    # Accepted submissions of this person so far, the first included.
    total_submissions: int = 0
    submission: LeadSubmission | None = None


class AcceptChanges(BaseModel):
    """Signal: the owner accepts proposed changes (all of them when ``fields`` is empty)."""

    fields: list[str] = Field(default_factory=list)
    accepted_by: str = "api"


class RecordEventInput(BaseModel):
    """A timeline entry decided by the workflow itself (no other side effect)."""

    lead_id: str
    idempotency_key: str
    type: EventType
    stage: Stage | None = None
    data: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    # Raise the lead's needs-attention flag (a step failed for good).
    needs_attention: bool = False
    # The lead's submission after this event (an accepted change), to store; with
    # ``received_at``, the lead is stored if it is not yet (its routing failed for good).
    submission: LeadSubmission | None = None
    received_at: datetime | None = None
    # A step that failed for good (added to the lead's attention list), or a retry
    # (which clears the list: the steps run again and park again if they fail again).
    attention: Attention | None = None
    clear_attention: bool = False


Timer.model_rebuild()
Assignment.model_rebuild()
LeadState.model_rebuild()
NotifyOwnerInput.model_rebuild()
LeadLifecycleInput.model_rebuild()
