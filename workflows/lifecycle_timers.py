"""The timers of a lead's life, as steps of its workflow: the speed-to-lead SLA
(remind, reassign, escalate), no meeting booked, a worked lead gone stale, the nurture
cool-off, a queue waiting for a rep; and the hand-off of a won customer.

Every method here runs under the workflow's lock, like the events of
``workflows.lifecycle_events``, whose steps the timers reuse.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.reminders import ReminderActivities
    from domain.lead import Stage
    from domain.lifecycle import (
        TimerName,
    )
    from domain.lifecycle_plan import SLA_TIMERS, merged
    from domain.lifecycle_steps import (
        HandoffInput,
        HandoffResult,
        ReminderInput,
        RerouteReason,
    )
    from domain.stages import WORKED

from workflows.handoff import HandoffWorkflow
from workflows.lifecycle_events import EventSteps
from workflows.steps import StepFailed, failure_of


class TimerSteps(EventSteps):
    # -- timers ----------------------------------------------------------------------

    async def _fire_due_timers(self) -> None:
        """Run every timer that is due, in the order they fire. A timer whose condition
        passed meanwhile (the lead was contacted, moved on) fires as nothing."""
        state = self.state
        while True:
            now = workflow.now()
            due = [t for t in state.timers if t.fires_at <= now]
            if not due:
                return
            timer = due[0]
            state.timers = [t for t in state.timers if t is not timer]
            await self._fire(timer.name)

    async def _fire(self, name: TimerName) -> None:
        state = self.state
        key = f"{self._key}:timer:{name.value}:{state.recycles}:{state.reassignments}"
        uncontacted = not state.contacted and state.owner is not None
        if name is TimerName.sla_remind and uncontacted and state.stage is Stage.assigned:
            await self._remind_step("remind")
        elif name is TimerName.sla_reassign and uncontacted and state.stage is Stage.assigned:
            await self._reassign(RerouteReason.sla_lapsed, key, by="speed-to-lead SLA")
        elif name is TimerName.sla_escalate and uncontacted and state.stage is Stage.assigned:
            await self._remind_step("escalate")
        elif name is TimerName.no_meeting and state.stage in (Stage.assigned, Stage.contacted):
            await self._enter_nurture("no meeting booked in time", key)
        elif name is TimerName.stale and state.stage in WORKED and state.owner is not None:
            await self._remind_step("stale")
        elif name is TimerName.cool_off and state.stage is Stage.nurturing:
            await self._recycle("the nurture cool-off ended")
        elif name is TimerName.queue_retry and state.stage is Stage.scored:
            await self._reassign(RerouteReason.queue_retry, f"{key}:{workflow.now().isoformat()}")

    async def _remind_step(self, step: str) -> None:
        """An SLA reminder or escalation, or a stale-lead reminder."""
        state = self.state
        if state.owner is None or state.submission is None or state.assigned_at is None:
            return
        timer = {
            "remind": TimerName.sla_remind,
            "escalate": TimerName.sla_escalate,
            "stale": TimerName.stale,
        }[step]
        try:
            result = await self._step(
                step,
                ReminderActivities.remind,
                ReminderInput(
                    lead_id=state.lead_id,
                    idempotency_key=f"{self._key}:{step}:{state.recycles}:"
                    f"{state.reassignments}:{state.stale_reminders}",
                    timer=timer,
                    owner=state.owner,
                    submission=state.submission,
                    assigned_at=state.assigned_at,
                    stage_entered_at=state.stage_entered_at,
                    pool=state.pool,
                    reassignments=state.reassignments,
                    reminders=state.stale_reminders,
                    stage=state.stage,
                    deadline=min(
                        (t.fires_at for t in state.timers if t.name in SLA_TIMERS), default=None
                    ),
                ),
            )
        except StepFailed:
            return
        if step == "remind":
            state.sla_reminded = True
        elif step == "escalate":
            state.sla_escalated = True
        else:
            state.stale_reminders += 1
            state.timers = merged(state.timers, result.timers)
        if result.needs_attention:
            await self._park(step, "NoManager", result.needs_attention)

    # -- won → handed off ------------------------------------------------------------

    async def _hand_off(self) -> None:
        """The won customer goes to account management: the ``Handoff`` child workflow
        (id ``handoff-<lead_id>``, so a restarted worker never hands off twice)."""
        state = self.state
        assert state.submission is not None and state.received_at is not None
        assert state.won_at is not None
        try:
            result: HandoffResult = await workflow.execute_child_workflow(
                HandoffWorkflow.run,
                HandoffInput(
                    lead_id=state.lead_id,
                    submission=state.submission,
                    owner=state.owner,
                    crm_id=state.crm_id,
                    received_at=state.received_at,
                    won_at=state.won_at,
                    amount=state.won_amount or "0",
                    currency=state.won_currency or "EUR",
                    activity_timeout_s=self.params.activity_timeout_s,
                    step_give_up_s=self.params.step_give_up_s,
                ),
                id=f"handoff-{state.lead_id}",
            )
        except ChildWorkflowError as err:
            failure = failure_of(err) or ("HandoffFailed", str(err))
            await self._park("handoff", *failure)
            return
        state.stage = Stage.handed_off
        state.stage_entered_at = workflow.now()
        state.account_manager = result.account_manager
        state.timers = []
