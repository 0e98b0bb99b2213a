"""Handing a submission to its lead's lifecycle: signal-with-start of ``LeadLifecycle``
(workflow id ``lead-<lead_id>``) with the ``submission_received`` signal. The one way a
lead enters Leadflow, whether it came through ``POST /leads`` or a bulk import: a person
already known gets the signal in their running workflow (the lifecycle absorbs it as a
resubmission, and drops a ``submission_id`` it has already seen), anyone else a new one.

It returns once Temporal has recorded the start or the signal, so the submission is
durable. The workflow is named, not imported, so activities may call this too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from domain.lead import workflow_id_for
from domain.lifecycle import LeadLifecycleInput, Origin, SubmissionReceived

if TYPE_CHECKING:
    from temporalio.client import Client

    from settings import Settings

LEAD_LIFECYCLE = "LeadLifecycle"
SUBMISSION_RECEIVED = "submission_received"
START_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True)
class LifecycleLimits:
    """What the settings give every new lead's run (``LeadLifecycleInput``)."""

    idle_timeout_s: float
    activity_timeout_s: float
    detail_cap: int
    history_events_limit: int
    history_bytes_limit: int
    step_give_up_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LifecycleLimits:
        return cls(
            idle_timeout_s=settings.lifecycle_idle_timeout_s,
            activity_timeout_s=settings.activity_timeout_s,
            detail_cap=settings.resubmission_detail_cap,
            history_events_limit=settings.lifecycle_history_events_limit,
            history_bytes_limit=settings.lifecycle_history_bytes_limit,
            step_give_up_s=settings.step_give_up_s,
        )

    def input_for(self, lead_id: str, origin: Origin = Origin.inbound) -> LeadLifecycleInput:
        return LeadLifecycleInput(
            lead_id=lead_id,
            idle_timeout_s=self.idle_timeout_s,
            activity_timeout_s=self.activity_timeout_s,
            detail_cap=self.detail_cap,
            history_events_limit=self.history_events_limit,
            history_bytes_limit=self.history_bytes_limit,
            step_give_up_s=self.step_give_up_s,
            origin=origin,
        )


async def hand_to_lifecycle(
    client: Client,
    params: LeadLifecycleInput,
    received: SubmissionReceived,
    *,
    task_queue: str,
    rpc_timeout: timedelta = START_TIMEOUT,
) -> None:
    """Start the lead's workflow with the submission as its first signal, or signal the
    running one. Raises ``RPCError`` (or ``RuntimeError`` when the client cannot
    reconnect) when Temporal did not record it."""
    await client.start_workflow(
        LEAD_LIFECYCLE,
        params,
        id=workflow_id_for(params.lead_id),
        task_queue=task_queue,
        start_signal=SUBMISSION_RECEIVED,
        start_signal_args=[received],
        rpc_timeout=rpc_timeout,
    )
