"""The lead's side of approvals (``workflows.approval``), mixed into
``LeadLifecycleWorkflow``: the update ``request_approval`` (validated against the lead's
stage, one open request per kind) starts the ``Approval`` child; the signal
``approval_decided`` queues the result, which the main loop applies under the workflow's
lock like its other work; a request the lead's stage no longer allows is withdrawn.
"""

from __future__ import annotations

import asyncio

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
        ApprovalInput,
        ApprovalKind,
        ApprovalPlan,
        ApprovalRequest,
        ApprovalResult,
        ApprovalStarted,
        ApprovalWithdrawal,
        Outcome,
        PlanApprovalInput,
        approval_id_for,
        stages_for,
    )
    from domain.lead import EventType, Stage
    from domain.lifecycle import LeadState
    from domain.lifecycle_steps import RerouteReason

from workflows.approval import APPROVAL_DECIDED, WITHDRAW, ApprovalWorkflow, act, refused
from workflows.lifecycle_events import EventSteps
from workflows.steps import failure_of

# Lead runs before this change did not withdraw requests their lead left behind.
WITHDRAW_APPROVALS = "withdraw-approvals-left-behind"


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
                planned: ApprovalPlan = await act(
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
                raise refused(message, "ApprovalRefused", stage=state.stage.value) from None
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
                raise refused(
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
        return refused(
            f"a {kind.value.replace('_', ' ')} approval does not apply to a lead in stage "
            f"{stage.value!r}; it applies in: {', '.join(s.value for s in allowed)}",
            "ApprovalNotAllowed",
            stage=stage.value,
        )
    open_ = [a for a, k in state.open_approvals.items() if k == kind.value]
    if open_:
        return refused(
            f"approval {open_[0]} ({kind.value.replace('_', ' ')}) of this lead is still "
            "open: one request of a kind at a time",
            "ApprovalOpen",
            stage=stage.value,
            approval_id=open_[0],
        )
    target = request.to or request.claimant
    if target is not None and state.owner is not None and state.owner.email == target:
        return refused(f"{target} owns the lead already", "ApprovalNotAllowed", stage=stage.value)
    return None
