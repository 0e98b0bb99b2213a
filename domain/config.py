"""The routing configuration: one document that admins edit as a draft and publish as an
immutable numbered version. Reps, pools, territories, rules and the catch-all fallback
live here, with the lead-scoring model, each pool's speed-to-lead SLA and holidays, the
nurture loop's timings, the hand-off to account management and the approval chains.

This module holds the document's shape (pydantic models, which refuse unknown fields and
bad values) and exports every part of it: the building blocks (value types, working
hours, the conditions of rules) live in ``domain.config_base``, the lifecycle sections
(SLA, scoring, nurture, hand-off) in ``domain.config_lifecycle``, the approval chains in
``domain.config_approvals``, the KPIs' currency, quotas and forecasts in
``domain.config_kpis``; ``domain.config_checks``
holds the checks that need the whole document.
Both report a location such as ``pools[0].members[1].rep`` that the YAML layer turns
into a line number.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from domain.config_approvals import (
    POOL_MANAGER,
    ApprovalChain,
    ApprovalKind,
    ApprovalLevel,
    ApprovalsConfig,
    Outcome,
)
from domain.config_base import (
    DERIVED_FIELDS,
    EXTRA_FIELD,
    LEAD_FIELDS,
    NUMERIC_FIELDS,
    AllOf,
    AnyOf,
    Clock,
    Condition,
    ConfigError,
    Email,
    Name,
    Op,
    Period,
    Problem,
    Strict,
    Timezone,
    Weekday,
    When,
    WorkingHours,
)
from domain.config_kpis import Forecast, KpiPeriod, KpisConfig, Quota
from domain.config_lifecycle import (
    SCORE_FIELDS,
    EngagementConfig,
    GradeConfig,
    HandoffConfig,
    NurtureConfig,
    OnboardingTask,
    ScoringConfig,
    ScoringRule,
    SlaConfig,
)
from domain.geo import country_code


class RepConfig(Strict):
    email: Email
    name: Name
    timezone: Timezone = "UTC"
    working_hours: WorkingHours | None = None
    out_of_office: list[Period] = Field(default_factory=list)
    crm_owner_id: str | None = None
    slack_user_id: str | None = None
    active: bool = True


class Strategy(StrEnum):
    round_robin = "round_robin"
    weighted = "weighted"
    least_loaded = "least_loaded"
    named = "named"


class Member(Strict):
    rep: Email
    weight: int = Field(1, ge=0, le=100)
    daily_cap: int | None = Field(None, ge=0)
    weekly_cap: int | None = Field(None, ge=0)


class PoolFallback(Strict):
    """Who takes a lead when every member is away, capped or out of rotation."""

    queue: Name | None = None
    rep: Email | None = None

    @model_validator(mode="after")
    def _one_of(self) -> PoolFallback:
        if (self.queue is None) == (self.rep is None):
            raise ValueError("give exactly one of queue or rep")
        return self


class OnReturn(Strict):
    """A rep back from time off rejoins where the rotation stands; a pool may opt into a
    bounded catch-up instead."""

    catch_up: bool = False
    max_extra_per_day: int = Field(0, ge=0, le=1000)


SlackChannel = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, pattern=r"^(#[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{8,20})$"
    ),
]


class PoolConfig(Strict):
    name: Name
    strategy: Strategy = Strategy.round_robin
    timezone: Timezone = "UTC"
    members: list[Member] = Field(default_factory=list)
    fallback: PoolFallback | None = None
    manager: Email | None = None
    # Lead cards of this pool go to this Slack channel (``#name`` or an id) instead of
    # the owner's direct message.
    slack_channel: SlackChannel | None = None
    on_return: OnReturn = Field(default_factory=OnReturn)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    # Days the pool does not work, in its timezone: they do not count towards an SLA
    # measured in business hours.
    holidays: list[date] = Field(default_factory=list, max_length=400)


class Territory(Strict):
    name: Name
    countries: list[str] = Field(default_factory=list)
    states: list[str] = Field(default_factory=list)
    postal_prefixes: list[str] = Field(default_factory=list)

    @field_validator("countries")
    @classmethod
    def _iso_countries(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            code = country_code(item)
            if code is None:
                raise ValueError(f"unknown country {item!r} (use an ISO code like DE)")
            out.append(code)
        return out


class Assign(Strict):
    """Where a matching lead goes: a pool, a named rep, or the existing account owner
    (falling through to ``else`` when the company has no account)."""

    pool: Name | None = None
    rep: Email | None = None
    account_owner: Literal[True] | None = None
    else_: Assign | None = Field(None, alias="else")

    @model_validator(mode="after")
    def _one_target(self) -> Assign:
        targets = [t for t in (self.pool, self.rep, self.account_owner) if t is not None]
        if len(targets) != 1:
            raise ValueError("give exactly one of pool, rep or account_owner: true")
        if self.account_owner and self.else_ is None:
            raise ValueError("account_owner needs an else (a pool or rep for new accounts)")
        if self.else_ is not None and not self.account_owner:
            raise ValueError("else only follows account_owner")
        if self.else_ is not None and self.else_.account_owner:
            raise ValueError("else must be a pool or a rep")
        return self


class Rule(Strict):
    name: Name
    enabled: bool = True
    when: When | None = None  # none: matches every lead
    assign: Assign


# ------------------------------------------------------------------ scoring, nurture, handoff

# Fields a scoring rule may not test: they are what scoring computes.


class RoutingConfig(Strict):
    """The whole configuration document."""

    reps: list[RepConfig] = Field(default_factory=list)
    pools: list[PoolConfig] = Field(default_factory=list)
    territories: list[Territory] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    fallback: Assign
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    nurture: NurtureConfig = Field(default_factory=NurtureConfig)
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    # Empty by default: a document written before approvals existed stays valid.
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    # Its defaults when absent: a document written before the KPIs existed stays valid.
    kpis: KpisConfig = Field(default_factory=KpisConfig)

    def dump(self) -> dict[str, Any]:
        """The document as plain data, in its canonical form (aliases, no defaults left
        out, so that export → import → export is byte-identical)."""
        return self.model_dump(mode="json", by_alias=True)


Assign.model_rebuild()
Rule.model_rebuild()

__all__ = [
    "DERIVED_FIELDS",
    "EXTRA_FIELD",
    "LEAD_FIELDS",
    "NUMERIC_FIELDS",
    "POOL_MANAGER",
    "SCORE_FIELDS",
    "AllOf",
    "AnyOf",
    "ApprovalChain",
    "ApprovalKind",
    "ApprovalLevel",
    "ApprovalsConfig",
    "Assign",
    "Clock",
    "Condition",
    "ConfigError",
    "Email",
    "EngagementConfig",
    "Forecast",
    "GradeConfig",
    "HandoffConfig",
    "KpiPeriod",
    "KpisConfig",
    "Member",
    "Name",
    "NurtureConfig",
    "OnReturn",
    "OnboardingTask",
    "Op",
    "Outcome",
    "Period",
    "PoolConfig",
    "PoolFallback",
    "Problem",
    "Quota",
    "RepConfig",
    "RoutingConfig",
    "Rule",
    "ScoringConfig",
    "ScoringRule",
    "SlaConfig",
    "Strategy",
    "Strict",
    "Territory",
    "Timezone",
    "Weekday",
    "When",
    "WorkingHours",
]
