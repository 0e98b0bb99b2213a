"""How the lead's workflows run a step: one retry policy, one give-up time, and one way a
step that failed for good parks the lead as *needs attention*.

A step is an activity call. Transient failures (database busy, CRM 5xx or 429) retry with
backoff; after ``step_give_up_s`` of them, or at once for a permanent failure (bad data,
the CRM refusing a record), the step is put on the lead's timeline as ``step_failed``,
added to the lead's ``attention`` list and raised as ``StepFailed``. An admin's retry runs
it again. Nothing retries forever silently, and nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
)
from temporalio.exceptions import TimeoutError as StepTimedOut

with workflow.unsafe.imports_passed_through():
    from activities.lead import LeadActivities
    from activities.notify import NotifyActivities
    from domain.crm import crm_label
    from domain.lead import EventType, LeadSubmission, Stage
    from domain.lifecycle import (
        Attention,
        CrmSyncInput,
        CrmSyncResult,
        LeadLifecycleInput,
        LeadState,
        NotifyOwnerInput,
        RecordEventInput,
        TimerName,
    )

RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)

In = TypeVar("In")
Out = TypeVar("Out")


class StepFailed(Exception):
    """A step failed for good; it is on the timeline and in the lead's attention list."""

    def __init__(self, attention: Attention) -> None:
        super().__init__(attention.step)
        self.attention = attention


def failure_of(err: BaseException) -> tuple[str, str] | None:
    """(error type, message) when ``err`` means the step failed for good: a non-retryable
    application error, or the give-up time ran out. None: let it propagate."""
    cause: BaseException | None = err
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause:
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause.type or "ApplicationError", cause.message
    if isinstance(cause, StepTimedOut):
        return "GaveUp", "kept failing transiently until the step's give-up time"
    if isinstance(cause, ApplicationError):
        return cause.type or "ApplicationError", cause.message
    return None


class StepRunner:
    """The state every lifecycle step needs, and the way steps are run."""

    _state: LeadState | None
    _params: LeadLifecycleInput | None
    _key: str

    @property
    def state(self) -> LeadState:
        assert self._state is not None
        return self._state

    @property
    def params(self) -> LeadLifecycleInput:
        assert self._params is not None
        return self._params

    def _act(self, activity: Callable[[Any, In], Out], arg: In) -> Awaitable[Out]:
        params = self._params
        timeout = params.activity_timeout_s if params is not None else 10.0
        give_up = params.step_give_up_s if params is not None else None
        return workflow.execute_activity_method(
            activity,
            arg,
            start_to_close_timeout=timedelta(seconds=timeout),
            schedule_to_close_timeout=timedelta(seconds=give_up) if give_up else None,
            retry_policy=RETRY,
        )

    async def _step(
        self,
        step: str,
        activity: Callable[[Any, In], Out],
        arg: In,
        *,
        failed_as: EventType = EventType.step_failed,
    ) -> Out:
        """Run a step; when it fails for good, park it (see the module docstring)."""
        try:
            return await self._act(activity, arg)
        except ActivityError as err:
            failure = failure_of(err)
            if failure is None:
                raise
            raise StepFailed(await self._park(step, *failure, failed_as=failed_as)) from err

    async def _park(
        self,
        step: str,
        error: str,
        message: str,
        *,
        failed_as: EventType = EventType.step_failed,
    ) -> Attention:
        """Put a failed step on the timeline and in the lead's attention list."""
        state = self.state
        attention = Attention(step=step, error=error, message=message, at=workflow.now())
        state.attention = [a for a in state.attention if a.step != step] + [attention]
        state.needs_attention = True
        workflow.logger.warning(
            "step %s of lead %s failed for good: %s", step, state.lead_id, error
        )
        try:
            await self._act(
                LeadActivities.record_event,
                RecordEventInput(
                    lead_id=state.lead_id,
                    idempotency_key=f"{self._key}:{step}:failed:{len(state.recent_ids)}:"
                    f"{state.events_applied}:{workflow.now().isoformat()}",
                    type=failed_as,
                    data={"step": step, "error": error, "message": message},
                    needs_attention=True,
                    attention=attention,
                    submission=state.submission if not state.routed else None,
                    received_at=state.received_at if not state.routed else None,
                ),
            )
        except ActivityError as err:
            # The timeline refused it too: the flag still stands in the workflow's state.
            workflow.logger.error("could not record the failed step %s: %s", step, err)
        return attention

    async def _record(
        self,
        step: str,
        type_: EventType,
        data: dict[str, str | int | float | bool | None],
        *,
        stage: Stage | None = None,
        submission: LeadSubmission | None = None,
    ) -> None:
        """A timeline entry the workflow decided (no other side effect)."""
        await self._act(
            LeadActivities.record_event,
            RecordEventInput(
                lead_id=self.state.lead_id,
                idempotency_key=f"{self._key}:{step}",
                type=type_,
                stage=stage,
                data=data,
                submission=submission,
            ),
        )

    async def _crm_write(self, key: str | None = None) -> None:
        """Write the lead (its fields and owner) to the CRM. A refusal parks the CRM step
        with the vendor's message; the lifecycle goes on (the rep still has the lead)."""
        state = self.state
        if state.submission is None:
            return
        try:
            synced = await self._step(
                "crm",
                LeadActivities.sync_lead_to_crm,
                CrmSyncInput(
                    lead_id=state.lead_id,
                    idempotency_key=key or f"{self._key}:crm",
                    submission=state.submission,
                    owner=state.owner,
                    score=state.score,
                ),
                failed_as=EventType.crm_sync_failed,
            )
        except StepFailed:
            return
        state.crm_id = synced.crm_id
        await self._owner_not_linked(synced)

    async def _owner_not_linked(self, synced: CrmSyncResult) -> None:
        """The record went to the CRM without an owner (the rep is linked to no CRM user):
        the lead needs attention; a retry after ``leadflow reps sync`` writes the owner."""
        if synced.owner_unlinked is None:
            return
        await self._park(
            "crm_owner",
            "OwnerNotLinked",
            f"{synced.owner_unlinked} is not linked to a {crm_label(synced.crm)} user, so the CRM "
            "record has no owner; link the rep (leadflow reps sync) and retry",
        )

    async def _finish_routing(self) -> None:
        """CRM write and owner notification, each unless already done."""
        state = self.state
        if state.crm_id is None and state.submission is not None:
            await self._crm_write()
        if state.owner is not None and not state.notified and state.submission is not None:
            await self._notify_owner()

    async def _notify_owner(self) -> None:
        state = self.state
        assert state.owner is not None and state.submission is not None
        assert state.received_at is not None
        try:
            await self._step(
                "notify",
                NotifyActivities.notify_owner,
                NotifyOwnerInput(
                    lead_id=state.lead_id,
                    idempotency_key=f"{self._key}:notify",
                    owner=state.owner,
                    submission=state.submission,
                    score=state.score,
                    grade=state.grade,
                    received_at=state.received_at,
                    crm_id=state.crm_id,
                    sla_due=next(
                        (t.fires_at for t in state.timers if t.name is TimerName.sla_remind),
                        None,
                    ),
                    card=state.card if state.card and state.card.pool == state.pool else None,
                    origin=state.origin,
                ),
            )
        except StepFailed:
            return
        state.notified = True
