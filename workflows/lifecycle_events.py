"""The lead's life after routing, as steps of its workflow: the events people report,
the timers that fire, nurture and its recycle, and the hand-off of a won customer.

Every method here runs under the workflow's lock (events and timers never interleave),
decides with ``domain.stages`` and ``domain.lifecycle_plan``, and acts through
activities only.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.lifecycle import LifecycleActivities
    from domain.lead import EventType, Stage
    from domain.lifecycle_plan import SLA_TIMERS, merged, timers_on_enter
    from domain.lifecycle_steps import (
        CrmUpdateInput,
        EngagementInput,
        RerouteInput,
        RerouteReason,
        StageChangeInput,
    )
    from domain.stages import LeadEventIn, LeadEventType, next_stage

from workflows.resubmissions import Resubmissions
from workflows.steps import StepFailed

E = LeadEventType
# Worked stages a lead may sit in for long: a "stale" timer reminds the owner.
STALE_STAGES = (
    Stage.meeting_booked,
    Stage.presentation,
    Stage.qualified,
    Stage.proposal,
    Stage.negotiation,
)
# The CRM status a stage shows (stages not listed leave the status as it is).
CRM_STATUS = {
    Stage.assigned: "open",
    Stage.contacted: "working",
    Stage.qualified: "qualified",
    Stage.nurturing: "nurturing",
    Stage.disqualified: "disqualified",
}
NURTURE_EVENTS = (E.no_response, E.declined, E.presentation_failed)


class EventSteps(Resubmissions):
    _continue: bool

    # -- events ----------------------------------------------------------------------

    async def _apply_event(self, event: LeadEventIn) -> None:
        """Apply one event that applies in the lead's stage (checked by the caller)."""
        state = self.state
        t = event.type
        key = f"{self._key}:event:{event.event_id}"
        after = next_stage(state.stage, t)
        data = _event_data(event)
        if t is E.engagement:
            await self._engagement(event, key)
        elif t is E.reassign:
            await self._reassign(RerouteReason.reassign, key, to=event.to, by=event.by)
        elif t is E.owner_changed:
            await self._reassign(
                RerouteReason.owner_changed,
                key,
                to=event.owner_email,
                crm_owner_id=event.crm_owner_id,
                by=event.by or "crm",
            )
        elif t is E.lost:
            await self._change(EventType.lost, Stage.lost, key, data)
            await self._enter_nurture(f"lost: {event.reason}", f"{key}:nurture", lost=True)
        elif t in NURTURE_EVENTS:
            await self._enter_nurture(
                event.reason or t.value.replace("_", " "), key, data=data, type_=EventType(t.value)
            )
        elif t is E.disqualified:
            await self._change(EventType.disqualified, after, key, data)
            await self._crm_status(f"{key}:crm", reason=event.reason, nurture=False)
        elif t is E.won:
            state.won_at = workflow.now()
            state.won_amount = str(event.amount)
            state.won_currency = event.currency
            await self._change(EventType.won, after, key, data)
        else:
            if t is E.contacted:
                state.contacted = True
            start = ["stale"] if after in STALE_STAGES else []
            await self._change(EventType(t.value), after, key, data, start=start)
            if after in CRM_STATUS:
                await self._crm_status(f"{key}:crm")

    async def _change(
        self,
        type_: EventType,
        stage: Stage,
        key: str,
        data: dict[str, str | int | float | bool | None],
        *,
        start: list[str] | None = None,
    ) -> None:
        """Record an event that moves the lead to ``stage``; the stage's timers start,
        the previous stage's stop (``domain.lifecycle_plan.timers_on_enter``)."""
        state = self.state
        previous = state.stage
        now = workflow.now()
        try:
            changed = await self._step(
                f"stage:{stage.value}",
                LifecycleActivities.change_stage,
                StageChangeInput(
                    lead_id=state.lead_id,
                    idempotency_key=key,
                    type=type_,
                    stage=stage,
                    previous_stage=previous,
                    data=data,
                    occurred_at=now,
                    start=start or [],
                    owner=state.owner,
                ),
            )
            started = changed.timers
        except StepFailed:
            started = []
        if stage is not previous:
            state.stage = stage
            state.stage_entered_at = now
            state.stale_reminders = 0
            state.timers = merged(timers_on_enter(stage, state.timers), started)
        else:
            state.timers = merged(state.timers, started)

    async def _crm_status(
        self, key: str, *, reason: str | None = None, nurture: bool | None = None
    ) -> None:
        """Show the lead's stage (and nurture-list membership) in the CRM."""
        state = self.state
        if state.submission is None:
            return
        try:
            synced = await self._step(
                "crm",
                LifecycleActivities.update_crm,
                CrmUpdateInput(
                    lead_id=state.lead_id,
                    idempotency_key=key,
                    submission=state.submission,
                    owner=state.owner,
                    score=state.score,
                    crm_id=state.crm_id,
                    status=CRM_STATUS.get(state.stage),
                    reason=reason,
                    nurture=nurture,
                ),
                failed_as=EventType.crm_sync_failed,
            )
        except StepFailed:
            return
        state.crm_id = synced.crm_id
        await self._owner_not_linked(synced)

    async def _crm_reconcile(self) -> None:
        """After a retry: the CRM as the lead is now (record, owner, status, list)."""
        state = self.state
        await self._crm_status(
            f"{self._key}:crm:retry:{state.events_applied}:{workflow.now().isoformat()}",
            nurture=state.stage is Stage.nurturing,
        )

    # -- engagement, nurture, recycle -------------------------------------------------

    async def _engagement(self, event: LeadEventIn, key: str) -> None:
        state = self.state
        assert state.submission is not None and event.kind is not None
        try:
            scored = await self._step(
                "engagement",
                LifecycleActivities.record_engagement,
                EngagementInput(
                    lead_id=state.lead_id,
                    idempotency_key=key,
                    kind=event.kind,
                    occurred_at=workflow.now(),
                    engagement=state.engagement,
                    submission=state.submission,
                    stage=state.stage,
                    by=event.by,
                ),
            )
        except StepFailed:
            return
        state.engagement = scored.engagement
        state.score, state.grade = scored.score, scored.grade
        if state.stage is Stage.nurturing and scored.score >= scored.recycle_score:
            await self._recycle(
                f"engagement raised the score to {scored.score} (recycle at {scored.recycle_score})"
            )

    async def _enter_nurture(
        self,
        reason: str,
        key: str,
        *,
        lost: bool = False,
        data: dict[str, str | int | float | bool | None] | None = None,
        type_: EventType = EventType.nurture_started,
    ) -> None:
        """The lead goes to nurture: its cool-off starts, the CRM lists it."""
        state = self.state
        state.nurture_reason = reason
        await self._change(
            type_,
            Stage.nurturing,
            key,
            {**(data or {}), "nurture_reason": reason, "lost": lost},
            start=["lost_cool_off" if lost else "cool_off"],
        )
        await self._crm_status(f"{key}:crm", reason=reason, nurture=True)

    async def _recycle(self, reason: str) -> None:
        """Out of nurture: off the list, routed again through the published rules; the
        run then continues as new, so a lead looping for years keeps a short history."""
        state = self.state
        assert state.submission is not None
        key = f"{self._key}:recycle:{state.recycles}"
        try:
            rerouted = await self._step(
                "recycle",
                LifecycleActivities.reroute_lead,
                RerouteInput(
                    lead_id=state.lead_id,
                    idempotency_key=key,
                    why=RerouteReason.recycle,
                    submission=state.submission,
                    previous=state.owner,
                    by=reason,
                    origin=state.origin,
                    score=state.score,
                    grade=state.grade,
                ),
            )
        except StepFailed:
            return
        now = workflow.now()
        state.recycles += 1
        state.owner = rerouted.owner
        state.pool = rerouted.pool or state.pool
        state.stage = Stage.assigned if rerouted.owner else Stage.scored
        state.stage_entered_at = now
        state.assigned_at = now if rerouted.owner else None
        state.contacted = False
        state.sla_reminded = state.sla_escalated = False
        state.reassignments = 0
        state.lapsed_reps = []
        state.nurture_reason = None
        state.timers = merged([], rerouted.timers)
        await self._crm_status(f"{key}:crm", nurture=False)
        self._continue = True

    # -- reassignment ----------------------------------------------------------------

    async def _reassign(
        self,
        why: RerouteReason,
        key: str,
        *,
        to: str | None = None,
        crm_owner_id: str | None = None,
        by: str | None = None,
    ) -> None:
        """Give the lead to another rep (named, or whoever the rules choose, never a rep
        who let it lapse). Nobody eligible: the lead stays where it is, and says so."""
        state = self.state
        assert state.submission is not None
        previous = state.owner
        lapsing = why is RerouteReason.sla_lapsed
        exclude = list(state.lapsed_reps)
        if previous is not None and previous.email not in exclude:
            exclude.append(previous.email)
        try:
            rerouted = await self._step(
                why.value,
                LifecycleActivities.reroute_lead,
                RerouteInput(
                    lead_id=state.lead_id,
                    idempotency_key=key,
                    why=why,
                    submission=state.submission,
                    previous=previous,
                    exclude=exclude,
                    to=to,
                    crm_owner_id=crm_owner_id,
                    by=by,
                    origin=state.origin,
                    start_sla=not state.contacted,
                    reassignments=state.reassignments + (1 if lapsing else 0),
                    score=state.score,
                    grade=state.grade,
                ),
            )
        except StepFailed:
            return
        if rerouted.owner is None:
            if why is RerouteReason.queue_retry:
                state.timers = merged(state.timers, rerouted.timers)
            return  # nobody could take it: the owner keeps it, escalation still runs
        now = workflow.now()
        if lapsing and previous is not None:
            state.lapsed_reps = [*state.lapsed_reps, previous.email]
            state.reassignments += 1
        state.owner = rerouted.owner
        state.pool = rerouted.pool or state.pool
        state.assigned_at = now
        state.sla_reminded = state.sla_escalated = False
        if state.stage is Stage.scored:
            state.stage = Stage.assigned
            state.stage_entered_at = now
            state.timers = merged([], rerouted.timers)
        else:
            kept = [t for t in state.timers if t.name not in SLA_TIMERS]
            new = [t for t in rerouted.timers if t.name in SLA_TIMERS or not kept]
            state.timers = merged(kept, new)
        if why is not RerouteReason.owner_changed:  # the CRM told us; nothing to write
            await self._crm_status(f"{key}:crm")


def _event_data(event: LeadEventIn) -> dict[str, str | int | float | bool | None]:
    data: dict[str, str | int | float | bool | None] = {
        "event_id": event.event_id,
        "by": event.by,
    }
    for name in ("reason", "currency", "kind", "to", "note"):
        value = getattr(event, name)
        if value is not None:
            data[name] = value
    if event.amount is not None:
        data["amount"] = str(event.amount)
    return data
