"""The lifecycle loop of runs recorded before the full lifecycle (``full-lifecycle``
patch): route, then absorb resubmissions until idle for ``idle_timeout_s``. Kept only so
that their histories replay with the same commands; a run of it that continues as new
continues with the full lifecycle."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.lead import LeadActivities
    from domain.lead import EventType, Stage
    from domain.lifecycle import (
        AssignLeadInput,
        LeadLifecycleInput,
        LeadLifecycleResult,
        LeadState,
        RecordEventInput,
        RecordResubmissionsInput,
        SubmissionReceived,
    )

from workflows.resubmissions import Resubmissions
from workflows.steps import StepFailed

# Patch (see STYLE.md): runs recorded before it replay the unbounded absorb.
BOUNDED_RESUBMISSIONS = "bounded-resubmissions"


class LegacyLoop(Resubmissions):
    async def _run_v1(self, params: LeadLifecycleInput) -> LeadLifecycleResult:
        state = self.state
        if not state.routed:
            await workflow.wait_condition(lambda: bool(self._pending))
            await self._v1_route_first_submission(params, self._pending.pop(0))
        idle = timedelta(seconds=params.idle_timeout_s)
        while True:
            try:
                await workflow.wait_condition(
                    lambda: bool(self._pending or self._accepts), timeout=idle
                )
            except TimeoutError:
                if await self._v1_close(params):
                    break
                continue
            if workflow.patched(BOUNDED_RESUBMISSIONS):
                await self._absorb_batch(params)
                await self._apply_accepted_changes()
            else:
                await self._absorb_all_v1(params)
            if self._history_is_long(params):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    params.model_copy(update={"state": state, "pending": self._pending})
                )
        return LeadLifecycleResult(lead_id=params.lead_id, stage=state.stage, owner=state.owner)

    async def _v1_route_first_submission(
        self, params: LeadLifecycleInput, first: SubmissionReceived
    ) -> None:
        state = self.state
        state.submission = first.submission
        state.received_at = first.received_at
        state.submissions += 1
        state.recent_ids = [first.submission_id]
        try:
            assignment = await self._step(
                "assign",
                LeadActivities.assign_lead,
                AssignLeadInput(
                    lead_id=params.lead_id,
                    workflow_id=workflow.info().workflow_id,
                    idempotency_key=self._key,
                    submission=first.submission,
                    received_at=first.received_at,
                    source_system=params.source_system,
                    submissions=state.submissions,
                ),
            )
        except StepFailed:
            state.routed = True
            return
        if assignment.kept is not None:
            await self._v1_resume(assignment.kept, first)
            return
        state.score = assignment.score.score
        state.grade = assignment.score.grade
        state.owner = assignment.decision.owner
        state.stage = Stage.assigned if state.owner else Stage.scored
        await self._finish_routing()
        state.routed = True

    async def _v1_resume(self, stored: LeadState, first: SubmissionReceived) -> None:
        state = self.state
        for name in LeadState.model_fields:
            setattr(state, name, getattr(stored, name))
        self._pending.insert(0, first)
        await self._record(
            "resumed",
            EventType.lifecycle_resumed,
            {"owner_rep_id": state.owner.rep_id if state.owner else None},
        )
        await self._finish_routing()

    async def _absorb_all_v1(self, params: LeadLifecycleInput) -> None:
        """The unbounded absorb of runs recorded before ``BOUNDED_RESUBMISSIONS``."""
        state = self.state
        assert state.submission is not None
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
        await self._crm_write(f"{self._key}:crm:{state.submissions}")

    async def _v1_close(self, params: LeadLifecycleInput) -> bool:
        state = self.state
        await self._act(
            LeadActivities.record_event,
            RecordEventInput(
                lead_id=params.lead_id,
                idempotency_key=f"{self._key}:closed:{state.submissions}",
                type=EventType.lifecycle_closed,
                data={"reason": f"no event for {params.idle_timeout_s:.0f} s"},
            ),
        )
        return not (self._pending or self._accepts)
