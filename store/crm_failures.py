"""CRM notices that failed for good (``store.models_crm.CrmNoticeFailure``): recorded by
the notice's workflow (once per workflow and step, however often the step is retried),
listed on the needs-attention page, and claimed by the Retry that runs the notice again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.crm_events import NoticeFailure
from store.models_crm import CrmNoticeFailure


def record_failure(session: Session, crm: str, failure: NoticeFailure) -> bool:
    """Keep the failure; False when this workflow's step was recorded before."""
    found = session.scalar(
        select(CrmNoticeFailure.id).where(
            CrmNoticeFailure.workflow_id == failure.workflow_id,
            CrmNoticeFailure.step == failure.step,
        )
    )
    if found is not None:
        return False
    session.add(
        CrmNoticeFailure(
            workflow_id=failure.workflow_id,
            step=failure.step,
            crm=crm,
            notice=failure.notice.model_dump(mode="json"),
            error_type=failure.error_type[:100],
            message=failure.message,
        )
    )
    session.flush()
    return True


def open_failures(session: Session, limit: int = 50) -> tuple[list[CrmNoticeFailure], int]:
    """The failures nobody retried yet, newest first, and how many there are."""
    waiting = CrmNoticeFailure.retried_at.is_(None)
    total = session.scalar(select(func.count()).where(waiting)) or 0
    rows = session.scalars(
        select(CrmNoticeFailure)
        .where(waiting)
        .order_by(CrmNoticeFailure.failed_at.desc(), CrmNoticeFailure.id.desc())
        .limit(limit)
    )
    return list(rows), int(total)


def get_failure(session: Session, failure_id: int) -> CrmNoticeFailure | None:
    return session.get(CrmNoticeFailure, failure_id)


def retry_id(row: CrmNoticeFailure) -> str:
    """The id of the workflow that runs the failed notice again (one per failure)."""
    base = row.workflow_id.split("-retry-")[0]
    return f"{base}-retry-{row.id}"


def mark_retried(
    session: Session, failure_id: int, by: str, workflow_id: str, at: datetime
) -> bool:
    """Mark the failure as retried; False when it was already (or is unknown)."""
    row = session.get(CrmNoticeFailure, failure_id)
    if row is None or row.retried_at is not None:
        return False
    row.retried_at, row.retried_by, row.retry_workflow_id = at, by, workflow_id
    return True
