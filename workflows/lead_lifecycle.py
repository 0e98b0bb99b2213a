"""What happens to a lead over its life.

One workflow per lead identity (``lead-<lead_id>``), started by the first submission with
signal-with-start; later submissions arrive as the same signal. It carries the lead
through the stages of ``domain.stages`` (LIFECYCLE.md part B): capture → score → route →
CRM owner set → owner notified, then the events people report (``lead_event`` update, the
one entry point of every boundary) and the timers that keep any lead from falling through
a crack — the speed-to-lead SLA (remind, reassign, escalate), no meeting booked, a worked
lead gone stale, the nurture cool-off, a queue waiting for a rep. A won lead is handed to
account management by the ``Handoff`` child workflow; disqualified and handed-off leads
end the lifecycle. Approvals (a discount, a reassignment, an ownership dispute) are
``Approval`` child workflows started by the ``request_approval`` update; their results
come back as the ``approval_decided`` signal (``workflows.lead_approvals``).

What a run guarantees, whatever the boundary it crosses:

- every submission signalled to it is counted exactly once: submissions that arrive while
  a run continues as new travel in the next run's input, and a run that is closing
  re-opens for a submission that arrived meanwhile;
- a lead keeps its owner unless the lifecycle itself moves it (SLA lapse, a reassignment,
  the CRM's owner, a recycle from nurture): a new run asks ``assign_lead``, which returns
  the stored lead instead of routing it again;
- every event is applied once per ``event_id`` and answered the same way twice;
- histories stay short: resubmissions are absorbed in bounded batches, each nurture loop
  continues as new, and any run continues as new long before Temporal's limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.lead import LeadActivities
    from activities.lifecycle import LifecycleActivities
    from domain.approvals import ApprovalResult
    from domain.lead import EventType, Stage, workflow_id_for
    from domain.lifecycle import (
        RECENT_EVENT_IDS,
        AcceptChanges,
        AssignLeadInput,
        LeadLifecycleInput,
        LeadLifecycleResult,
        LeadState,
        Origin,
        RecordEventInput,
        RetryRequest,
        SubmissionReceived,
    )
    from domain.lifecycle_plan import merged
    from domain.lifecycle_steps import (
        StageChangeInput,
    )
    from domain.stages import (
        TERMINAL,
        WORKED,
        EventNotAllowed,
        LeadEventIn,
        LeadEventResult,
        applies,
        next_stage,
    )

from workflows.lead_approvals import LeadApprovals
from workflows.lifecycle_legacy import BOUNDED_RESUBMISSIONS, LegacyLoop
from workflows.lifecycle_timers import TimerSteps
from workflows.steps import StepFailed

# Patch (see STYLE.md): runs recorded before the full lifecycle replay the old loop.
FULL_LIFECYCLE = "full-lifecycle"

__all__ = ["BOUNDED_RESUBMISSIONS", "FULL_LIFECYCLE", "LeadLifecycleWorkflow"]


@workflow.defn(name="LeadLifecycle")
class LeadLifecycleWorkflow(TimerSteps, LegacyLoop, LeadApprovals):
    def __init__(self) -> None:
        self._state: LeadState | None = None
        self._params: LeadLifecycleInput | None = None
        self._pending: list[SubmissionReceived] = []
        self._accepts: list[AcceptChanges] = []
        self._retries: list[RetryRequest] = []
        self._approvals_in: list[ApprovalResult] = []
        self._step_timeout = timedelta(seconds=30)
        self._key = ""
        self._lock = asyncio.Lock()
        self._continue = False

    # -- messages --------------------------------------------------------------------

    @workflow.signal(name="submission_received")
    def submission_received(self, item: SubmissionReceived) -> None:
        self._pending.append(item)

    @workflow.signal(name="accept_changes")
    def accept_changes(self, params: AcceptChanges) -> None:
        self._accepts.append(params)

    @workflow.signal(name="retry")
    def retry(self, request: RetryRequest) -> None:
        self._retries.append(request)

    @workflow.query(name="state")
    def query_state(self) -> LeadState | None:
        return self._state

    @workflow.update(name="lead_event")
    async def lead_event(self, event: LeadEventIn) -> LeadEventResult:
        """Apply an event; answer the stage it leads to. Refused (never dropped or
        applied silently) when it does not apply in the lead's stage."""
        # An update can arrive with the first task of a run continued as new, before
        # ``run`` has restored the state (the validator let it through): wait for it.
        await workflow.wait_condition(lambda: self._state is not None)
        async with self._lock:
            state = self.state
            if not state.routed:
                raise _not_allowed(EventNotAllowed(Stage.captured, event.type))
            if event.event_id is not None and event.event_id in state.event_results:
                return state.event_results[event.event_id].model_copy(update={"applied": False})
            previous = state.stage
            try:
                next_stage(previous, event.type)
            except EventNotAllowed as err:
                # Valid when accepted, but an event applied just before moved the lead on.
                raise _not_allowed(err) from None
            event_id = event.event_id or str(workflow.uuid4())
            event = event.model_copy(update={"event_id": event_id})
            await self._apply_event(event)
            state.events_applied += 1
            result = LeadEventResult(
                lead_id=state.lead_id,
                event_id=event_id,
                type=event.type,
                stage=state.stage,
                previous_stage=previous,
                owner_email=state.owner.email if state.owner else None,
                score=state.score,
            )
            results = {**state.event_results, event_id: result}
            state.event_results = dict(list(results.items())[-RECENT_EVENT_IDS:])
            return result

    @lead_event.validator
    def _validate_lead_event(self, event: LeadEventIn) -> None:
        state = self._state
        if state is None:
            # The run has not started yet (the first task of a run continued as new
            # carries the update): the handler checks once the state is restored.
            return
        if event.event_id in state.event_results:
            return  # answered again, not applied again
        stage = state.stage if state.routed else Stage.captured
        if not state.routed or not applies(stage, event.type):
            raise _not_allowed(EventNotAllowed(stage, event.type))

    # -- the run ---------------------------------------------------------------------

    @workflow.run
    async def run(self, params: LeadLifecycleInput) -> LeadLifecycleResult:
        self._params = params
        self._step_timeout = timedelta(seconds=params.activity_timeout_s)
        self._key = f"{workflow_id_for(params.lead_id)}:{workflow.info().first_execution_run_id}"
        # Signals delivered with this run's first task are already in ``_pending``.
        self._pending[:0] = params.pending
        state = params.state or LeadState(lead_id=params.lead_id, origin=params.origin)
        self._state = state
        if not workflow.patched(FULL_LIFECYCLE):
            return await self._run_v1(params)

        if not state.routed:
            await workflow.wait_condition(lambda: bool(self._pending))
            async with self._lock:
                await self._route_first_submission(self._pending.pop(0))

        while True:
            if state.stage in TERMINAL and not self._has_work():
                await self._withdraw_approvals_left_behind()
                if await self._close():
                    break
                continue
            try:
                await workflow.wait_condition(self._woken(), timeout=self._until_next_timer())
            except TimeoutError:
                pass
            async with self._lock:
                await self._absorb_batch(params)
                await self._apply_accepted_changes()
                await self._retry_failed_steps()
                await self._apply_approval_results()
                await self._fire_due_timers()
                if state.stage is Stage.won and not state.attention:
                    await self._hand_off()
                await self._withdraw_approvals_left_behind()
            if self._continue or self._history_is_long(params):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    params.model_copy(update={"state": state, "pending": self._pending})
                )
        return LeadLifecycleResult(lead_id=params.lead_id, stage=state.stage, owner=state.owner)

    def _has_work(self) -> bool:
        state = self.state
        return bool(
            self._pending
            or self._accepts
            or self._retries
            or self._approval_results_waiting()
            or (state.stage is Stage.won and not state.attention)
            or self._due()
        )

    def _woken(self) -> Callable[[], bool]:
        """What ends a wait: work to do, or an event applied meanwhile that moved the
        lead or changed its timers (the wait's own timeout was set for the old ones)."""
        state = self.state
        stage, timers = state.stage, list(state.timers)
        return lambda: self._has_work() or state.stage is not stage or state.timers != timers

    def _due(self) -> bool:
        now = workflow.now()
        return any(t.fires_at <= now for t in self.state.timers)

    def _until_next_timer(self) -> timedelta | None:
        if not self.state.timers:
            return None
        wait = min(t.fires_at for t in self.state.timers) - workflow.now()
        # Temporal timers have millisecond resolution; never ask for a zero timer.
        return max(wait, timedelta(milliseconds=1))

    # -- the first submission: capture → score → route → CRM → notify -----------------

    async def _route_first_submission(self, first: SubmissionReceived) -> None:
        state = self.state
        state.submission = first.submission
        state.received_at = first.received_at
        state.submissions += 1
        state.recent_ids = [first.submission_id]
        state.origin = first.origin
        state.entered_by = first.owner_email
        await self._assign(first)

    async def _assign(self, first: SubmissionReceived | None = None) -> None:
        """Score and route the lead (or keep the owner it already has)."""
        state = self.state
        assert state.submission is not None and state.received_at is not None
        try:
            assignment = await self._step(
                "assign",
                LeadActivities.assign_lead,
                AssignLeadInput(
                    lead_id=state.lead_id,
                    workflow_id=workflow.info().workflow_id,
                    idempotency_key=self._key,
                    submission=state.submission,
                    received_at=state.received_at,
                    source_system=self.params.source_system,
                    submissions=state.submissions,
                    origin=state.origin,
                    owner_email=state.entered_by,
                ),
            )
        except StepFailed:
            return  # parked: the lead has no owner; a retry routes it
        state.routed = True
        if assignment.kept is not None:
            await self._resume(assignment.kept, first)
            return
        state.score = assignment.score.score
        state.grade = assignment.score.grade
        state.owner = assignment.decision.owner
        state.pool = assignment.decision.pool
        state.card = assignment.card
        state.config_version = assignment.decision.config_version
        now = workflow.now()
        state.stage = Stage.assigned if state.owner else Stage.scored
        state.stage_entered_at = now
        state.assigned_at = now if state.owner else None
        state.timers = merged([], assignment.timers)
        if state.origin is Origin.outbound:
            state.notified = True  # the rep entered it: nobody to tell
        await self._finish_routing()

    async def _resume(self, stored: LeadState, first: SubmissionReceived | None) -> None:
        """The lead already had an owner: an earlier run ended (closed, terminated,
        history limit) and this post started a new one. Carry on from the stored lead,
        keep its owner, finish any routing step it missed, restart its stage's timer,
        and treat this post as a resubmission."""
        state = self.state
        for name in ("stage", "submission", "received_at", "score", "grade", "owner", "crm_id"):
            setattr(state, name, getattr(stored, name))
        # This post is counted below, as a resubmission: the count goes on from the stored
        # one (which does not include it yet).
        state.submissions = stored.submissions
        state.recent_ids = []
        state.detailed_resubmissions = stored.detailed_resubmissions
        state.notified = stored.notified
        state.needs_attention = stored.needs_attention
        state.routed = True
        if first is not None:
            self._pending.insert(0, first)
        start = (
            ["no_meeting"]
            if state.stage in (Stage.assigned, Stage.contacted)
            else ["stale"]
            if state.stage in WORKED
            else ["cool_off"]
            if state.stage is Stage.nurturing
            else ["queue_retry"]
            if state.stage is Stage.scored
            else []
        )
        try:
            changed = await self._step(
                "resume",
                LifecycleActivities.change_stage,
                StageChangeInput(
                    lead_id=state.lead_id,
                    idempotency_key=f"{self._key}:resumed",
                    type=EventType.lifecycle_resumed,
                    stage=state.stage,
                    previous_stage=state.stage,
                    data={"owner": state.owner.email if state.owner else None},
                    occurred_at=workflow.now(),
                    start=start,
                    owner=state.owner,
                ),
            )
            state.timers = merged([], changed.timers)
        except StepFailed:
            pass
        if state.stage not in TERMINAL:
            await self._finish_routing()

    # -- retries of failed steps -------------------------------------------------------

    async def _retry_failed_steps(self) -> None:
        """An admin asked: run the lead's failed steps again, from where they stopped.
        A step that fails again is parked again."""
        if not self._retries:
            return
        state = self.state
        requests, self._retries = self._retries, []
        failed, state.attention = state.attention, []
        state.needs_attention = False
        await self._act(
            LeadActivities.record_event,
            _retry_record(state, self._key, [a.step for a in failed], requests[-1].requested_by),
        )
        for attention in failed:
            step = attention.step
            if step == "assign" and not state.routed:
                await self._assign()
            elif step.startswith("crm"):
                await self._crm_reconcile()
            elif step == "notify" and state.owner is not None:
                await self._notify_owner()
            elif step == "recycle":
                await self._recycle("retried after a failure")
            elif step in ("escalate", "remind", "stale"):
                await self._remind_step(step)
            # "handoff": the main loop runs the hand-off again now that nothing blocks it.

    async def _close(self) -> bool:
        """Record that the lifecycle ends; False (stay open) when a submission, a change
        or a retry arrived while that was being recorded."""
        state = self.state
        await self._record(
            f"closed:{state.submissions}:{state.events_applied}",
            EventType.lifecycle_closed,
            {"reason": f"lead {state.stage.value}"},
        )
        # Nothing awaits between this check and the run's end, and Temporal refuses to
        # complete a run while a signal it has not seen is waiting: nothing is dropped.
        return not self._has_work()


def _not_allowed(err: EventNotAllowed) -> ApplicationError:
    return ApplicationError(
        str(err),
        {"stage": err.stage.value, "allowed": err.allowed, "type": err.event.value},
        type="EventNotAllowed",
        non_retryable=True,
    )


def _retry_record(state: LeadState, key: str, steps: list[str], by: str) -> RecordEventInput:
    return RecordEventInput(
        lead_id=state.lead_id,
        idempotency_key=f"{key}:retry:{workflow.now().isoformat()}",
        type=EventType.retry_requested,
        data={"steps": ", ".join(steps), "requested_by": by},
        clear_attention=True,
    )
