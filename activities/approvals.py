"""Activities of approvals (``workflows.approval``): the chain of a request resolved from
the published configuration, the request stored and put on the lead's timeline, each
level's approvers asked (and the level before told it passed), and the outcome recorded,
told to the requester and shown on the approvers' messages.

Each is idempotent: rows and timeline events are written once per key, and every message
goes out once per idempotency key (``<approval id>:level:<n>:<email>`` for an approver,
``<approval id>:requester`` for the notice), so a retried step sends nothing twice.
Every step is audited on the ``leadflow.audit`` log and in the approval's ``history``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import StepActivities
from activities.errors import classified
from bots.blocks import approvals as blocks
from bots.notifier import Message
from domain.approvals import (
    ApprovalInput,
    ApprovalPlan,
    ApprovalRefused,
    OpenLevelInput,
    PlanApprovalInput,
    RecordDecisionInput,
    plan,
    pool_manager_of,
)
from domain.lead import EventType
from store import approvals as approval_store
from store import leads as lead_store
from store import users as user_store
from store.models import utcnow

audit_log = logging.getLogger("leadflow.audit")


class ApprovalActivities(StepActivities):
    """The approval workflow's activities; the same collaborators as the lifecycle's."""

    @activity.defn(name="plan_approval")
    @classified
    def plan_approval(self, params: PlanApprovalInput) -> ApprovalPlan:
        """The request's levels under the published configuration (``pool_manager``
        replaced by the manager of the lead's pool) and its number. Refused for good
        (``ApprovalRefused``) when no chain is configured for its kind, no level covers
        it, or nobody could decide it."""
        router = self._router()
        config = router.config
        manager = pool_manager_of(config, params.pool, params.owner)
        try:
            levels, start, on_timeout = plan(config.approvals, params.request, manager)
        except ApprovalRefused as err:
            raise ApplicationError(str(err), type="ApprovalRefused", non_retryable=True) from None
        with self._db.read() as session:
            number = max(params.requested, approval_store.last_number(session, params.lead_id))
        return ApprovalPlan(
            number=number + 1,
            levels=levels,
            start=start,
            on_timeout=on_timeout,
            config_version=router.version,
        )

    @activity.defn(name="record_approval_request")
    @classified
    def record_approval_request(self, params: ApprovalInput) -> None:
        """Store the request (pending at its first level) and put it on the timeline."""
        step = params.levels[params.start]
        with self._db.session() as session:
            created = approval_store.record_request(session, params)
            lead_store.add_event_once(
                session,
                params.lead_id,
                EventType.approval_requested,
                idempotency_key=f"{params.approval_id}:requested",
                data={
                    "approval_id": params.approval_id,
                    "kind": params.request.kind.value,
                    "reason": params.request.reason,
                    "requested_by": params.requested_by,
                    "level": step.number,
                    "approvers": ", ".join(step.approvers),
                    **params.request.figures(),
                },
            )
        if created:
            _audit(params, "requested", params.requested_by, step.number)

    @activity.defn(name="open_approval_level")
    @classified
    def open_approval_level(self, params: OpenLevelInput) -> None:
        """Ask the level's approvers; after an escalation, record it and lock the
        messages of the level before (it may no longer decide)."""
        approval, step = params.approval, params.approval.levels[params.index]
        names = self._names([approval.requested_by, *self._mentioned(approval), *step.approvers])
        escalated = params.index > approval.start
        if escalated:
            before = approval.levels[params.index - 1]
            with self._db.session() as session:
                moved = approval_store.open_level(
                    session, approval.approval_id, step, params.deadline, utcnow()
                )
                lead_store.add_event_once(
                    session,
                    approval.lead_id,
                    EventType.approval_escalated,
                    idempotency_key=f"{approval.approval_id}:level:{step.number}",
                    data={
                        "approval_id": approval.approval_id,
                        "kind": approval.request.kind.value,
                        "from_level": before.number,
                        "level": step.number,
                        "approvers": ", ".join(step.approvers),
                    },
                )
            if moved:
                _audit(approval, "escalated", "timeout", step.number)
            text, b = blocks.approval_locked(
                approval.request,
                approval.lead_name,
                approval.company,
                names.get(approval.requested_by, approval.requested_by),
                escalated_to=step.number,
                people=names,
                lead_url=self._lead_url(approval.lead_id),
            )
            for email in before.approvers:
                self._update(_approver_key(approval, before.number, email), approval, text, b)
        text, b = blocks.approval_request(
            approval.approval_id,
            approval.request,
            approval.lead_name,
            approval.company,
            names.get(approval.requested_by, approval.requested_by),
            step.number,
            approval.levels[-1].number,
            params.deadline,
            escalated=escalated,
            people=names,
            lead_url=self._lead_url(approval.lead_id),
        )
        message = Message(kind="approval_request", lead_id=approval.lead_id, text=text, blocks=b)
        for email in step.approvers:
            self._notifier.notify_person(
                email,
                names.get(email, email),
                message,
                _approver_key(approval, step.number, email),
            )

    @activity.defn(name="record_approval_decision")
    @classified
    def record_approval_decision(self, params: RecordDecisionInput) -> None:
        """Record the outcome (row, timeline, audit), tell the requester, and show the
        outcome on every approver's message, without buttons."""
        approval, result = params.approval, params.result
        with self._db.session() as session:
            changed = approval_store.record_result(session, result)
            lead_store.add_event_once(
                session,
                approval.lead_id,
                EventType.approval_decided,
                idempotency_key=f"{approval.approval_id}:decided",
                data={
                    "approval_id": approval.approval_id,
                    "kind": approval.request.kind.value,
                    "outcome": result.outcome.value,
                    "timed_out": result.timed_out,
                    "approver": result.decided_by,
                    "comment": result.comment,
                    "level": result.level,
                    **approval.request.figures(),
                },
            )
        if changed:
            _audit(approval, result.outcome.value, result.decided_by, result.level, result.comment)
        names = self._names([approval.requested_by, result.decided_by, *self._mentioned(approval)])
        decider = None if result.timed_out else names.get(result.decided_by)
        requester = approval.requested_by
        if "@" in requester:
            text, b = blocks.approval_notice(
                approval.request,
                approval.lead_name,
                approval.company,
                result,
                decider,
                people=names,
                lead_url=self._lead_url(approval.lead_id),
            )
            self._notifier.notify_person(
                requester,
                names.get(requester, requester),
                Message(kind="approval_result", lead_id=approval.lead_id, text=text, blocks=b),
                f"{approval.approval_id}:requester",
            )
        text, b = blocks.approval_locked(
            approval.request,
            approval.lead_name,
            approval.company,
            names.get(requester, requester),
            result=result,
            decider_name=decider,
            people=names,
            lead_url=self._lead_url(approval.lead_id),
        )
        for index in params.opened:
            step = approval.levels[index]
            for email in step.approvers:
                self._update(_approver_key(approval, step.number, email), approval, text, b)

    # -- helpers ---------------------------------------------------------------------

    def _update(self, key: str, approval: ApprovalInput, text: str, b: blocks.Blocks) -> None:
        """Show ``text`` on the message delivered under ``key``, where the notifier can
        change a delivered message (Slack); elsewhere the message stays as it was."""
        update = getattr(self._notifier, "update_message", None)
        if callable(update):
            update(
                key, Message(kind="approval_request", lead_id=approval.lead_id, text=text, blocks=b)
            )

    def _names(self, emails: Iterable[str]) -> dict[str, str]:
        """Each email's name: a rep's of the published configuration, else an admin-app
        user's; emails nobody has are left out (messages show the email)."""
        wanted = {e for e in emails if "@" in e}
        names = {r.email: r.name for r in self._router().config.reps if r.email in wanted}
        missing = wanted - set(names)
        if missing:
            with self._db.read() as session:
                for email in sorted(missing):
                    user = user_store.user_by_email(session, email)
                    if user is not None:
                        names[email] = user.name
        return names

    @staticmethod
    def _mentioned(approval: ApprovalInput) -> list[str]:
        request = approval.request
        return [e for e in (request.to, request.claimant) if e is not None]


def _approver_key(approval: ApprovalInput, level: int, email: str) -> str:
    return f"{approval.approval_id}:level:{level}:{email}"


def _audit(
    approval: ApprovalInput, action: str, by: str, level: int, comment: str | None = None
) -> None:
    audit_log.info(
        "approval %s of lead %s %s by %s at level %d",
        approval.approval_id,
        approval.lead_id,
        action,
        by,
        level,
        extra={
            "kind": "approval",
            "approval_id": approval.approval_id,
            "lead_id": approval.lead_id,
            "approval_kind": approval.request.kind.value,
            "action": action,
            "actor": by,
            "level": level,
            "comment": comment or "",
        },
    )
