"""Approvals over the JSON API, behind the bearer token (docs/lifecycle.md "Approvals"):

- ``POST /api/v1/leads/{lead_id}/approvals`` (team_lead or more): ask for a discount, a
  reassignment or an ownership dispute to be approved; the lead's workflow (update
  ``request_approval``) checks its stage and starts the ``Approval`` child workflow;
- ``POST /api/v1/approvals/{approval_id}/decision``: approve or reject, as the token's
  user (or ``by`` with the installation token); only an approver of the request's
  current level may (update ``decide``; the Slack buttons and the admin's approvals page
  send the same);
- ``GET /api/v1/approvals?status=pending`` (viewer or more): the requests, newest first.

``decide_approval`` also serves the admin's Approve and Reject buttons.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.approvals import (
    ApprovalDecisionIn,
    ApprovalRequest,
    ApprovalResult,
    ApprovalStarted,
    Decision,
)
from domain.lead import workflow_id_for
from store import approvals as approval_store
from store import leads as lead_store
from store import reps as rep_store
from store.models import Approval
from web.api_attention import LeadId
from web.api_models import ERRORS, ErrorOut
from web.config_document import refused
from web.deps import ApiTeamLead, ApiViewer, AppContext, Authorized, BearerDoc, Context
from web.submission import IntakeError, parse_json, read_body

log = logging.getLogger("leadflow.web")
router = APIRouter(prefix="/api/v1", tags=["approvals"])

MAX_BODY_BYTES = 16 * 1024
MAX_PAGE = 200
MAX_OFFSET = 2**31 - 1
UPDATE_TIMEOUT = timedelta(seconds=20)
APPROVAL_ID = re.compile(r"approval-[0-9a-f]{24}-[0-9]{1,9}")  # fullmatch
UNAVAILABLE = "the workflow service is unavailable; try again shortly"
_FIELD_PREFIX = re.compile(r"^(?P<field>[a-z_]+): (?P<message>.+)$", re.DOTALL)
# How the workflows' refusals answer: status and the field they concern.
_REFUSALS = {
    "ApprovalNotAllowed": (409, "kind"),
    "ApprovalOpen": (409, "kind"),
    "ApprovalRefused": (409, "kind"),
    "NotApprover": (403, "by"),
    "AlreadyDecided": (409, "approval_id"),
    "CommentRequired": (422, "comment"),
}


# ------------------------------------------------------------------------------ models


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Decision
    comment: str | None = Field(None, max_length=1000)
    by: str | None = Field(
        None, max_length=320, description="the approver (installation token only)"
    )


class ApprovalLinks(BaseModel):
    lead: str
    admin: str
    decision: str


class ApprovalOut(BaseModel):
    approval_id: str
    lead_id: str
    kind: str
    figures: dict[str, Any] = Field(description="percent, to, claimant: those it has")
    reason: str
    requested_by: str
    requested_at: datetime
    status: str = Field(description="pending, approved, rejected or withdrawn")
    timed_out: bool
    level: int = Field(description="the level it waits for (or was decided at), from 1")
    levels: int
    approvers: list[str] = Field(description="who may decide at that level")
    deadline: datetime | None = Field(description="when the level times out (pending only)")
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    links: ApprovalLinks


class ApprovalPageOut(BaseModel):
    total: int
    limit: int
    offset: int
    approvals: list[ApprovalOut] = Field(description="newest request first")


def approval_out(row: Approval) -> ApprovalOut:
    return ApprovalOut(
        approval_id=row.id,
        lead_id=row.lead_id,
        kind=row.kind,
        figures=row.figures,
        reason=row.reason,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        status=row.status,
        timed_out=row.timed_out,
        level=row.level,
        levels=row.levels,
        approvers=list(row.approvers),
        deadline=row.deadline,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        comment=row.comment,
        links=ApprovalLinks(
            lead=f"/leads/{row.lead_id}",
            admin="/admin/approvals",
            decision=f"/api/v1/approvals/{row.id}/decision",
        ),
    )


# ------------------------------------------------------------------------------ decide


class DecisionRefused(Exception):
    """The decision was not taken: ``status`` (403, 404, 409, 422, 503), the ``field``
    it concerns and why, for a person."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


async def decide_approval(
    context: AppContext, approval_id: str, decision: ApprovalDecisionIn
) -> ApprovalResult:
    """Send ``decision`` to the approval's workflow; how the request ended. The same
    decision sent after the workflow ended is answered from the stored outcome.
    ``DecisionRefused`` otherwise."""
    if not APPROVAL_ID.fullmatch(approval_id):
        raise DecisionRefused(404, "approval_id", f"no approval with id {approval_id!r}")
    handle = context.temporal.get_workflow_handle(approval_id)
    try:
        result: ApprovalResult = await handle.execute_update(
            "decide", decision, result_type=ApprovalResult, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as err:
        raise _refusal(err) from None
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return await run_in_threadpool(_stored_answer, context, approval_id, decision)
        log.warning("could not send a decision to %s: %s", approval_id, err.status)
        raise DecisionRefused(503, "approval_id", UNAVAILABLE) from None
    except RuntimeError as err:  # a lazy client that could not connect
        log.warning("could not send a decision to %s: %s", approval_id, err)
        raise DecisionRefused(503, "approval_id", UNAVAILABLE) from None
    return result


def _refusal(err: WorkflowUpdateFailedError) -> DecisionRefused:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in _REFUSALS:
        status, field = _REFUSALS[cause.type]
        return DecisionRefused(status, field, cause.message)
    message = cause.message if isinstance(cause, ApplicationError) else str(err)
    return DecisionRefused(409, "approval_id", f"the decision could not be taken: {message}")


def _stored_answer(
    context: AppContext, approval_id: str, decision: ApprovalDecisionIn
) -> ApprovalResult:
    """The workflow has ended: the same decision again gets the stored outcome."""
    with context.db.read() as session:
        row = approval_store.get_approval(session, approval_id)
        result = approval_store.result_of(session, approval_id)
    if row is None:
        raise DecisionRefused(404, "approval_id", f"no approval with id {approval_id!r}")
    if result is None:
        raise DecisionRefused(409, "approval_id", "this request is no longer open")
    if result.same_decision(decision):
        return result
    raise DecisionRefused(409, "approval_id", f"this request was already decided: {result.how()}")


# ------------------------------------------------------------------------------ routes


@router.post(
    "/leads/{lead_id}/approvals",
    status_code=202,
    response_model=ApprovalStarted,
    responses={**ERRORS, 503: {"model": ErrorOut, "description": "Temporal did not answer"}},
    dependencies=[BearerDoc],
)
async def request_approval(
    lead_id: LeadId, request: Request, context: Context, caller: ApiTeamLead
) -> Response:
    """Ask for an approval: `{"kind": "discount" | "reassignment" | "ownership_dispute",
    "reason", "percent"?, "to"?, "claimant"?, "requested_by"?}`. Answers `202
    {"approval_id", "level", "approvers", ...}`; `409` naming the lead's stage when the
    request does not apply there (or one of its kind is open, or no chain is
    configured); `422` naming the field; `404` for an unknown lead."""
    try:
        data = parse_json(await read_body(request, MAX_BODY_BYTES))
    except IntakeError as err:
        return JSONResponse({"detail": err.errors}, status_code=err.status)
    if not isinstance(data, dict):
        return _unprocessable("body", "body must be a JSON object")
    if caller.user_id is not None:
        data.setdefault("requested_by", caller.actor)
    try:
        asked = ApprovalRequest.model_validate(data)
    except ValidationError as err:
        return JSONResponse({"detail": _field_errors(err)}, status_code=422)
    problem = await run_in_threadpool(_unknown_rep, context, asked)
    if problem is not None:
        return _unprocessable(*problem)
    handle = context.temporal.get_workflow_handle(workflow_id_for(lead_id))
    try:
        started: ApprovalStarted = await handle.execute_update(
            "request_approval", asked, result_type=ApprovalStarted, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as err:
        refusal = _refusal(err)
        cause = err.cause
        details = cause.details[0] if isinstance(cause, ApplicationError) and cause.details else {}
        body: dict[str, Any] = {"detail": [{"field": refusal.field, "message": refusal.message}]}
        if isinstance(details, dict) and "stage" in details:
            body["stage"] = details["stage"]
        return JSONResponse(body, status_code=refusal.status)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return await run_in_threadpool(_closed_or_unknown, context, lead_id)
        log.warning("could not ask lead %s for an approval: %s", lead_id, err.status)
        return JSONResponse(
            {"detail": [{"field": "lead_id", "message": UNAVAILABLE}]},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse(started.model_dump(mode="json"), status_code=202)


@router.post(
    "/approvals/{approval_id}/decision",
    response_model=ApprovalResult,
    responses={**ERRORS, 503: {"model": ErrorOut, "description": "Temporal did not answer"}},
    dependencies=[BearerDoc],
)
async def decide(
    approval_id: str, body: DecisionIn, context: Context, caller: Authorized
) -> ApprovalResult:
    """Approve or reject: `{"decision": "approve" | "reject", "comment"?}` (a rejection
    needs a comment). The decider is the token's user; with the installation token, `by`
    names them. `200` with the outcome (the same decision sent again answers the same);
    `403` when the decider is not an approver of the request's current level; `409` when
    it was decided already; `404` for an unknown approval."""
    if caller.user_id is not None:
        if body.by is not None and body.by.strip().lower() != caller.actor.lower():
            raise refused(422, "by", "only the installation token decides on someone's behalf")
        by = caller.actor
    elif body.by:
        by = body.by
    else:
        raise refused(422, "by", "name the approver: the installation token decides for `by`")
    try:
        decision = ApprovalDecisionIn(decision=body.decision, by=by, comment=body.comment)
    except ValidationError as err:
        raise HTTPException(422, _field_errors(err)) from None
    try:
        return await decide_approval(context, approval_id, decision)
    except DecisionRefused as err:
        detail = [{"field": err.field, "message": err.message}]
        headers = {"Retry-After": "5"} if err.status == 503 else None
        raise HTTPException(err.status, detail, headers=headers) from None


@router.get(
    "/approvals", response_model=ApprovalPageOut, responses=ERRORS, dependencies=[BearerDoc]
)
async def list_approvals(
    context: Context,
    _auth: ApiViewer,
    status: Annotated[
        Literal["pending", "approved", "rejected", "withdrawn", "decided"] | None,
        Query(description="pending, approved, rejected, withdrawn, or decided (ended any way)"),
    ] = None,
    lead_id: Annotated[str | None, Query(max_length=24)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ApprovalPageOut:
    """The approval requests, newest first: what was asked, by whom, the level and the
    approvers it waits for (or how it ended: who decided, when, their comment)."""

    def read() -> ApprovalPageOut:
        with context.db.read() as session:
            rows, total = approval_store.list_approvals(
                session, status=status, lead_id=lead_id, limit=limit, offset=offset
            )
            found = [approval_out(row) for row in rows]
        return ApprovalPageOut(total=total, limit=limit, offset=offset, approvals=found)

    return await run_in_threadpool(read)


# ------------------------------------------------------------------------------ helpers


def _unprocessable(field: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": [{"field": field, "message": message}]}, status_code=422)


def _field_errors(err: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as ``{field, message}``; a check of the whole request names its
    field at the start of its message (``percent: ...``)."""
    out = []
    for item in err.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "is required"
        if not field:
            found = _FIELD_PREFIX.match(message)
            field, message = (found["field"], found["message"]) if found else ("body", message)
        out.append({"field": field, "message": message})
    return out


def _unknown_rep(context: AppContext, asked: ApprovalRequest) -> tuple[str, str] | None:
    """The rep a reassignment or a dispute names must be an active rep."""
    with context.db.read() as session:
        for field, email in (("to", asked.to), ("claimant", asked.claimant)):
            if email is not None and rep_store.active_rep_by_email(session, email) is None:
                return field, f"no active rep has the email {email!r}"
    return None


def _closed_or_unknown(context: AppContext, lead_id: str) -> JSONResponse:
    with context.db.read() as session:
        lead = lead_store.get_lead(session, lead_id)
        stage = lead.stage if lead is not None else None
    if stage is None:
        return JSONResponse(
            {"detail": [{"field": "lead_id", "message": f"no lead with id {lead_id!r}"}]},
            status_code=404,
        )
    return JSONResponse(
        {
            "detail": [
                {
                    "field": "kind",
                    "message": f"the lead's lifecycle has ended (stage {stage!r}): "
                    "nothing can be approved for it",
                }
            ],
            "stage": stage,
        },
        status_code=409,
    )
