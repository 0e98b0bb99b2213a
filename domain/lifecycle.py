"""Inputs and results of the lead lifecycle workflow, its signals, queries and activities.

Fields are only ever added with defaults, so running workflows keep decoding their history.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.lead import EventType, LeadSubmission, Owner, Stage
from domain.routing import RoutingDecision
from domain.scoring import ScoreResult

# A batch of resubmissions handed to one activity stays far below Temporal's 2 MB payload
# limit: at most this many, and at most this many bytes of submissions.
RESUBMISSION_BATCH_ITEMS = 25
RESUBMISSION_BATCH_BYTES = 256 * 1024
# Submission ids remembered to drop a signal delivered twice (a retried intake call).
RECENT_SUBMISSION_IDS = 64


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


class SubmissionReceived(BaseModel):
    """Signal: the intake accepted a submission for this lead."""

    submission: LeadSubmission
    received_at: datetime
    submission_id: str
    # False once the lead's detail cap is reached: the submission carries only the email
    # and is counted, not recorded in detail.
    detailed: bool = True


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


class Assignment(BaseModel):
    score: ScoreResult
    decision: RoutingDecision
    # Set when the lead already had an owner: the lead as stored, for a run that starts
    # after an earlier one ended. Nothing was routed or written.
    kept: LeadState | None = None


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


class NotifyOwnerInput(BaseModel):
    lead_id: str
    idempotency_key: str
    owner: Owner
    submission: LeadSubmission
    score: int | None = None
    grade: str | None = None
    received_at: datetime
    crm_id: str | None = None


class NotifyOwnerResult(BaseModel):
    notification_id: int
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
    # The lead's submission after this event (an accepted change), to store.
    submission: LeadSubmission | None = None


LeadLifecycleInput.model_rebuild()
