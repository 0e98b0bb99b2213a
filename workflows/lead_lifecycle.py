"""What happens to a lead over its life.

One workflow per lead identity (``lead-<lead_id>``), started by the first submission with
signal-with-start; later submissions arrive as the same signal. This slice carries a lead
through capture → score → route → CRM owner set → owner notified, then keeps the lead's
lifecycle open for further events until it has been idle for ``idle_timeout_s``.

What a run guarantees, whatever the boundary it crosses:

- every submission signalled to it is counted exactly once: submissions that arrive while
  a run continues as new travel in the next run's input, and a run that is closing for
  idleness re-opens for a submission that arrived meanwhile;
- a lead that already has an owner keeps it: a new run (after the previous one ended for
  any reason) asks ``assign_lead``, which returns the stored lead instead of routing it
  again, and the run resumes from there;
- histories stay short: resubmissions are absorbed in bounded batches, and the run
  continues as new long before Temporal's history limits.
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
    from domain.lead import EventType, LeadSubmission, Stage, workflow_id_for
    from domain.lifecycle import (
        RECENT_SUBMISSION_IDS,
        RESUBMISSION_BATCH_BYTES,
        RESUBMISSION_BATCH_ITEMS,
        AcceptChanges,
        AssignLeadInput,
        CrmSyncInput,
        CrmSyncResult,
        LeadLifecycleInput,
        LeadLifecycleResult,
        LeadState,
        NotifyOwnerInput,
        RecordEventInput,
        RecordResubmissionsInput,
        Resubmission,
        SubmissionReceived,
    )

# Transient failures (DB busy, CRM 5xx/429) retry with backoff for as long as it takes:
# an accepted lead is never dropped. Permanent errors are non-retryable; the workflow puts
# them on the timeline and raises the lead's needs-attention flag.
RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)

# Patch (see STYLE.md): runs recorded before it replay the old command order.
BOUNDED_RESUBMISSIONS = "bounded-resubmissions"

In = TypeVar("In")
Out = TypeVar("Out")


class StepFailed(Exception):
    """A step failed for good; it is on the timeline and the lead needs attention."""


@workflow.defn(name="LeadLifecycle")
class LeadLifecycleWorkflow:
    def __init__(self) -> None:
        self._state: LeadState | None = None
        self._pending: list[SubmissionReceived] = []
        self._accepts: list[AcceptChanges] = []
        self._step_timeout = timedelta(seconds=30)
        self._key = ""

    @workflow.signal(name="submission_received")
    def submission_received(self, item: SubmissionReceived) -> None:
        self._pending.append(item)

    @workflow.signal(name="accept_changes")
    def accept_changes(self, params: AcceptChanges) -> None:
        self._accepts.append(params)

    @workflow.query(name="state")
    def state(self) -> LeadState | None:
        return self._state

    @workflow.run
    async def run(self, params: LeadLifecycleInput) -> LeadLifecycleResult:
        self._step_timeout = timedelta(seconds=params.activity_timeout_s)
        self._key = f"{workflow_id_for(params.lead_id)}:{workflow.info().first_execution_run_id}"
        # Signals delivered with this run's first task are already in ``_pending``.
        self._pending[:0] = params.pending
        state = params.state or LeadState(lead_id=params.lead_id)
        self._state = state

        if not state.routed:
            await workflow.wait_condition(lambda: bool(self._pending))
            await self._route_first_submission(params, self._pending.pop(0))

        idle = timedelta(seconds=params.idle_timeout_s)
        while True:
            try:
                await workflow.wait_condition(
                    lambda: bool(self._pending or self._accepts), timeout=idle
                )
            except TimeoutError:
                if await self._close(params):
                    break
                continue
            if workflow.patched(BOUNDED_RESUBMISSIONS):
                await self._absorb_batch(params)
                await self._apply_accepted_changes(params)
            else:
                await self._absorb_all_v1(params)
            if self._history_is_long(params):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    params.model_copy(update={"state": state, "pending": self._pending})
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
        state.submissions += 1
        state.recent_ids = [first.submission_id]

        try:
            assignment = await self._step(
                params,
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
            state.routed = True  # nothing to route with; the lead is flagged for a person
            return
        if assignment.kept is not None:
            await self._resume(params, assignment.kept, first)
            return
        state.score = assignment.score.score
        state.grade = assignment.score.grade
        state.owner = assignment.decision.owner
        state.stage = Stage.assigned if state.owner else Stage.scored
        await self._finish_routing(params)
        state.routed = True

    async def _resume(
        self, params: LeadLifecycleInput, stored: LeadState, first: SubmissionReceived
    ) -> None:
        """The lead already had an owner: an earlier run ended (idle close, terminated,
        history limit) and this post started a new one. Carry on from the stored lead,
        keep its owner, finish any routing step it missed, and treat this post as a
        resubmission."""
        state = self._state
        assert state is not None
        for name in LeadState.model_fields:
            setattr(state, name, getattr(stored, name))
        self._pending.insert(0, first)
        await self._record(
            params,
            "resumed",
            EventType.lifecycle_resumed,
            {"owner_rep_id": state.owner.rep_id if state.owner else None},
        )
        await self._finish_routing(params)

    async def _finish_routing(self, params: LeadLifecycleInput) -> None:
        """CRM write and owner notification, each unless already done."""
        state = self._state
        assert state is not None
        if state.crm_id is None and state.submission is not None:
            synced = await self._sync_crm(params, f"{self._key}:crm")
            if synced is not None:
                state.crm_id = synced.crm_id
        if state.owner is not None and not state.notified and state.submission is not None:
            assert state.received_at is not None
            try:
                await self._step(
                    params,
                    "notify",
                    LeadActivities.notify_owner,
                    NotifyOwnerInput(
                        lead_id=params.lead_id,
                        idempotency_key=f"{self._key}:notify",
                        owner=state.owner,
                        submission=state.submission,
                        score=state.score,
                        grade=state.grade,
                        received_at=state.received_at,
                        crm_id=state.crm_id,
                    ),
                )
            except StepFailed:
                return
            state.notified = True

    def _take_batch(self) -> list[SubmissionReceived]:
        """The next pending submissions, bounded by count and by bytes."""
        batch: list[SubmissionReceived] = []
        size = 0
        while self._pending and len(batch) < RESUBMISSION_BATCH_ITEMS:
            item = self._pending[0]
            item_size = len(item.submission.model_dump_json()) if item.detailed else 0
            if batch and size + item_size > RESUBMISSION_BATCH_BYTES:
                break
            batch.append(self._pending.pop(0))
            size += item_size
        return batch

    async def _absorb_batch(self, params: LeadLifecycleInput) -> None:
        """Count one bounded batch of repeated submissions, keep the first ones in detail,
        fill the lead's empty fields from them and bring the CRM record up to date."""
        state = self._state
        assert state is not None
        batch = self._take_batch()
        if not batch:
            return
        records: list[Resubmission] = []
        filled_any = False
        for item in batch:
            if item.submission_id in state.recent_ids:
                continue  # the same post delivered twice
            state.recent_ids = [*state.recent_ids, item.submission_id][-RECENT_SUBMISSION_IDS:]
            state.submissions += 1
            if (
                not item.detailed
                or state.submission is None
                or state.detailed_resubmissions >= params.detail_cap
            ):
                continue
            state.detailed_resubmissions += 1
            changes = state.submission.absorb(item.submission)
            state.submission = changes.merged
            state.proposed.update(changes.proposed)
            filled_any = filled_any or bool(changes.filled)
            records.append(
                Resubmission(
                    submission_id=item.submission_id,
                    received_at=item.received_at,
                    filled=changes.filled,
                    proposed=changes.proposed,
                )
            )
        try:
            await self._step(
                params,
                f"resubmitted:{state.submissions}",
                LeadActivities.record_resubmissions,
                RecordResubmissionsInput(
                    lead_id=params.lead_id,
                    idempotency_key=f"{self._key}:resubmitted",
                    resubmissions=records,
                    total_submissions=state.submissions,
                    submission=state.submission if filled_any else None,
                ),
            )
        except StepFailed:
            pass
        if filled_any:
            await self._sync_crm(params, f"{self._key}:crm:{state.submissions}")

    async def _apply_accepted_changes(self, params: LeadLifecycleInput) -> None:
        """Apply the proposed values the owner accepted, record it and update the CRM."""
        state = self._state
        assert state is not None
        while self._accepts and state.submission is not None:
            accept = self._accepts.pop(0)
            wanted = accept.fields or list(state.proposed)
            changes = {f: state.proposed[f] for f in wanted if f in state.proposed}
            if not changes:
                continue
            state.submission = state.submission.with_changes(changes)
            for field in changes:
                del state.proposed[field]
            await self._record(
                params,
                f"accepted:{len(state.recent_ids)}:{state.submissions}:{sorted(changes)}",
                EventType.changes_accepted,
                {"accepted_by": accept.accepted_by, **{k: str(v) for k, v in changes.items()}},
                submission=state.submission,
            )
            await self._sync_crm(params, f"{self._key}:crm:accepted:{sorted(changes)}")

    async def _absorb_all_v1(self, params: LeadLifecycleInput) -> None:
        """The unbounded absorb of runs recorded before ``BOUNDED_RESUBMISSIONS``; kept
        only so that their histories replay."""
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

    def _history_is_long(self, params: LeadLifecycleInput) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= params.history_events_limit
            or info.get_current_history_size() >= params.history_bytes_limit
        )

    async def _close(self, params: LeadLifecycleInput) -> bool:
        """Record that the lifecycle closes for idleness; False (stay open) when a
        submission or an accepted change arrived while that was being recorded."""
        state = self._state
        assert state is not None
        await self._act(
            LeadActivities.record_event,
            RecordEventInput(
                lead_id=params.lead_id,
                idempotency_key=f"{self._key}:closed:{state.submissions}",
                type=EventType.lifecycle_closed,
                data={"reason": f"no event for {params.idle_timeout_s:.0f} s"},
            ),
        )
        # Nothing awaits between this check and the run's end, and Temporal refuses to
        # complete a run while a signal it has not seen is waiting: nothing is dropped.
        return not (self._pending or self._accepts)

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
            # The vendor's message may quote the lead's data: it goes on the timeline only.
            workflow.logger.warning("CRM refused lead %s: %s", params.lead_id, cause.type)
            state.needs_attention = True
            await self._act(
                LeadActivities.record_event,
                RecordEventInput(
                    lead_id=params.lead_id,
                    idempotency_key=f"{key}:failed",
                    type=EventType.crm_sync_failed,
                    data={"error": cause.type, "message": cause.message},
                    needs_attention=True,
                ),
            )
            return None

    async def _step(
        self, params: LeadLifecycleInput, step: str, activity: Callable[[Any, In], Out], arg: In
    ) -> Out:
        """Run a step; a permanent failure goes on the timeline, raises the lead's
        needs-attention flag and surfaces as ``StepFailed``."""
        try:
            return await self._act(activity, arg)
        except ActivityError as err:
            cause = err.cause
            if not isinstance(cause, ApplicationError) or not cause.non_retryable:
                raise
            state = self._state
            assert state is not None
            state.needs_attention = True
            workflow.logger.warning(
                "step %s of lead %s failed for good: %s", step, params.lead_id, cause.type
            )
            await self._act(
                LeadActivities.record_event,
                RecordEventInput(
                    lead_id=params.lead_id,
                    idempotency_key=f"{self._key}:{step}:failed",
                    type=EventType.step_failed,
                    data={"step": step, "error": cause.type, "message": cause.message},
                    needs_attention=True,
                ),
            )
            raise StepFailed(step) from err

    async def _record(
        self,
        params: LeadLifecycleInput,
        step: str,
        type_: EventType,
        data: dict[str, str | int | float | bool | None],
        submission: LeadSubmission | None = None,
    ) -> None:
        await self._act(
            LeadActivities.record_event,
            RecordEventInput(
                lead_id=params.lead_id,
                idempotency_key=f"{self._key}:{step}",
                type=type_,
                data=data,
                submission=submission,
            ),
        )

    def _act(self, activity: Callable[[Any, In], Out], arg: In) -> Awaitable[Out]:
        return workflow.execute_activity_method(
            activity,
            arg,
            start_to_close_timeout=self._step_timeout,
            retry_policy=RETRY,
        )
