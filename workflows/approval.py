"""Approvals with a hierarchy: a discount during negotiation, a lead's reassignment, an
ownership dispute between reps (LIFECYCLE.md part B; docs/lifecycle.md "Approvals").

``ApprovalWorkflow`` (type ``Approval``, id ``approval-<lead_id>-<n>``) is a child of the
lead's workflow, started with parent close policy ABANDON so that it outlives the lead's
continue-as-new. Level by level it asks the level's approvers, then waits for the update
``decide`` until the level's timeout and escalates to the next level; after the last
level's timeout the request ends as the chain's ``on_timeout``. Only an approver of the
current level may decide, and only once: the first valid decision wins, the same
decision sent again is answered the same way. It records the outcome, tells the
requester, locks the approvers' messages, and signals ``approval_decided`` to the lead's
workflow (by workflow id: whichever run is open).

``LeadApprovals`` is the lead's side, mixed into ``LeadLifecycleWorkflow``: the update
``request_approval`` (validated against the lead's stage, one open request per kind)
starts the child; the signal ``approval_decided`` queues the result, which the main loop
applies under the workflow's lock like its other work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.approvals import ApprovalActivities
    from domain.approvals import (
        LIFECYCLE,
        TIMEOUT,
        ApprovalDecisionIn,
        ApprovalInput,
        ApprovalKind,
        ApprovalPlan,
        ApprovalRequest,
        ApprovalResult,
        ApprovalStarted,
        ApprovalState,
        ApprovalWithdrawal,
        Decision,
        OpenLevelInput,
        Outcome,
        PlanApprovalInput,
        RecordDecisionInput,
        approval_id_for,
        stages_for,
    )
    from domain.lead import EventType, Stage
    from domain.lifecycle import LeadState
    from domain.lifecycle_steps import RerouteReason

from workflows.lifecycle_events import EventSteps
from workflows.steps import RETRY, failure_of

In = TypeVar("In")
Out = TypeVar("Out")

APPROVAL_DECIDED = "approval_decided"
WITHDRAW = "withdraw"
# Lead runs before this change did not withdraw requests their lead left behind.
WITHDRAW_APPROVALS = "withdraw-approvals-left-behind"


def _act(
    activity: Callable[[Any, In], Out], arg: In, timeout_s: float, give_up_s: float
) -> Awaitable[Out]:
    return workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=timedelta(seconds=timeout_s),
        schedule_to_close_timeout=timedelta(seconds=give_up_s),
        retry_policy=RETRY,
    )


def _refused(message: str, type_: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, details, type=type_, non_retryable=True)


# ------------------------------------------------------------------- the child workflow


@workflow.defn(name="Approval")
class ApprovalWorkflow:
    def __init__(self) -> None:
        self._params: ApprovalInput | None = None
        self._index = 0
        self._deadline: datetime | None = None
        self._result: ApprovalResult | None = None
        self._recorded = False
        # A withdrawal signalled before ``run`` read its input (then applied by it).
        self._withdrawal: ApprovalWithdrawal | None = None

    @property
    def params(self) -> ApprovalInput:
        assert self._params is not None
        return self._params

    @workflow.run
    async def run(self, params: ApprovalInput) -> ApprovalResult:
        self._params = params
        self._index = params.start
        if self._withdrawal is not None:
            self.withdraw(self._withdrawal)
        await self._try("record the request", ApprovalActivities.record_approval_request, params)
        opened: list[int] = []
        for index in range(params.start, len(params.levels)):
            if self._result is not None:
                break
            self._index = index
            deadline = workflow.now() + params.levels[index].timeout
            self._deadline = deadline
            opened.append(index)
            await self._try(
                "ask the approvers",
                ApprovalActivities.open_approval_level,
                OpenLevelInput(approval=params, index=index, deadline=deadline),
            )
            try:
                await workflow.wait_condition(
                    lambda: self._result is not None,
                    # Temporal timers have millisecond resolution: never a zero timer.
                    timeout=max(deadline - workflow.now(), timedelta(milliseconds=1)),
                )
            except TimeoutError:
                pass
        result = self._result
        if result is None:
            result = self._result = ApprovalResult(
                approval_id=params.approval_id,
                lead_id=params.lead_id,
                request=params.request,
                outcome=params.on_timeout,
                timed_out=True,
                decided_by=TIMEOUT,
                decided_at=workflow.now(),
                level=params.levels[self._index].number,
            )
        self._deadline = None
        await self._try(
            "record the outcome",
            ApprovalActivities.record_approval_decision,
            RecordDecisionInput(approval=params, result=result, opened=opened),
        )
        self._recorded = True
        try:
            lead = workflow.get_external_workflow_handle(params.lead_workflow_id)
            await lead.signal(APPROVAL_DECIDED, result)
        except FailureError as err:
            # The lead's lifecycle has ended: the outcome stays recorded, applied nowhere.
            workflow.logger.warning("could not tell lead %s: %s", params.lead_id, err)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _try(self, what: str, activity: Callable[[Any, In], None], arg: In) -> None:
        """Run a step; one that failed for good is logged and the approval goes on (a
        message that could not go out must not keep the request from being decided)."""
        try:
            await _act(activity, arg, self.params.activity_timeout_s, self.params.step_give_up_s)
        except ActivityError as err:
            workflow.logger.error(
                "approval %s could not %s: %s", self.params.approval_id, what, failure_of(err)
            )

    @workflow.signal(name=WITHDRAW)
    def withdraw(self, withdrawal: ApprovalWithdrawal) -> None:
        """The lead moved on to a stage the request does not apply in: it ends as
        ``withdrawn`` unless somebody decided first (the first ending wins)."""
        if self._params is None:
            self._withdrawal = withdrawal
            return
        if self._result is None:
            self._result = ApprovalResult(
                approval_id=self.params.approval_id,
                lead_id=self.params.lead_id,
                request=self.params.request,
                outcome=Outcome.withdrawn,
                decided_by=LIFECYCLE,
                decided_at=workflow.now(),
                level=self.params.levels[self._index].number,
                comment=withdrawal.reason,
            )

    @workflow.query(name="state")
    def query_state(self) -> ApprovalState | None:
        params = self._params
        if params is None:
            return None
        step = params.levels[self._index]
        return ApprovalState(
            approval_id=params.approval_id,
            lead_id=params.lead_id,
            request=params.request,
            requested_by=params.requested_by,
            level=step.number,
            levels=[s.number for s in params.levels],
            approvers=list(step.approvers),
            deadline=self._deadline,
            result=self._result,
        )

    @workflow.update(name="decide")
    async def decide(self, decision: ApprovalDecisionIn) -> ApprovalResult:
        """Approve or reject for the current level; answers how the request ended, once
        it is recorded (the approvals list shows it when the caller hears)."""
        # An update can come with the run's first task, before ``run`` read its input.
        await workflow.wait_condition(lambda: self._params is not None)
        refusal = self._refusal(decision)
        if refusal is not None:
            raise refusal
        if self._result is None:
            self._result = self._decided(decision)
        # The same decision sent again gets the same answer.
        await workflow.wait_condition(lambda: self._recorded)
        return self._result

    def _decided(self, decision: ApprovalDecisionIn) -> ApprovalResult:
        params = self.params
        return ApprovalResult(
            approval_id=params.approval_id,
            lead_id=params.lead_id,
            request=params.request,
            outcome=Outcome.approved if decision.decision is Decision.approve else Outcome.rejected,
            decided_by=decision.by,
            decided_at=workflow.now(),
            level=params.levels[self._index].number,
            comment=decision.comment,
        )

    @decide.validator
    def _validate_decide(self, decision: ApprovalDecisionIn) -> None:
        if self._params is None:
            return  # the handler checks once the run has its input
        refusal = self._refusal(decision)
        if refusal is not None:
            raise refusal

    def _refusal(self, decision: ApprovalDecisionIn) -> ApplicationError | None:
        result = self._result
        if result is not None:
            if result.same_decision(decision):
                return None
            return _refused(
                f"this request was already decided: {result.how()}",
                "AlreadyDecided",
                result=result.model_dump(mode="json"),
            )
        step = self.params.levels[self._index]
        if decision.by not in step.approvers:
            return _refused(
                "you are not an approver for this request",
                "NotApprover",
                level=step.number,
                approvers=step.approvers,
            )
        if decision.decision is Decision.reject and not decision.comment:
            return _refused("a rejection needs a comment saying why", "CommentRequired")
        return None


# ------------------------------------------------------------------------ the lead's side


class LeadApprovals(EventSteps):
    """The lead workflow's approvals: requests started as child workflows, results
    applied by its main loop (``_apply_approval_results``)."""

    # Results signalled before the run restored the lead's state (then kept in it).
    _approvals_in: list[ApprovalResult]
    _lock: asyncio.Lock

    @workflow.signal(name=APPROVAL_DECIDED)
    def approval_decided(self, result: ApprovalResult) -> None:
        # Kept in the state, so results not yet applied travel with a continue-as-new.
        if self._state is None:
            self._approvals_in.append(result)
        else:
            self._state.approval_results = [*self._state.approval_results, result]

    @workflow.update(name="request_approval")
    async def request_approval(self, request: ApprovalRequest) -> ApprovalStarted:
        """Start the approval of ``request``; answers its id and whom it waits for.
        Refused (``ApprovalNotAllowed``, ``ApprovalOpen``, ``ApprovalRefused``) when it
        does not apply to the lead now or cannot be decided by anyone."""
        await workflow.wait_condition(lambda: self._state is not None)
        async with self._lock:
            state = self.state
            refusal = _approval_refusal(state, request)
            if refusal is not None:
                raise refusal
            owner = state.owner.email if state.owner else None
            # Nobody named (the installation token): the lead's owner asks, and hears.
            requested_by = request.requested_by or owner or "api"
            if request.requested_by is None and owner is not None:
                request = request.model_copy(update={"requested_by": owner})
            params = self.params
            try:
                planned: ApprovalPlan = await _act(
                    ApprovalActivities.plan_approval,
                    PlanApprovalInput(
                        lead_id=state.lead_id,
                        request=request,
                        pool=state.pool,
                        owner=owner,
                        requested=state.approvals_requested,
                    ),
                    params.activity_timeout_s,
                    # The caller waits for the answer: give up long before a step would.
                    3 * params.activity_timeout_s,
                )
            except ActivityError as err:
                found = failure_of(err)
                message = found[1] if found else "the approval chain could not be read"
                raise _refused(message, "ApprovalRefused", stage=state.stage.value) from None
            approval_id = approval_id_for(state.lead_id, planned.number)
            submission = state.submission
            child = ApprovalInput(
                approval_id=approval_id,
                number=planned.number,
                lead_id=state.lead_id,
                lead_workflow_id=workflow.info().workflow_id,
                request=request,
                requested_by=requested_by,
                requested_at=workflow.now(),
                levels=planned.levels,
                start=planned.start,
                on_timeout=planned.on_timeout,
                lead_name=submission.full_name if submission else state.lead_id,
                company=submission.company if submission else None,
                owner=owner,
                activity_timeout_s=params.activity_timeout_s,
                step_give_up_s=params.step_give_up_s,
            )
            state.approvals_requested = planned.number
            try:
                await workflow.start_child_workflow(
                    ApprovalWorkflow.run,
                    child,
                    id=approval_id,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                raise _refused(
                    f"approval {approval_id} is running already", "ApprovalOpen"
                ) from None
            state.open_approvals = {**state.open_approvals, approval_id: request.kind.value}
            step = planned.levels[planned.start]
            return ApprovalStarted(
                approval_id=approval_id,
                kind=request.kind,
                level=step.number,
                approvers=step.approvers,
                levels=planned.levels[-1].number,
                deadline=child.requested_at + step.timeout,
            )

    @request_approval.validator
    def _validate_request_approval(self, request: ApprovalRequest) -> None:
        if self._state is None:
            return  # the handler checks once the run restored the state
        refusal = _approval_refusal(self._state, request)
        if refusal is not None:
            raise refusal

    def _approval_results_waiting(self) -> bool:
        return bool(self._approvals_in or (self._state and self._state.approval_results))

    async def _apply_approval_results(self) -> None:
        """Apply the results the approvals signalled: an approved discount is kept on the
        lead, an approved reassignment or dispute moves the lead; a rejection changes
        nothing (it is on the timeline already)."""
        state = self.state
        results = [*self._approvals_in, *state.approval_results]
        self._approvals_in, state.approval_results = [], []
        for result in results:
            if result.approval_id not in state.open_approvals:
                continue  # applied before (the same signal twice)
            state.open_approvals = {
                k: v for k, v in state.open_approvals.items() if k != result.approval_id
            }
            state.approvals_withdrawn = [
                a for a in state.approvals_withdrawn if a != result.approval_id
            ]
            if result.outcome is Outcome.approved:
                await self._apply_approved(result)

    async def _withdraw_approvals_left_behind(self) -> None:
        """End the open requests the lead's stage no longer allows (a discount of a lead
        lost, a reassignment of a lead won): their approvers stop being asked, and hear
        why. A request decided meanwhile keeps its decision (applied as above)."""
        state = self.state
        stage = state.stage if state.routed else Stage.captured
        behind = [
            approval_id
            for approval_id, kind in state.open_approvals.items()
            if approval_id not in state.approvals_withdrawn
            and stage not in stages_for(ApprovalKind(kind))
        ]
        if not behind or not workflow.patched(WITHDRAW_APPROVALS):
            return
        reason = f"the lead is {stage.value.replace('_', ' ')} now"
        for approval_id in behind:
            try:
                await workflow.get_external_workflow_handle(approval_id).signal(
                    WITHDRAW, ApprovalWithdrawal(reason=reason)
                )
            except FailureError as err:
                # Its workflow has ended: the result it signalled is on its way, or was
                # applied; nothing is left to withdraw.
                workflow.logger.info("approval %s not withdrawn: %s", approval_id, err)
        state.approvals_withdrawn = [*state.approvals_withdrawn, *behind]

    async def _apply_approved(self, result: ApprovalResult) -> None:
        state = self.state
        request = result.request
        if state.stage not in stages_for(request.kind):
            await self._record(
                f"approval:{result.approval_id}:not_applied",
                EventType.approval_not_applied,
                {
                    "approval_id": result.approval_id,
                    "kind": request.kind.value,
                    "reason": f"the lead is {state.stage.value.replace('_', ' ')} now",
                },
            )
            return
        if request.kind is ApprovalKind.discount:
            state.approved_discount = request.percent
            return
        to = request.to if request.kind is ApprovalKind.reassignment else request.claimant
        if to is not None and state.owner is not None and state.owner.email == to:
            return  # the rep has the lead already
        await self._reassign(
            RerouteReason.reassign,
            f"{self._key}:approval:{result.approval_id}",
            to=to,
            by=f"{result.decided_by} (approval {result.approval_id})",
        )


def _approval_refusal(state: LeadState, request: ApprovalRequest) -> ApplicationError | None:
    """Why ``request`` cannot be made for the lead now, or None."""
    kind = request.kind
    stage = state.stage if state.routed else Stage.captured
    allowed = stages_for(kind)
    if stage not in allowed:
        return _refused(
            f"a {kind.value.replace('_', ' ')} approval does not apply to a lead in stage "
            f"{stage.value!r}; it applies in: {', '.join(s.value for s in allowed)}",
            "ApprovalNotAllowed",
            stage=stage.value,
        )
    open_ = [a for a, k in state.open_approvals.items() if k == kind.value]
    if open_:
        return _refused(
            f"approval {open_[0]} ({kind.value.replace('_', ' ')}) of this lead is still "
            "open: one request of a kind at a time",
            "ApprovalOpen",
            stage=stage.value,
            approval_id=open_[0],
        )
    target = request.to or request.claimant
    if target is not None and state.owner is not None and state.owner.email == target:
        return _refused(f"{target} owns the lead already", "ApprovalNotAllowed", stage=stage.value)
    return None
