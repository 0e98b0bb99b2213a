"""Approvals with a hierarchy (LIFECYCLE.md part B): a discount during negotiation, a
lead's reassignment and an ownership dispute between reps, each decided by the
approvers of one level of its chain (``domain.config_approvals``) and escalated to the
next level when a level lets its timeout pass.

The request, the decision and the result cross every boundary (the JSON API, the admin
app, Slack) as these models; ``plan`` resolves the levels of one request from the
published chain. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from domain.config import RoutingConfig
from domain.config_approvals import POOL_MANAGER, ApprovalKind, ApprovalsConfig, Outcome
from domain.lead import Stage, control_character_error, normalize_email
from domain.stages import WORKED

__all__ = [
    "DISCOUNT_STAGES",
    "ApprovalDecisionIn",
    "ApprovalInput",
    "ApprovalKind",
    "ApprovalPlan",
    "ApprovalRefused",
    "ApprovalRequest",
    "ApprovalResult",
    "ApprovalStarted",
    "ApprovalState",
    "ApprovalStep",
    "ApprovalWithdrawal",
    "Decision",
    "OpenLevelInput",
    "Outcome",
    "PlanApprovalInput",
    "RecordDecisionInput",
    "approval_id_for",
    "plan",
    "pool_manager_of",
    "stages_for",
]

# Where a request may be made: a discount is negotiated, a reassignment or a dispute is
# about a lead somebody works.
DISCOUNT_STAGES = (Stage.proposal, Stage.negotiation)
# Who decided a request that timed out at its last level.
TIMEOUT = "timeout"
# Who ended a request its lead no longer allows (the lead's lifecycle withdrew it).
LIFECYCLE = "lifecycle"


def _text(value: str) -> str:
    error = control_character_error(value, multiline=True)
    if error is not None:
        raise ValueError(error)
    return value


Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_text),
]
Comment = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=1000), AfterValidator(_text)
]
Person = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]


def stages_for(kind: ApprovalKind) -> tuple[Stage, ...]:
    """The stages in which a request of ``kind`` may be made."""
    return DISCOUNT_STAGES if kind is ApprovalKind.discount else WORKED


def approval_id_for(lead_id: str, number: int) -> str:
    """The id of the lead's ``number``-th approval: its workflow's id too."""
    return f"approval-{lead_id}-{number}"


def _email(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    email = normalize_email(value)
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or " " in email:
        raise ValueError(f"{field}: {value!r} is not an email address")
    return email


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


class ApprovalRequest(BaseModel):
    """What somebody asks to have approved. ``discount`` needs ``percent`` (0-100, at most
    two decimals); ``reassignment`` may name the rep to take the lead (``to``; none: the
    published rules choose); ``ownership_dispute`` names the rep who claims the lead
    (``claimant``; by default the requester). Every kind needs a ``reason``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: ApprovalKind
    reason: Reason
    percent: Percent | None = None
    to: Annotated[str, StringConstraints(max_length=320)] | None = None
    claimant: Annotated[str, StringConstraints(max_length=320)] | None = None
    # Who asks (an email, or the API's actor); told the outcome when it is an email.
    requested_by: Annotated[str, StringConstraints(max_length=320)] | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> ApprovalRequest:
        # Messages start with the field they concern: the API names it in its 422.
        kind = self.kind
        if kind is ApprovalKind.discount and self.percent is None:
            raise ValueError("percent: a discount request needs the percent (0-100)")
        if kind is not ApprovalKind.discount and self.percent is not None:
            raise ValueError(f"percent: only a discount request carries it, not {kind.value}")
        if self.to is not None and kind is not ApprovalKind.reassignment:
            raise ValueError("to: only a reassignment request names the rep to take the lead")
        if self.claimant is not None and kind is not ApprovalKind.ownership_dispute:
            raise ValueError("claimant: only an ownership dispute names a claimant")
        self.to = _email(self.to, "to")
        self.requested_by = _email(self.requested_by, "requested_by")
        if kind is ApprovalKind.ownership_dispute:
            claimant = self.claimant or self.requested_by
            if claimant is None or "@" not in claimant:
                raise ValueError("claimant: an ownership dispute names the rep who claims the lead")
            self.claimant = _email(claimant, "claimant")
        return self

    def figures(self) -> dict[str, str]:
        """What the request is about beyond its reason, as text: the percent, the rep."""
        found = {"percent": _percent(self.percent), "to": self.to, "claimant": self.claimant}
        return {k: v for k, v in found.items() if v is not None}


def _percent(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


class ApprovalStep(BaseModel):
    """One level of a request's chain, resolved: ``number`` counts from 1 as in the
    configuration; ``approvers`` are emails (``pool_manager`` replaced by the manager)."""

    number: int
    approvers: list[str]
    timeout: timedelta
    up_to: Decimal | None = None


class ApprovalRefused(ValueError):
    """The request cannot be made: no chain for its kind, no level covers it, or nobody
    could decide it."""


def plan(
    approvals: ApprovalsConfig, request: ApprovalRequest, pool_manager: str | None
) -> tuple[list[ApprovalStep], int, Outcome]:
    """The levels of ``request`` (those with somebody to decide), the index of the one it
    starts at, and the outcome when the last one times out. ``pool_manager`` is the
    manager of the lead's pool (None: the lead's pool has none). ``ApprovalRefused``
    saying why when it cannot be made."""
    kind = request.kind
    chain = approvals.chain(kind)
    if chain is None:
        raise ApprovalRefused(
            f"no approval chain is configured for {kind.value}: add approvals.{kind.value} "
            "to the configuration and publish it"
        )
    start_number: int | None = None
    steps: list[ApprovalStep] = []
    for number, level in enumerate(chain.levels, start=1):
        covers = (
            kind is not ApprovalKind.discount
            or level.up_to is None
            or (request.percent is not None and request.percent <= level.up_to)
        )
        if start_number is None and covers:
            start_number = number
        people = [pool_manager if a == POOL_MANAGER else a for a in level.approvers]
        approvers = [p for p in dict.fromkeys(people) if p is not None]
        if approvers:
            steps.append(
                ApprovalStep(
                    number=number, approvers=approvers, timeout=level.timeout, up_to=level.up_to
                )
            )
    if start_number is None:
        raise ApprovalRefused(
            f"no level of approvals.discount covers {_percent(request.percent)}%: the "
            "highest level's up_to is below it"
        )
    start = next((i for i, step in enumerate(steps) if step.number >= start_number), None)
    if start is None:
        raise ApprovalRefused(
            f"nobody can approve this {kind.value}: the lead's pool has no manager and no "
            "later level of the chain names an approver"
        )
    return steps, start, chain.on_timeout


def pool_manager_of(config: RoutingConfig, pool: str | None, owner: str | None) -> str | None:
    """The manager of the lead's pool: ``pool`` (the pool that routed it), else the first
    pool with a manager that has ``owner`` as a member; None when there is none."""
    pools = [p for p in config.pools if p.name == pool]
    if not pools and owner is not None:
        email = normalize_email(owner)
        pools = [p for p in config.pools if any(m.rep == email for m in p.members)]
    return next((p.manager for p in pools if p.manager), None)


class PlanApprovalInput(BaseModel):
    """Resolve a request's chain for a lead: its pool and owner (for ``pool_manager``),
    and how many approvals its workflow has numbered (the next one's number is higher)."""

    lead_id: str
    request: ApprovalRequest
    pool: str | None = None
    owner: str | None = None
    requested: int = 0


class ApprovalPlan(BaseModel):
    """A request's chain as the published configuration resolves it for one lead."""

    number: int
    levels: list[ApprovalStep]
    start: int
    on_timeout: Outcome = Outcome.rejected
    config_version: int | None = None


class ApprovalInput(BaseModel):
    """The ``Approval`` workflow's input: the request, its resolved levels, and what its
    messages show about the lead."""

    approval_id: str
    number: int
    lead_id: str
    lead_workflow_id: str
    request: ApprovalRequest
    requested_by: str
    requested_at: datetime
    levels: list[ApprovalStep]
    start: int = 0
    on_timeout: Outcome = Outcome.rejected
    lead_name: str
    company: str | None = None
    owner: str | None = None
    activity_timeout_s: float = 10.0
    step_give_up_s: float = 6 * 3600.0


class OpenLevelInput(BaseModel):
    """The request now waits for ``approval.levels[index]`` until ``deadline``: its
    approvers are asked (and, after an escalation, the level before is told it passed)."""

    approval: ApprovalInput
    index: int
    deadline: datetime


class RecordDecisionInput(BaseModel):
    """Record how the request ended; ``opened``: the indexes of the levels whose
    approvers were asked (their messages now show the outcome)."""

    approval: ApprovalInput
    result: ApprovalResult
    opened: list[int] = Field(default_factory=list)


class ApprovalDecisionIn(BaseModel):
    """A decision as every boundary sends it (update ``decide``): approve or reject, by
    whom (an email), and why; a rejection needs a comment."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Decision
    by: Person
    comment: Comment | None = None

    @model_validator(mode="after")
    def _checked(self) -> ApprovalDecisionIn:
        self.by = normalize_email(self.by)
        if not self.comment:
            self.comment = None
        if self.decision is Decision.reject and self.comment is None:
            raise ValueError("comment: a rejection needs a comment saying why")
        return self


class ApprovalWithdrawal(BaseModel):
    """The lead's workflow ends a request its lead no longer allows (signal
    ``withdraw``): why, in a few words ("the lead is lost now")."""

    reason: str


class ApprovalResult(BaseModel):
    """How a request ended: approved or rejected, by whom (``timeout`` when its last
    level let the time pass), or withdrawn by the lead's ``lifecycle`` (``comment``
    says why); when, at which level (counted from 1)."""

    approval_id: str
    lead_id: str
    request: ApprovalRequest
    outcome: Outcome
    timed_out: bool = False
    decided_by: str
    decided_at: datetime
    level: int
    comment: str | None = None

    @property
    def kind(self) -> ApprovalKind:
        return self.request.kind

    def same_decision(self, decision: ApprovalDecisionIn) -> bool:
        """Whether ``decision`` is the one that made this result (sent again)."""
        wanted = Outcome.approved if decision.decision is Decision.approve else Outcome.rejected
        return not self.timed_out and self.decided_by == decision.by and self.outcome is wanted

    def how(self) -> str:
        """How it ended, for a refusal: "timed out", "approved by …", "withdrawn (the
        lead is lost now)"."""
        if self.outcome is Outcome.withdrawn:
            return f"withdrawn ({self.comment})" if self.comment else "withdrawn"
        if self.timed_out:
            return "timed out"
        return f"{self.outcome.value} by {self.decided_by}"


class ApprovalStarted(BaseModel):
    """The answer to a request: its id, and the level and approvers it waits for."""

    approval_id: str
    kind: ApprovalKind
    level: int
    approvers: list[str]
    levels: int
    deadline: datetime


class ApprovalState(BaseModel):
    """What the ``Approval`` workflow knows; answered by its ``state`` query."""

    approval_id: str
    lead_id: str
    request: ApprovalRequest
    requested_by: str
    level: int
    levels: list[int]
    approvers: list[str]
    deadline: datetime | None = None
    result: ApprovalResult | None = None

    @property
    def status(self) -> str:
        return "pending" if self.result is None else self.result.outcome.value


RecordDecisionInput.model_rebuild()
