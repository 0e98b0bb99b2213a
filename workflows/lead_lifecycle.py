"""What happens to a lead over its life.

One workflow per lead identity (``lead-<lead_id>``), started by the first submission with
signal-with-start; later submissions arrive as the same signal. This slice carries a lead
through capture → score → route → CRM owner set → owner notified, then keeps the lead's
lifecycle open for further events until it has been idle for ``idle_timeout_s``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.lead import LeadActivities
    from domain.lead import EventType, Stage, workflow_id_for
    from domain.lifecycle import (
        AssignLeadInput,
        CrmSyncInput,
        CrmSyncResult,
        LeadLifecycleInput,
        LeadLifecycleResult,
        LeadState,
        NotifyOwnerInput,
        RecordEventInput,
        RecordResubmissionsInput,
        SubmissionReceived,
    )

# Transient failures (DB busy, CRM 5xx/429) retry with backoff for as long as it takes:
# an accepted lead is never dropped. Permanent CRM errors are non-retryable.
RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)

In = TypeVar("In")
Out = TypeVar("Out")


@workflow.defn(name="LeadLifecycle")
class LeadLifecycleWorkflow:
    def __init__(self) -> None:
        self._state: LeadState | None = None
        self._pending: list[SubmissionReceived] = []
        self._step_timeout = timedelta(seconds=30)
        self._key = ""

    @workflow.signal(name="submission_received")
    def submission_received(self, item: SubmissionReceived) -> None:
        self._pending.append(item)

    @workflow.query(name="state")
    def state(self) -> LeadState | None:
        return self._state

    @workflow.run
    async def run(self, params: LeadLifecycleInput) -> LeadLifecycleResult:
        self._step_timeout = timedelta(seconds=params.activity_timeout_s)
        self._key = f"{workflow_id_for(params.lead_id)}:{workflow.info().first_execution_run_id}"
        self._state = params.state or LeadState(lead_id=params.lead_id)
        state = self._state

        if not state.routed:
            await workflow.wait_condition(lambda: bool(self._pending))
            await self._route_first_submission(params, self._pending.pop(0))

        idle = timedelta(seconds=params.idle_timeout_s)
        while True:
            try:
                await workflow.wait_condition(lambda: bool(self._pending), timeout=idle)
            except TimeoutError:
                break
            await self._absorb_resubmissions(params)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(params.model_copy(update={"state": state}))

        await self._act(
            LeadActivities.record_event,
            RecordEventInput(
                lead_id=params.lead_id,
                idempotency_key=f"{self._key}:closed",
                type=EventType.lifecycle_closed,
                data={"reason": f"no event for {params.idle_timeout_s:.0f} s"},
            ),
        )
        return LeadLifecycleResult(lead_id=params.lead_id, stage=state.stage, owner=state.owner)

    async def _route_first_submission(
        self, params: LeadLifecycleInput, first: SubmissionReceived
    ) -> None:
        """capture → score → route → CRM → notify."""
        state = self._state
        assert state is not None
        state.submission = first.submission
        state.received_at = first.received_at
        state.submissions = 1

        assignment = await self._act(
            LeadActivities.assign_lead,
            AssignLeadInput(
                lead_id=params.lead_id,
                workflow_id=workflow.info().workflow_id,
                idempotency_key=self._key,
                submission=first.submission,
                received_at=first.received_at,
                source_system=params.source_system,
            ),
        )
        state.score = assignment.score.score
        state.grade = assignment.score.grade
        state.owner = assignment.decision.owner
        state.stage = Stage.assigned if state.owner else Stage.scored

        synced = await self._sync_crm(params, f"{self._key}:crm")
        if synced is not None:
            state.crm_id = synced.crm_id

        if state.owner is not None:
            await self._act(
                LeadActivities.notify_owner,
                NotifyOwnerInput(
                    lead_id=params.lead_id,
                    idempotency_key=f"{self._key}:notify",
                    owner=state.owner,
                    submission=first.submission,
                    score=state.score,
                    grade=state.grade,
                    received_at=first.received_at,
                    crm_id=state.crm_id,
                ),
            )
        state.routed = True

    async def _absorb_resubmissions(self, params: LeadLifecycleInput) -> None:
        """Record a batch of repeated submissions and bring the CRM record up to date."""
        state = self._state
        assert state is not None and state.submission is not None
        batch, self._pending = self._pending, []
        for item in batch:
            state.submission = state.submission.merged_with(item.submission)
        state.submissions += len(batch)
        await self._act(
            LeadActivities.record_resubmissions,
            RecordResubmissionsInput(
                lead_id=params.lead_id,
                idempotency_key=f"{self._key}:resubmitted",
                submissions=batch,
            ),
        )
        await self._sync_crm(params, f"{self._key}:crm:{state.submissions}")

    async def _sync_crm(self, params: LeadLifecycleInput, key: str) -> CrmSyncResult | None:
        """Write the lead to the CRM. A permanent refusal (validation, auth) is put on the
        timeline with the vendor's message and the lifecycle goes on: the rep still gets
        the lead, and admins see why the CRM does not have it."""
        state = self._state
        assert state is not None and state.submission is not None
        try:
            return await self._act(
                LeadActivities.sync_lead_to_crm,
                CrmSyncInput(
                    lead_id=params.lead_id,
                    idempotency_key=key,
                    submission=state.submission,
                    owner=state.owner,
                    score=state.score,
                ),
            )
        except ActivityError as err:
            cause = err.cause
            if not isinstance(cause, ApplicationError) or not cause.non_retryable:
                raise
            workflow.logger.warning("CRM refused lead %s: %s", params.lead_id, cause.message)
            await self._act(
                LeadActivities.record_event,
                RecordEventInput(
                    lead_id=params.lead_id,
                    idempotency_key=f"{key}:failed",
                    type=EventType.crm_sync_failed,
                    data={"error": cause.type, "message": cause.message},
                ),
            )
            return None

    def _act(self, activity: Callable[[Any, In], Out], arg: In) -> Awaitable[Out]:
        return workflow.execute_activity_method(
            activity,
            arg,
            start_to_close_timeout=self._step_timeout,
            retry_policy=RETRY,
        )
