"""The lead API behind the bearer token: where a lead is (``GET /leads/{lead_id}``) and
the changes people make to it (``POST /leads/{lead_id}/...``).

Reads come from the database projection; changes only signal the lead's workflow, which
alone decides what they mean for the lead's current state."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from domain.lead import EventType, workflow_id_for
from domain.lifecycle import AcceptChanges
from store import leads as lead_store
from store import reps as rep_store
from store.models import LeadEvent
from web.deps import ApiTeamLead, Authorized, BearerDoc, Context
from workflows.lead_lifecycle import LeadLifecycleWorkflow

log = logging.getLogger("leadflow.web")
router = APIRouter()

LEAD_ID = re.compile(r"^[0-9a-f]{24}$")
QUERY_TIMEOUT = timedelta(seconds=2)
LeadId = Annotated[str, Path(pattern=LEAD_ID.pattern, description="the lead's id")]


@router.get("/leads/{lead_id}", name="lead_status", dependencies=[BearerDoc])
async def lead_status(lead_id: str, context: Context, _auth: Authorized) -> Response:
    """Where the lead is: stage, score, owner and its timeline."""
    found = None
    if LEAD_ID.match(lead_id):
        found = await run_in_threadpool(_lead_from_db, context, lead_id)
        if found is None:
            try:
                found = await _pending_lead(context, lead_id)
            except (RPCError, RuntimeError):
                return JSONResponse(
                    {"detail": "lead not recorded yet and the workflow service is unavailable"},
                    status_code=503,
                    headers={"Retry-After": "5"},
                )
    if found is None:
        return JSONResponse({"detail": f"no lead with id {lead_id!r}"}, status_code=404)
    found.update(await _live(context, lead_id))
    return JSONResponse(found)


async def _live(context: Context, lead_id: str) -> dict[str, Any]:
    """What only the running workflow knows: the timers it has running (what fires next
    and when, from which configuration version), its origin and the SLA bookkeeping.
    Empty timers when the lifecycle has ended (or cannot be asked right now)."""
    handle = context.temporal.get_workflow_handle(workflow_id_for(lead_id))
    try:
        state = await handle.query(LeadLifecycleWorkflow.query_state, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError, RuntimeError):
        return {"timers": [], "lifecycle": "ended or unavailable"}
    if state is None:
        return {"timers": [], "lifecycle": "starting"}
    return {
        "lifecycle": "running",
        "origin": state.origin.value,
        "timers": [t.model_dump(mode="json") for t in state.timers],
        "attention": [a.model_dump(mode="json") for a in state.attention],
        "reassignments": state.reassignments,
        "recycles": state.recycles,
        "engagement_points": round(state.engagement.points, 2),
        "config_version": state.config_version,
        "approved_discount": (
            str(state.approved_discount) if state.approved_discount is not None else None
        ),
        "open_approvals": dict(state.open_approvals),
    }


def _lead_from_db(context: Context, lead_id: str) -> dict[str, Any] | None:
    with context.db.read() as session:
        lead = lead_store.get_lead(session, lead_id)
        events = lead_store.lead_events(session, lead_id)
        if lead is None:
            return _unrecorded_lead(lead_id, events) if events else None
        owner = rep_store.get_rep(session, lead.owner_rep_id) if lead.owner_rep_id else None
        return {
            "lead_id": lead.id,
            "workflow_id": lead.workflow_id,
            "email": lead.email,
            "stage": lead.stage,
            "score": lead.score,
            "grade": lead.grade,
            "owner": {"name": owner.name, "email": owner.email} if owner else None,
            "crm_id": lead.crm_id,
            "received_at": lead.received_at.isoformat(),
            "speed_to_lead_ms": lead.speed_to_lead_ms,
            "submissions": lead.submissions,
            "needs_attention": lead.needs_attention,
            "attention": lead.attention or [],
            "routing": (lead.routing or {}).get("decision"),
            "events": [
                {"type": e.type, "stage": e.stage, "at": e.occurred_at.isoformat(), "data": e.data}
                for e in events
            ],
        }


def _unrecorded_lead(lead_id: str, events: list[LeadEvent]) -> dict[str, Any]:
    """A lead whose routing step failed for good: no stored lead, only its timeline."""
    return {
        "lead_id": lead_id,
        "workflow_id": workflow_id_for(lead_id),
        "stage": "captured",
        "score": None,
        "grade": None,
        "owner": None,
        "crm_id": None,
        "submissions": None,
        "needs_attention": any(e.type == EventType.step_failed for e in events),
        "events": [
            {"type": e.type, "stage": e.stage, "at": e.occurred_at.isoformat(), "data": e.data}
            for e in events
        ],
    }


async def _pending_lead(context: Context, lead_id: str) -> dict[str, Any] | None:
    """A lead Temporal accepted but no activity has recorded yet."""
    try:
        desc = await context.temporal.get_workflow_handle(workflow_id_for(lead_id)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return None
    return {
        "lead_id": lead_id,
        "workflow_id": desc.id,
        "stage": "captured",
        "score": None,
        "grade": None,
        "owner": None,
        "crm_id": None,
        "submissions": None,
        "needs_attention": False,
        "events": [],
    }


class AcceptChangesRequest(BaseModel):
    """Which proposed changes to apply; all of them when ``fields`` is empty."""

    fields: list[str] = Field(default_factory=list, max_length=100)
    accepted_by: str = Field("api", min_length=1, max_length=200)


@router.post("/leads/{lead_id}/changes/accept", status_code=202, dependencies=[BearerDoc])
async def accept_changes(
    lead_id: LeadId, body: AcceptChangesRequest, context: Context, _auth: ApiTeamLead
) -> Response:
    """Apply values that resubmissions proposed for fields the lead already had (see the
    ``proposed`` data of its ``resubmitted`` events). The CRM record follows. Needs a
    token with the team_lead role or more (a viewer only reads)."""
    handle = context.temporal.get_workflow_handle(workflow_id_for(lead_id))
    try:
        await handle.signal(
            "accept_changes", AcceptChanges(fields=body.fields, accepted_by=body.accepted_by)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return JSONResponse(
                {"detail": [{"field": "lead_id", "message": "no open lifecycle for this lead"}]},
                status_code=404,
            )
        log.warning("could not signal lead %s: %s", lead_id, err.status)
        return JSONResponse(
            {"detail": [{"field": "lead_id", "message": "the workflow service is unavailable"}]},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"lead_id": lead_id, "accepted": body.fields or "all"}, status_code=202)
