"""The ``approvals`` section of the configuration document: who approves a discount, a
lead's reassignment and an ownership dispute between reps, level by level, each level
with a timeout after which the request escalates to the next (LIFECYCLE.md part B;
docs/configuration.md).

A request starts at the first level that applies (for a discount: the first whose
``up_to`` covers its percent), escalates level by level on each timeout, and ends as
``on_timeout`` (``rejected`` unless the chain says otherwise) when the last level times
out too. The checks that need the whole chain (the order of the percents, a level that
can never be reached) are in ``domain.config_checks``.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

from domain.config_base import Strict
from domain.durations import Duration
from domain.lead import normalize_email

POOL_MANAGER = "pool_manager"
MAX_LEVELS = 10
MAX_APPROVERS = 20


class ApprovalKind(StrEnum):
    """What a request asks to have approved."""

    discount = "discount"
    reassignment = "reassignment"
    ownership_dispute = "ownership_dispute"


class Outcome(StrEnum):
    """How a request ended. ``withdrawn``: its lead moved on to a stage the request does
    not apply in (a discount of a lead lost meanwhile) before anybody decided."""

    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


def _timeout_outcome(value: Outcome) -> Outcome:
    if value is Outcome.withdrawn:
        raise ValueError(
            "on_timeout is approved or rejected: a request is withdrawn only when its lead moves on"
        )
    return value


def _approver(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an approver: give pool_manager or an email")
    text = value.strip()
    if text == POOL_MANAGER:
        return text
    email = normalize_email(text)
    local, at, domain = email.partition("@")
    if not at or not local or not domain or " " in email or "@" in domain:
        raise ValueError(
            f"unknown approver {value!r}: give pool_manager (the manager of the lead's "
            "pool) or a person's email"
        )
    return email


def _percent_out(value: Decimal) -> int | float:
    """A percent as YAML and JSON write it: ``10``, ``12.5``."""
    return int(value) if value == value.to_integral_value() else float(value)


# ``pool_manager`` or a person's email (a rep of the configuration or an admin-app user).
Approver = Annotated[str, BeforeValidator(_approver)]
# A discount in percent: 0.01-100 with at most two decimals.
UpTo = Annotated[
    Decimal,
    Field(gt=0, le=100, decimal_places=2),
    PlainSerializer(_percent_out, return_type=int | float),
]


def _some_approver(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("a level needs at least one approver (pool_manager or an email)")
    return value


def _some_level(value: list[ApprovalLevel]) -> list[ApprovalLevel]:
    if not value:
        raise ValueError("a chain needs at least one level")
    return value


class ApprovalLevel(Strict):
    """One level of a chain: who may decide, for how long, and (discounts) up to which
    percent it decides."""

    up_to: UpTo | None = None
    approvers: Annotated[list[Approver], AfterValidator(_some_approver)] = Field(
        max_length=MAX_APPROVERS
    )
    timeout: Duration


class ApprovalChain(Strict):
    """The levels of one kind of request, lowest first, and the outcome when the last
    level times out."""

    levels: Annotated[list[ApprovalLevel], AfterValidator(_some_level)] = Field(
        max_length=MAX_LEVELS
    )
    on_timeout: Annotated[Outcome, AfterValidator(_timeout_outcome)] = Outcome.rejected


class ApprovalsConfig(Strict):
    """The approval chain of each kind of request; a kind without one cannot be
    requested."""

    discount: ApprovalChain | None = None
    reassignment: ApprovalChain | None = None
    ownership_dispute: ApprovalChain | None = None

    def chain(self, kind: ApprovalKind) -> ApprovalChain | None:
        found: ApprovalChain | None = getattr(self, kind.value)
        return found
