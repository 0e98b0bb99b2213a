"""Asking for an approval on a lead, as the Slack app (**Request reassignment**,
``/leadflow discount``) and the admin inbox do: the request is read as an
``ApprovalRequest`` by ``requested_by`` and sent to the lead's workflow as the
``request_approval`` update (the same update ``POST /api/v1/leads/{id}/approvals``
sends), which checks the lead's stage and starts the approval. Each caller words the
outcome for its own medium."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.approvals import ApprovalRequest, ApprovalStarted
from domain.lead import workflow_id_for

UPDATE_TIMEOUT = timedelta(seconds=20)


class Asked(StrEnum):
    started = "started"  # the approval runs: ``started`` says whom it waits for
    invalid = "invalid"  # the request could not be read: ``problems``
    refused = "refused"  # the lead's workflow refused it: ``refusal``
    no_lead = "no_lead"  # no running workflow answered (``status`` says why)


@dataclass(frozen=True)
class RequestOutcome:
    asked: Asked
    started: ApprovalStarted | None = None
    problems: str | None = None
    refusal: WorkflowUpdateFailedError | None = None
    status: RPCStatusCode | None = None


async def request_approval(
    temporal: Client, lead_id: str, requested_by: str, fields: dict[str, Any]
) -> RequestOutcome:
    """Ask for the approval ``fields`` describe (``kind``, ``reason``, ``percent``…) on
    the lead ``lead_id`` as ``requested_by`` (an email); what became of it."""
    try:
        request = ApprovalRequest.model_validate({**fields, "requested_by": requested_by})
    except ValidationError as err:
        problems = "; ".join(str(e["msg"]) for e in err.errors())
        return RequestOutcome(Asked.invalid, problems=problems)
    handle = temporal.get_workflow_handle(workflow_id_for(lead_id))
    try:
        started: ApprovalStarted = await handle.execute_update(
            "request_approval",
            request,
            result_type=ApprovalStarted,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        return RequestOutcome(Asked.refused, refusal=err)
    except RPCError as err:
        return RequestOutcome(Asked.no_lead, status=err.status)
    return RequestOutcome(Asked.started, started=started)
