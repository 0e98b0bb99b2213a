"""``POST /leads/{lead_id}/events``: the one entry point for what people and systems
report about a lead (the API now; Slack, CRM webhooks and the admin app use the same
model and the same update).

The body is validated into ``domain.stages.LeadEventIn``; the event goes to the lead's
workflow as the ``lead_event`` update, whose validator refuses an event that does not
apply in the lead's stage. So the caller learns the outcome: 202 with the new stage, 409
naming the stage and the events allowed in it, 404 for an unknown lead, 422 naming the
field. The workflow remembers the answers to recent ``event_id``s (across runs): the same
event delivered twice is applied once and answered the same way both times, the second
answer saying ``"applied": false``.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.lead import Stage, workflow_id_for
from domain.stages import LeadEventIn, LeadEventResult, LeadEventType, allowed_events
from store import leads as lead_store
from store import reps as rep_store
from web.deps import ApiTeamLead, BearerDoc, Context
from web.leads import LeadId
from web.submission import IntakeError, parse_json, read_body

log = logging.getLogger("leadflow.web")
router = APIRouter()

MAX_EVENT_BYTES = 16 * 1024
UPDATE_TIMEOUT = timedelta(seconds=20)
_FIELD_PREFIX = re.compile(r"^(?P<field>[a-z_, ]+): (?P<message>.+)$", re.DOTALL)


@router.post(
    "/leads/{lead_id}/events",
    status_code=202,
    dependencies=[BearerDoc],
    responses={
        404: {"description": "no lead with this id"},
        409: {"description": "the event does not apply in the lead's stage"},
        422: {"description": "a field of the event is missing or invalid"},
    },
)
async def post_event(
    lead_id: LeadId, request: Request, context: Context, principal: ApiTeamLead
) -> Response:
    """Report an event of a lead: `{"type": ..., "event_id"?: ..., ...}` (see
    docs/lifecycle.md for the types, the fields each needs and the stages it applies
    in). Answers the lead's stage after it."""
    try:
        body = await read_body(request, MAX_EVENT_BYTES)
        data = parse_json(body)
    except IntakeError as err:
        return JSONResponse({"detail": err.errors}, status_code=err.status)
    if not isinstance(data, dict):
        return _unprocessable([{"field": "body", "message": "body must be a JSON object"}])
    data.setdefault("by", principal.actor)
    try:
        event = LeadEventIn.model_validate(data)
    except ValidationError as err:
        return _unprocessable(_event_errors(err))
    problem = await run_in_threadpool(_unknown_rep, context, event)
    if problem is not None:
        return _unprocessable([problem])
    handle = context.temporal.get_workflow_handle(workflow_id_for(lead_id))
    try:
        result: LeadEventResult = await handle.execute_update(
            "lead_event",
            event,
            result_type=LeadEventResult,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        return _refused(err, event)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return await run_in_threadpool(_closed_or_unknown, context, lead_id, event)
        log.warning("could not send an event to lead %s: %s", lead_id, err.status)
        return JSONResponse(
            {"detail": [{"field": "lead_id", "message": "the workflow service is unavailable"}]},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse(result.model_dump(mode="json"), status_code=202)


def _unprocessable(errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=422)


def _event_errors(err: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as ``{field, message}``; a check of the whole event names its
    field at the start of its message (``reason: required for ...``)."""
    out = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "is required"
        elif field == "type" and item["type"] == "enum":
            message = "unknown event type; one of " + ", ".join(t.value for t in LeadEventType)
        if not field:
            found = _FIELD_PREFIX.match(message)
            field, message = (found["field"], found["message"]) if found else ("body", message)
        out.append({"field": field, "message": message})
    return out


def _unknown_rep(context: Context, event: LeadEventIn) -> dict[str, str] | None:
    """The rep a ``reassign`` or ``owner_changed`` names must be an active rep."""
    with context.db.read() as session:
        if event.to is not None and rep_store.active_rep_by_email(session, event.to) is None:
            return {"field": "to", "message": f"no active rep has the email {event.to!r}"}
        if event.owner_email is not None and (
            rep_store.active_rep_by_email(session, event.owner_email) is None
        ):
            return {
                "field": "owner_email",
                "message": f"no active rep has the email {event.owner_email!r}",
            }
        if event.crm_owner_id is not None and (
            rep_store.email_for_crm_owner(
                session, event.crm_owner_id, context.settings.crm_backend.value
            )
            is None
        ):
            return {
                "field": "crm_owner_id",
                "message": f"no rep is linked to the CRM owner {event.crm_owner_id!r}",
            }
    return None


def _refused(err: WorkflowUpdateFailedError, event: LeadEventIn) -> JSONResponse:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == "EventNotAllowed":
        details: dict[str, Any] = cause.details[0] if cause.details else {}
        return _conflict(Stage(details.get("stage", "captured")), event, cause.message)
    message = cause.message if isinstance(cause, ApplicationError) else str(err)
    log.warning("an event was refused by the lifecycle: %s", type(cause).__name__)
    return JSONResponse(
        {"detail": [{"field": "type", "message": f"the event could not be applied: {message}"}]},
        status_code=409,
    )


def _conflict(stage: Stage, event: LeadEventIn, message: str | None = None) -> JSONResponse:
    allowed = allowed_events(stage)
    return JSONResponse(
        {
            "detail": [
                {
                    "field": "type",
                    "message": message
                    or f"{event.type.value!r} does not apply to a lead in stage {stage.value!r}",
                }
            ],
            "stage": stage.value,
            "allowed_events": allowed,
        },
        status_code=409,
    )


def _closed_or_unknown(context: Context, lead_id: str, event: LeadEventIn) -> JSONResponse:
    """No open lifecycle: a lead whose lifecycle ended gets a 409 with its stage (no
    event applies any more), a lead nobody knows a 404."""
    with context.db.read() as session:
        lead = lead_store.get_lead(session, lead_id)
        stage = Stage(lead.stage) if lead is not None else None
    if stage is None:
        return JSONResponse(
            {"detail": [{"field": "lead_id", "message": f"no lead with id {lead_id!r}"}]},
            status_code=404,
        )
    return _conflict(
        stage,
        event,
        f"{event.type.value!r} does not apply: the lead's lifecycle has ended "
        f"(stage {stage.value!r})",
    )
