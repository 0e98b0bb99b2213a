"""The leads that need attention over the JSON API, behind the bearer token: the list
(``GET /api/v1/needs-attention``, viewer role or more) and a retry of a lead's failed
steps (``POST /api/v1/leads/{lead_id}/retry``, team_lead role or more).

A retry only signals the lead's workflow (signal ``retry``, ``RetryRequest``); the
workflow runs the failed steps again and clears the lead's flag when they pass. Each
retry is written to the ``leadflow.audit`` log under its caller: the configuration and
account audit tables record other things. ``retry_lead`` also serves the admin's Retry
buttons."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError, RPCStatusCode

from domain.lead import workflow_id_for
from domain.lifecycle import Attention, RetryRequest
from store import attention as attention_store
from store import crm_failures
from store import leads as lead_store
from store.attention import NeedsAttention
from web.api_models import ERRORS, ErrorOut
from web.config_document import refused
from web.deps import ApiTeamLead, ApiViewer, AppContext, BearerDoc, Context
from web.leads import LEAD_ID

log = logging.getLogger("leadflow.web")
audit_log = logging.getLogger("leadflow.audit")
router = APIRouter(prefix="/api/v1", tags=["needs attention"])

MAX_PAGE = 200
# An offset past this many leads finds none (and stays within an INTEGER bind).
MAX_OFFSET = 2**31 - 1
NOTICES_LISTED = 50
# A signal is one small write to Temporal; past this the caller hears 503 and may retry.
SIGNAL_TIMEOUT = timedelta(seconds=5)
RETRY_SIGNAL = "retry"
UNAVAILABLE = "the workflow service is unavailable: nothing was retried; try again shortly"


def _lead_id(value: str) -> str:
    if not LEAD_ID.match(value):
        raise PydanticCustomError(
            "lead_id",
            "a lead id is 24 characters, each 0-9 or a-f (the lead_id that POST /leads "
            "answered); this one has {length} characters",
            {"length": len(value)},
        )
    return value


LeadId = Annotated[
    str,
    Path(
        description="the lead's id: 24 characters, each 0-9 or a-f",
        json_schema_extra={"pattern": LEAD_ID.pattern},
    ),
    AfterValidator(_lead_id),
]


# ------------------------------------------------------------------------------ models


class OwnerOut(BaseModel):
    name: str
    email: str


class LinksOut(BaseModel):
    lead: str = Field(description="the lead's status (GET, bearer token)")
    admin: str = Field(description="the lead's page in the admin app")
    retry: str = Field(description="run the failed steps again (POST, team_lead role)")


class AttentionLeadOut(BaseModel):
    lead_id: str
    stage: str
    owner: OwnerOut | None
    received_at: datetime
    failed_at: datetime = Field(description="when the latest of its steps failed")
    attention: list[Attention] = Field(description="the steps that failed for good")
    links: LinksOut


class CrmNoticeOut(BaseModel):
    id: int
    crm: str
    step: str = Field(description="read (what changed) or send <n> (the n-th change)")
    notice: dict[str, Any] = Field(description="what the CRM's webhook said")
    error: str
    message: str
    failed_at: datetime


class AttentionPageOut(BaseModel):
    total: int = Field(description="how many leads need attention in all")
    limit: int
    offset: int
    leads: list[AttentionLeadOut] = Field(description="newest failure first")
    crm_notices_total: int = Field(
        0, description="how many CRM notices failed for good and were not retried"
    )
    crm_notices: list[CrmNoticeOut] = Field(
        default_factory=list,
        description="the newest of them (up to 50): retried from the admin's page",
    )


class RetryOut(BaseModel):
    lead_id: str
    retrying: list[str] = Field(description="the failed steps the lifecycle runs again")


def lead_out(found: NeedsAttention) -> AttentionLeadOut:
    lead = found.lead
    owner = lead.owner
    return AttentionLeadOut(
        lead_id=lead.id,
        stage=lead.stage,
        owner=OwnerOut(name=owner.name, email=owner.email) if owner is not None else None,
        received_at=lead.received_at,
        failed_at=found.failed_at,
        attention=found.attention,
        links=LinksOut(
            lead=f"/leads/{lead.id}",
            admin=f"/admin/leads/{lead.id}",
            retry=f"/api/v1/leads/{lead.id}/retry",
        ),
    )


# ------------------------------------------------------------------------------ retry


class RetryRefused(Exception):
    """The retry was not sent: ``status`` (404, 409, 503) and why, for a person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def retry_lead(context: AppContext, lead_id: str, actor: str) -> list[str]:
    """Ask the lead's lifecycle to run its failed steps again, recorded under ``actor``;
    the steps it retries. ``RetryRefused``: 404 no such lead, 409 it does not need
    attention or its lifecycle has ended, 503 the workflow service did not answer."""

    def read() -> tuple[bool, str, list[str]] | None:
        with context.db.read() as session:
            lead = lead_store.get_lead(session, lead_id)
            if lead is None:
                return None
            failed = attention_store.lead_attention(session, lead)
            return lead.needs_attention, lead.stage, [a.step for a in failed]

    found = await run_in_threadpool(read)
    if found is None:
        raise RetryRefused(404, f"no lead with id {lead_id}")
    flagged, stage, steps = found
    if not flagged:
        raise RetryRefused(
            409,
            f"lead {lead_id} does not need attention (no step of it failed for good; it is "
            f"{stage.replace('_', ' ')}): there is nothing to retry",
        )
    workflow_id = workflow_id_for(lead_id)
    handle = context.temporal.get_workflow_handle(workflow_id)
    try:
        await handle.signal(
            RETRY_SIGNAL, RetryRequest(requested_by=actor), rpc_timeout=SIGNAL_TIMEOUT
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise RetryRefused(
                409,
                f"the lifecycle of lead {lead_id} has ended, so its failed steps cannot run "
                "again; the lead's next submission starts a new one",
            ) from None
        log.warning("could not signal a retry to lead %s: %s", lead_id, err.status)
        raise RetryRefused(503, UNAVAILABLE) from None
    except RuntimeError as err:  # a lazy client that could not connect
        log.warning("could not signal a retry to lead %s: %s", lead_id, err)
        raise RetryRefused(503, UNAVAILABLE) from None
    retrying = list(dict.fromkeys(steps))
    audit_log.info(
        "retry of lead %s requested by %s: %s",
        lead_id,
        actor,
        ", ".join(retrying) or "no step named",
        extra={
            "lead_id": lead_id,
            "workflow_id": workflow_id,
            "kind": "lead_retry",
            "actor": actor,
            "steps": ",".join(retrying),
        },
    )
    return retrying


# ------------------------------------------------------------------------------ routes


@router.get(
    "/needs-attention",
    response_model=AttentionPageOut,
    responses=ERRORS,
    dependencies=[BearerDoc],
)
async def list_needs_attention(
    context: Context,
    _auth: ApiViewer,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="leads per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="leads to skip")] = 0,
) -> AttentionPageOut:
    """The leads with a step that failed for good, newest failure first: each with its
    stage, owner, the failed steps (error and message) and links to its status, its
    admin page and its retry."""

    def read() -> AttentionPageOut:
        with context.db.read() as session:
            page, total = attention_store.needs_attention(session, limit, offset)
            leads = [lead_out(found) for found in page]
            notices, notices_total = crm_failures.open_failures(session, NOTICES_LISTED)
            crm_notices = [
                CrmNoticeOut(
                    id=n.id,
                    crm=n.crm,
                    step=n.step,
                    notice=n.notice,
                    error=n.error_type,
                    message=n.message,
                    failed_at=n.failed_at,
                )
                for n in notices
            ]
        return AttentionPageOut(
            total=total,
            limit=limit,
            offset=offset,
            leads=leads,
            crm_notices_total=notices_total,
            crm_notices=crm_notices,
        )

    return await run_in_threadpool(read)


@router.post(
    "/leads/{lead_id}/retry",
    status_code=202,
    response_model=RetryOut,
    responses={
        **ERRORS,
        503: {"model": ErrorOut, "description": "the workflow service did not answer"},
    },
    dependencies=[BearerDoc],
)
async def retry(lead_id: LeadId, context: Context, caller: ApiTeamLead) -> RetryOut:
    """Run the lead's failed steps again: its lifecycle is signalled and carries on from
    where each step stopped. ``404`` no such lead; ``409`` it does not need attention or
    its lifecycle has ended; ``503`` (with ``Retry-After``) the workflow service did not
    answer. Needs the team_lead role or more."""
    try:
        steps = await retry_lead(context, lead_id, caller.actor)
    except RetryRefused as err:
        headers = {"Retry-After": "5"} if err.status == 503 else None
        found = refused(err.status, "lead_id", err.message)
        raise HTTPException(err.status, found.detail, headers=headers) from None
    return RetryOut(lead_id=lead_id, retrying=steps)
