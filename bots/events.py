"""The lifecycle's one entry point for events, as every boundary uses it: the JSON API
(``web/lead_events.py``), the Slack app and the admin inbox all hand a validated
``LeadEventIn`` to the lead's workflow as the ``lead_event`` update, and read the same
outcome back: applied (with the new stage), refused because it does not apply in the
lead's stage (with the stage and the events allowed there), or the lifecycle being gone
or out of reach."""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.lead import Stage, workflow_id_for
from domain.stages import LeadEventIn, LeadEventResult

log = logging.getLogger("leadflow.events")

UPDATE_TIMEOUT = timedelta(seconds=20)


class Sent(StrEnum):
    applied = "applied"  # the result says whether now or before (same event_id)
    not_allowed = "not_allowed"  # does not apply in ``stage``
    refused = "refused"  # the lifecycle refused it for another reason (``message``)
    no_lifecycle = "no_lifecycle"  # no running workflow: ended, or an unknown lead
    unavailable = "unavailable"  # Temporal could not be reached: try again


class EventOutcome(BaseModel):
    sent: Sent
    result: LeadEventResult | None = None
    stage: Stage | None = None
    allowed: list[str] = Field(default_factory=list)
    message: str | None = None


async def send_lead_event(client: Client, lead_id: str, event: LeadEventIn) -> EventOutcome:
    """Send ``event`` to the lead's lifecycle and say what became of it."""
    handle = client.get_workflow_handle(workflow_id_for(lead_id))
    try:
        result: LeadEventResult = await handle.execute_update(
            "lead_event", event, result_type=LeadEventResult, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "EventNotAllowed":
            details: dict[str, Any] = cause.details[0] if cause.details else {}
            return EventOutcome(
                sent=Sent.not_allowed,
                stage=Stage(details.get("stage", "captured")),
                allowed=list(details.get("allowed", [])),
                message=cause.message,
            )
        message = cause.message if isinstance(cause, ApplicationError) else str(err)
        log.warning("an event was refused by the lifecycle: %s", type(cause).__name__)
        return EventOutcome(sent=Sent.refused, message=message)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return EventOutcome(sent=Sent.no_lifecycle)
        log.warning("could not send an event to lead %s: %s", lead_id, err.status)
        return EventOutcome(sent=Sent.unavailable, message="the workflow service is unavailable")
    return EventOutcome(sent=Sent.applied, result=result, stage=result.stage)
