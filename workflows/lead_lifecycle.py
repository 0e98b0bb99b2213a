"""What happens to a lead over its life.

One workflow per lead identity (``lead-<lead_id>``), started by the first submission with
signal-with-start; later submissions arrive as the same signal. This slice carries a lead
through capture → score → route → CRM owner set → owner notified, then keeps the lead's
lifecycle open for further events until it has been idle for ``idle_timeout_s``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.lead import LeadActivities
    from domain.lead import Stage, workflow_id_for
    from domain.lifecycle import (
        AssignLeadInput,
        CloseLifecycleInput,
        CrmSyncInput,
        LeadLifecycleInput,
        LeadLifecycleResult,
        LeadState,
        NotifyOwnerInput,
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


@workflow.defn(name="LeadLifecycle")
class LeadLifecycleWorkflow:
    def __init__(self) -> None:
        self._state: LeadState | None = None
        self._pending: list[SubmissionReceived] = []

    @workflow.signal(name="submission_received")
    def submission_received(self, item: SubmissionReceived) -> None:
        self._pending.append(item)

    @workflow.query(name="state")
    def state(self) -> LeadState | None:
        return self._state

    @workflow.run
    async def run(self, params: LeadLifecycleInput) -> LeadLifecycleResult:
        timeout = timedelta(seconds=params.activity_timeout_s)
        self._state = params.state or LeadState(lead_id=params.lead_id)
        state = self._state
        wf_key = f"{workflow_id_for(params.lead_id)}:{workflow.info().first_execution_run_id}"

        if not state.routed:
            await workflow.wait_condition(lambda: bool(self._pending))
            first = self._pending.pop(0)
            state.submission = first.submission
            state.received_at = first.received_at
            state.submissions = 1

            assignment = await workflow.execute_activity_method(
                LeadActivities.assign_lead,
                AssignLeadInput(
                    lead_id=params.lead_id,
                    workflow_id=workflow.info().workflow_id,
                    idempotency_key=wf_key,
                    submission=first.submission,
                    received_at=first.received_at,
                    source_system=params.source_system,
                ),
                start_to_close_timeout=timeout,
                retry_policy=RETRY,
            )
            state.score = assignment.score.score
            state.grade = assignment.score.grade
            state.owner = assignment.decision.owner
            state.stage = Stage.assigned if state.owner else Stage.scored

            synced = await workflow.execute_activity_method(
                LeadActivities.sync_lead_to_crm,
                CrmSyncInput(
                    lead_id=params.lead_id,
                    idempotency_key=f"{wf_key}:crm",
                    submission=first.submission,
                    owner=state.owner,
                    score=state.score,
                ),
                start_to_close_timeout=timeout,
                retry_policy=RETRY,
            )
            state.crm_id = synced.crm_id

            if state.owner is not None:
                await workflow.execute_activity_method(
                    LeadActivities.notify_owner,
                    NotifyOwnerInput(
                        lead_id=params.lead_id,
                        idempotency_key=f"{wf_key}:notify",
                        owner=state.owner,
                        submission=first.submission,
                        score=state.score,
                        grade=state.grade,
                        received_at=first.received_at,
                        crm_id=state.crm_id,
                    ),
                    start_to_close_timeout=timeout,
                    retry_policy=RETRY,
                )
            state.routed = True

        idle = timedelta(seconds=params.idle_timeout_s)
        while True:
            try:
                await workflow.wait_condition(lambda: bool(self._pending), timeout=idle)
            except TimeoutError:
                break
            await self._absorb_resubmissions(params, wf_key, timeout)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(params.model_copy(update={"state": state}))

        await workflow.execute_activity_method(
            LeadActivities.close_lifecycle,
            CloseLifecycleInput(
                lead_id=params.lead_id,
                idempotency_key=f"{wf_key}:closed",
                reason=f"no event for {params.idle_timeout_s:.0f} s",
            ),
            start_to_close_timeout=timeout,
            retry_policy=RETRY,
        )
        return LeadLifecycleResult(lead_id=params.lead_id, stage=state.stage, owner=state.owner)

    async def _absorb_resubmissions(
        self, params: LeadLifecycleInput, wf_key: str, step_timeout: timedelta
    ) -> None:
        """Record a batch of repeated submissions and bring the CRM record up to date."""
        state = self._state
        assert state is not None and state.submission is not None
        batch, self._pending = self._pending, []
        for item in batch:
            state.submission = state.submission.merged_with(item.submission)
        state.submissions += len(batch)
        await workflow.execute_activity_method(
            LeadActivities.record_resubmissions,
            RecordResubmissionsInput(
                lead_id=params.lead_id,
                idempotency_key=f"{wf_key}:resubmitted",
                submissions=batch,
            ),
            start_to_close_timeout=step_timeout,
            retry_policy=RETRY,
        )
        await workflow.execute_activity_method(
            LeadActivities.sync_lead_to_crm,
            CrmSyncInput(
                lead_id=params.lead_id,
                idempotency_key=f"{wf_key}:crm:{state.submissions}",
                submission=state.submission,
                owner=state.owner,
                score=state.score,
            ),
            start_to_close_timeout=step_timeout,
            retry_policy=RETRY,
        )
