"""Approval requests as rows (``store.models.Approval``): written by the approval
workflow's activities (each write idempotent: a retried step changes nothing twice), read
by the API's list, the admin's approvals page, and a decision sent again after its
workflow ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.approvals import ApprovalInput, ApprovalResult, ApprovalStep
from store.models import Approval

PENDING = "pending"
STATUSES = (PENDING, "approved", "rejected", "withdrawn")


def get_approval(session: Session, approval_id: str) -> Approval | None:
    return session.get(Approval, approval_id)


def last_number(session: Session, lead_id: str) -> int:
    """The highest number of the lead's approvals so far (0: none)."""
    found = session.scalar(select(func.max(Approval.number)).where(Approval.lead_id == lead_id))
    return int(found or 0)


def record_request(session: Session, params: ApprovalInput) -> bool:
    """Store the request as pending at its first level; False when it already is."""
    if session.get(Approval, params.approval_id) is not None:
        return False
    step = params.levels[params.start]
    request = params.request
    session.add(
        Approval(
            id=params.approval_id,
            lead_id=params.lead_id,
            number=params.number,
            kind=request.kind.value,
            figures=request.figures(),
            reason=request.reason,
            requested_by=params.requested_by,
            requested_at=params.requested_at,
            status=PENDING,
            level=step.number,
            levels=params.levels[-1].number,
            approvers=list(step.approvers),
            deadline=params.requested_at + step.timeout,
            request=request.model_dump(mode="json"),
            history=[
                _entry(
                    params.requested_at,
                    "requested",
                    params.requested_by,
                    step.number,
                    approvers=step.approvers,
                    **request.figures(),
                )
            ],
        )
    )
    session.flush()
    return True


def open_level(
    session: Session, approval_id: str, step: ApprovalStep, deadline: datetime, at: datetime
) -> bool:
    """The request now waits for ``step``'s approvers (an escalation); False when it
    already did, or was decided meanwhile."""
    row = session.get(Approval, approval_id)
    if row is None or row.status != PENDING or row.level >= step.number:
        return False
    history = [
        *row.history,
        _entry(
            at, "escalated", "timeout", step.number, approvers=step.approvers, previous=row.level
        ),
    ]
    row.level, row.approvers, row.deadline, row.history = (
        step.number,
        list(step.approvers),
        deadline,
        history,
    )
    return True


def record_result(session: Session, result: ApprovalResult) -> bool:
    """The request's outcome; False when it was recorded before."""
    row = session.get(Approval, result.approval_id)
    if row is None or row.status != PENDING:
        return False
    row.status = result.outcome.value
    row.timed_out = result.timed_out
    row.decided_by = result.decided_by
    row.decided_at = result.decided_at
    row.comment = result.comment
    row.level = result.level
    row.deadline = None
    row.result = result.model_dump(mode="json")
    action = "timed_out" if result.timed_out else result.outcome.value
    row.history = [
        *row.history,
        _entry(result.decided_at, action, result.decided_by, result.level, comment=result.comment),
    ]
    return True


def result_of(session: Session, approval_id: str) -> ApprovalResult | None:
    """How the request ended, as its workflow answered (None: pending or unknown)."""
    row = session.get(Approval, approval_id)
    if row is None or row.result is None:
        return None
    return ApprovalResult.model_validate(row.result)


def list_approvals(
    session: Session,
    *,
    status: str | None = None,
    lead_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Approval], int]:
    """A page of approvals (``status``: pending, approved, rejected or withdrawn;
    ``decided``: ended any way), newest first, and how many match in all."""
    query = select(Approval)
    if status == "decided":
        query = query.where(Approval.status != PENDING)
    elif status is not None:
        query = query.where(Approval.status == status)
    if lead_id is not None:
        query = query.where(Approval.lead_id == lead_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Approval.requested_at.desc(), Approval.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), int(total)


@dataclass(frozen=True)
class TrailEntry:
    """One step of a request's audit trail, for the admin's audit log: ``action`` is
    requested, escalated, approved, rejected, timed_out or withdrawn; ``by`` a person's
    email, ``timeout`` or ``lifecycle``."""

    at: datetime
    approval_id: str
    lead_id: str
    kind: str
    action: str
    by: str
    level: int
    levels: int
    approvers: list[str]
    comment: str | None


def audit_trail(session: Session, limit: int = 100) -> list[TrailEntry]:
    """The latest steps of the approval requests, newest first: the trails of the
    ``limit`` requests asked last and the ``limit`` decided last (an escalation of a
    request older than both is left out)."""
    asked = select(Approval).order_by(Approval.requested_at.desc()).limit(limit)
    decided = (
        select(Approval)
        .where(Approval.decided_at.is_not(None))
        .order_by(Approval.decided_at.desc())
        .limit(limit)
    )
    rows = {row.id: row for query in (asked, decided) for row in session.scalars(query)}
    found = [
        TrailEntry(
            at=datetime.fromisoformat(step["at"]),
            approval_id=row.id,
            lead_id=row.lead_id,
            kind=row.kind,
            action=str(step["action"]),
            by=str(step["by"]),
            level=int(step["level"]),
            levels=row.levels,
            approvers=list(step.get("approvers") or []),
            comment=step.get("comment"),
        )
        for row in rows.values()
        for step in row.history
    ]
    found.sort(key=lambda e: e.at, reverse=True)
    return found[:limit]


def _entry(at: datetime, action: str, by: str, level: int, **data: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": at.isoformat(), "action": action, "by": by, "level": level}
    entry.update({k: v for k, v in data.items() if v is not None})
    return entry
