"""Changes made in the CRM coming back as lifecycle events: a webhook's notice
interpreted, the CRM polled since its high-water mark, and each change sent through the
lifecycle's one entry point (the ``lead_event`` update, as ``POST /leads/{id}/events``).

A change that does not apply in the lead's stage is recorded on its timeline
(``crm_change_not_applied``), not forced; one the lead already reflects is skipped; one
about a record Leadflow did not create is ignored."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import classified, to_application_error
from connectors.base import CRM, ConnectorError
from domain.crm import ChangePage, CrmChange, CrmChangeKind, CrmNotice
from domain.crm_events import (
    ChangeOutcome,
    NoticeFailure,
    Outcome,
    already_reflected,
    event_for,
    event_id_for,
)
from domain.crm_links import LinkReport, RepToLink, link_reps
from domain.lead import EventType, Stage, workflow_id_for
from domain.stages import LeadEventResult
from store import crm_failures, crm_users
from store import leads as lead_store
from store import reps as rep_store
from store.db import Database
from store.models import utcnow

log = logging.getLogger("leadflow.crm")

UPDATE_TIMEOUT = timedelta(seconds=20)
# Polling re-reads the CRM's users (to link new reps) at most this often.
OWNER_SYNC_EVERY = timedelta(minutes=15)


class _Target(BaseModel):
    lead_id: str
    stage: Stage
    owner_email: str | None
    new_owner_email: str | None


class CrmInboundActivities:
    def __init__(self, db: Database, crm: CRM) -> None:
        self._db = db
        self._crm = crm

    # -- reading the CRM (sync: the vendor SDKs block) ---------------------------------

    @activity.defn(name="interpret_crm_notice")
    @classified
    def interpret_notice(self, notice: CrmNotice) -> list[CrmChange]:
        """The changes a webhook's notice stands for."""
        try:
            return self._crm.interpret(notice)
        except ConnectorError as err:
            raise to_application_error(err, self._crm.name) from None

    @activity.defn(name="record_crm_notice_failure")
    @classified
    def record_notice_failure(self, failure: NoticeFailure) -> None:
        """Keep a notice's step that failed for good, for the needs-attention page."""
        with self._db.session() as session:
            if crm_failures.record_failure(session, self._crm.name, failure):
                log.warning(
                    "%s notice %s: %s failed for good: %s",
                    self._crm.name,
                    failure.notice.notice_id,
                    failure.step,
                    failure.message,
                )

    @activity.defn(name="poll_crm_changes")
    @classified
    def poll_changes(self) -> ChangePage:
        """The changes since the stored high-water mark (and the next mark). Re-reads
        the CRM's users first when that was last done long ago."""
        self._sync_owners_if_stale()
        with self._db.read() as session:
            mark = crm_users.poll_mark(session, self._crm.name)
        try:
            return self._crm.changes_since(mark)
        except ConnectorError as err:
            raise to_application_error(err, self._crm.name) from None

    @activity.defn(name="save_crm_poll_mark")
    @classified
    def save_mark(self, mark: str) -> None:
        with self._db.session() as session:
            crm_users.save_poll_mark(session, self._crm.name, mark)

    def _sync_owners_if_stale(self) -> None:
        with self._db.read() as session:
            synced = crm_users.last_synced(session, self._crm.name)
        if synced is not None and utcnow() - synced < OWNER_SYNC_EVERY:
            return
        try:
            sync_rep_links(self._db, self._crm)
        except ConnectorError as err:
            log.warning("could not re-read the users of %s: %s", self._crm.name, err)

    # -- sending a change to the lead ----------------------------------------------------

    @activity.defn(name="apply_crm_change")
    async def apply_change(self, change: CrmChange) -> ChangeOutcome:
        """Send the change to its lead's lifecycle (see the module docstring)."""
        target = await asyncio.to_thread(self._target, change)
        if target is None:
            log.info(
                "%s change of a record Leadflow does not track: %s",
                self._crm.name,
                change.change_id,
            )
            return ChangeOutcome(
                change_id=change.change_id, lead_id=None, outcome=Outcome.unknown_lead
            )
        result = ChangeOutcome(
            change_id=change.change_id, lead_id=target.lead_id, outcome=Outcome.applied
        )
        if change.kind is CrmChangeKind.owner_changed and target.new_owner_email is None:
            return await self._not_applied(
                change, result, f"the new owner {change.owner_id} is not linked to a rep"
            )
        if already_reflected(change, target.stage, target.owner_email, target.new_owner_email):
            result.outcome = Outcome.reflected
            return result
        event = event_for(change, self._crm.name)
        handle = activity.client().get_workflow_handle(workflow_id_for(target.lead_id))
        try:
            answer: LeadEventResult = await handle.execute_update(
                "lead_event", event, result_type=LeadEventResult, rpc_timeout=UPDATE_TIMEOUT
            )
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "EventNotAllowed":
                return await self._not_applied(change, result, cause.message)
            raise
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return await self._not_applied(change, result, "the lead's lifecycle has ended")
            raise
        if not answer.applied:
            result.outcome = Outcome.duplicate
        return result

    def _target(self, change: CrmChange) -> _Target | None:
        with self._db.read() as session:
            lead_id = crm_users.lead_for_crm_id(session, change.crm_id)
            lead = lead_store.get_lead(session, lead_id) if lead_id else None
            if lead is None:
                return None
            new_owner = None
            if change.owner_id:
                new_owner = rep_store.email_for_crm_owner(session, change.owner_id, self._crm.name)
            return _Target(
                lead_id=lead.id,
                stage=Stage(lead.stage),
                owner_email=lead.owner.email if lead.owner is not None else None,
                new_owner_email=new_owner,
            )

    async def _not_applied(
        self, change: CrmChange, result: ChangeOutcome, why: str
    ) -> ChangeOutcome:
        assert result.lead_id is not None
        lead_id = result.lead_id

        def record() -> None:
            with self._db.session() as session:
                lead_store.add_event_once(
                    session,
                    lead_id,
                    EventType.crm_change_not_applied,
                    idempotency_key=f"crm-change:{event_id_for(change)}",
                    data={
                        "crm": self._crm.name,
                        "change": change.kind.value,
                        "reason": why,
                        "crm_change": change.change_id,
                    },
                )

        await asyncio.to_thread(record)
        result.outcome = Outcome.not_applied
        result.detail = why
        return result


def sync_rep_links(db: Database, crm: CRM) -> LinkReport:
    """Read the CRM's users, keep them, and report how each active rep is linked (for
    ``leadflow reps sync``, the worker's start and polling)."""
    owners = crm.list_owners()
    with db.session() as session:
        crm_users.save_owners(session, crm.name, owners)
        reps = [
            RepToLink(email=r.email, name=r.name, configured_owner_id=r.crm_owner_id)
            for r in rep_store.list_reps(session)
            if r.active
        ]
    return link_reps(crm.name, reps, owners)
