"""Running again a CRM notice that failed for good (``store.crm_failures``), behind the
bearer token: ``POST /api/v1/crm-notices/{notice_failure_id}/retry`` (team_lead role or
more). ``retry_crm_notice`` also serves the needs-attention page's Retry button; the
list is part of ``GET /api/v1/needs-attention``.

The notice runs again from its first step under a new workflow id
(``crm_failures.retry_id``); the changes it brought in before carry the same event ids,
so none is applied twice. Each retry is written to the ``leadflow.audit`` log."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from domain.crm import CrmNotice
from store import crm_failures
from store.models import utcnow
from web.api_attention import UNAVAILABLE, RetryRefused
from web.api_models import ERRORS, ErrorOut
from web.config_document import refused
from web.deps import ApiTeamLead, AppContext, BearerDoc, Context
from web.webhooks import start_notice

router = APIRouter(prefix="/api/v1", tags=["needs attention"])
audit_log = logging.getLogger("leadflow.audit")
log = logging.getLogger("leadflow.api")

FailureId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the failure's id")]


class NoticeRetryOut(BaseModel):
    id: int
    workflow_id: str = Field(description="the workflow that runs the notice again")


async def retry_crm_notice(
    context: AppContext, failure_id: int, actor: str
) -> tuple[CrmNotice, str]:
    """Run the failed notice again, recorded under ``actor``: the notice and the id of
    the workflow running it. ``RetryRefused``: 404 no such failure, 409 it was retried
    already, 503 the workflow service did not answer."""

    def load() -> tuple[str, CrmNotice, str | None] | None:
        with context.db.read() as session:
            row = crm_failures.get_failure(session, failure_id)
            if row is None:
                return None
            notice = CrmNotice.model_validate(row.notice)
            return crm_failures.retry_id(row), notice, row.retry_workflow_id

    found = await run_in_threadpool(load)
    if found is None:
        raise RetryRefused(404, f"no failed CRM notice with id {failure_id}")
    workflow_id, notice, retried_as = found
    if retried_as is not None:
        raise RetryRefused(409, f"CRM notice {failure_id} was retried already (as {retried_as})")
    try:
        await start_notice(
            context.temporal, context.settings.temporal_task_queue, workflow_id, notice
        )
    except WorkflowAlreadyStartedError:
        pass  # started by a retry whose answer was lost: mark it below
    except (RPCError, RuntimeError) as err:
        log.warning("could not start the retry of CRM notice %s: %s", failure_id, err)
        raise RetryRefused(503, UNAVAILABLE) from None

    def mark() -> None:
        with context.db.session() as session:
            crm_failures.mark_retried(session, failure_id, actor, workflow_id, utcnow())

    await run_in_threadpool(mark)
    audit_log.info(
        "retry of CRM notice %s (%s %s) requested by %s",
        failure_id,
        notice.object,
        notice.object_id,
        actor,
        extra={"kind": "crm_notice_retry", "workflow_id": workflow_id, "actor": actor},
    )
    return notice, workflow_id


@router.post(
    "/crm-notices/{notice_failure_id}/retry",
    status_code=202,
    response_model=NoticeRetryOut,
    responses={
        **ERRORS,
        503: {"model": ErrorOut, "description": "the workflow service did not answer"},
    },
    dependencies=[BearerDoc],
)
async def retry_notice(
    notice_failure_id: FailureId, context: Context, caller: ApiTeamLead
) -> NoticeRetryOut:
    """Run a CRM notice that failed for good again (its id from ``crm_notices`` of
    ``GET /api/v1/needs-attention``). ``404`` no such failure; ``409`` it was retried
    already; ``503`` (with ``Retry-After``) the workflow service did not answer. Needs
    the team_lead role or more."""
    try:
        _, workflow_id = await retry_crm_notice(context, notice_failure_id, caller.actor)
    except RetryRefused as err:
        headers = {"Retry-After": "5"} if err.status == 503 else None
        found = refused(err.status, "notice_failure_id", err.message)
        raise HTTPException(err.status, found.detail, headers=headers) from None
    return NoticeRetryOut(id=notice_failure_id, workflow_id=workflow_id)
