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

The lead's side (``LeadApprovals``, mixed into ``LeadLifecycleWorkflow``) is in
``workflows.lead_approvals``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
)

with workflow.unsafe.imports_passed_through():
    from activities.approvals import ApprovalActivities
    from domain.approvals import (
        LIFECYCLE,
        TIMEOUT,
        ApprovalDecisionIn,
        ApprovalInput,
        ApprovalResult,
        ApprovalState,
        ApprovalWithdrawal,
        Decision,
        OpenLevelInput,
        Outcome,
        RecordDecisionInput,
    )

from workflows.steps import RETRY, failure_of

In = TypeVar("In")
Out = TypeVar("Out")

APPROVAL_DECIDED = "approval_decided"
WITHDRAW = "withdraw"


def act(
    activity: Callable[[Any, In], Out], arg: In, timeout_s: float, give_up_s: float
) -> Awaitable[Out]:
    return workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=timedelta(seconds=timeout_s),
        schedule_to_close_timeout=timedelta(seconds=give_up_s),
        retry_policy=RETRY,
    )


def refused(message: str, type_: str, **details: Any) -> ApplicationError:
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
            await act(activity, arg, self.params.activity_timeout_s, self.params.step_give_up_s)
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
            return refused(
                f"this request was already decided: {result.how()}",
                "AlreadyDecided",
                result=result.model_dump(mode="json"),
            )
        step = self.params.levels[self._index]
        if decision.by not in step.approvers:
            return refused(
                "you are not an approver for this request",
                "NotApprover",
                level=step.number,
                approvers=step.approvers,
            )
        if decision.decision is Decision.reject and not decision.comment:
            return refused("a rejection needs a comment saying why", "CommentRequired")
        return None
