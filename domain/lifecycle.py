"""Inputs and results of the lead lifecycle workflow, its signals, queries and activities.

Fields are only ever added with defaults, so running workflows keep decoding their history.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.lead import EventType, LeadSubmission, Owner, Stage
from domain.routing import RoutingDecision
from domain.scoring import ScoreResult


class LeadLifecycleInput(BaseModel):
    lead_id: str
    source_system: str = "web"
    idle_timeout_s: float = 90 * 24 * 3600.0
    activity_timeout_s: float = 10.0
    # Carried across continue-as-new so the state survives a new run.
    state: LeadState | None = None


class SubmissionReceived(BaseModel):
    """Signal: the intake accepted a submission for this lead."""

    submission: LeadSubmission
    received_at: datetime
    submission_id: str


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


class Assignment(BaseModel):
    score: ScoreResult
    decision: RoutingDecision


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


class RecordResubmissionsInput(BaseModel):
    lead_id: str
    idempotency_key: str
    submissions: list[SubmissionReceived] = Field(default_factory=list)


class RecordEventInput(BaseModel):
    """A timeline entry decided by the workflow itself (no other side effect)."""

    lead_id: str
    idempotency_key: str
    type: EventType
    stage: Stage | None = None
    data: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


LeadLifecycleInput.model_rebuild()
