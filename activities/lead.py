"""Activities of the lead lifecycle up to routing: capture, score and route, the CRM
write, resubmissions and the timeline. Each writes its own timeline event under an
idempotency key built from the workflow id and the step, so a retry changes nothing twice.
Telling the owner is in ``activities.notify``."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import StepActivities
from activities.crm_write import crm_lead_data, record_crm_write
from activities.errors import classified, to_application_error
from bots.lead_cards import score_reasons
from connectors.base import ConnectorError
from domain.accounts import AccountMatch
from domain.kpi_facts import source_of
from domain.lead import EventType, LeadSubmission, Stage, workflow_id_for
from domain.lifecycle import (
    AssignLeadInput,
    Assignment,
    CardFacts,
    CrmSyncInput,
    CrmSyncResult,
    LeadState,
    RecordEventInput,
    RecordResubmissionsInput,
)
from domain.lifecycle_plan import assignment_timers, queue_timer
from domain.routing import Router, RoutingDecision
from domain.rules import Facts, facts_of
from domain.scoring import score_lead
from store import leads as lead_store
from store import reps as rep_store
from store import routing as routing_store
from store.models import Lead, utcnow

log = logging.getLogger("leadflow.activities")


class LeadActivities(StepActivities):
    """Capture, score and route a lead, write it to the CRM, and keep its timeline; the
    owner's notice is in ``activities.notify``. Collaborators are handed in, so tests can
    pass others."""

    def _account_of(self, router: Router, facts: Facts) -> AccountMatch | None:
        """The CRM account of the lead's company, when the rule that takes the lead routes
        to the account's owner (a CRM call: only then, and never inside a transaction)."""
        if not router.match(facts)[1].account_owner:
            return None
        try:
            return self._crm.find_account(
                email_domain=facts.get("email_domain"),
                website_domain=facts.get("website_domain"),
                company=facts.get("company"),
                free_mail=bool(facts.get("free_mail")),
            )
        except ConnectorError as err:
            raise to_application_error(err, self._crm.name) from err

    @staticmethod
    def _assignment_kept(session: Session, lead_id: str) -> Assignment | None:
        """The decision of a lead that already has an owner, with the lead as stored: a
        lead is routed once and keeps its first owner, whatever run of its lifecycle (or
        idempotency key) asks again."""
        lead = lead_store.get_lead(session, lead_id)
        if lead is None or lead.owner_rep_id is None:
            return None
        assigned = lead_store.latest_event(session, lead_id, EventType.assigned)
        rep = rep_store.get_rep(session, lead.owner_rep_id)
        if assigned is None or rep is None:
            return None
        kept = LeadState(
            lead_id=lead.id,
            stage=Stage(lead.stage),
            submission=LeadSubmission.model_validate(lead.data),
            received_at=lead.received_at,
            score=lead.score,
            grade=lead.grade,
            owner=rep_store.owner_of(rep),
            crm_id=lead.crm_id,
            submissions=lead.submissions,
            routed=True,
            detailed_resubmissions=lead_store.count_events(session, lead.id, EventType.resubmitted),
            notified=lead.notified_at is not None,
            needs_attention=lead.needs_attention,
        )
        stored = Assignment.model_validate(assigned.data["assignment"])
        return _slim(stored).model_copy(update={"kept": kept})

    @activity.defn(name="assign_lead")
    @classified
    def assign_lead(self, params: AssignLeadInput) -> Assignment:
        """Capture, score and route the lead in one transaction. A retry returns the
        decision already taken instead of taking another round-robin turn, and a lead that
        already has an owner is not routed again (see ``_assignment_kept``)."""
        key = f"{params.idempotency_key}:assigned"
        with self._db.read() as session:
            # The version in force now decides this lead, even if one is published while
            # the account is looked up: the decision records which version it used.
            router = self._routers.current(session)
        # Pure: kept out of the write transaction.
        score = score_lead(
            params.submission, router.config.scoring, territories=router.config.territories
        )
        facts = facts_of(params.submission, score.score, score.grade)
        account = None if params.owner_email else self._account_of(router, facts)
        with self._db.session() as session:
            done = lead_store.event_recorded(session, key)
            if done is not None:
                return _slim(Assignment.model_validate(done.data["assignment"]))
            kept = self._assignment_kept(session, params.lead_id)
            if kept is not None:
                return kept

            if params.owner_email is not None:
                decision = _entered_by(session, router, params.owner_email)
            else:
                owner_email = (
                    rep_store.email_for_crm_owner(session, account.account.owner_id, self._crm.name)
                    if account is not None and account.account.owner_id
                    else None
                )
                decision = routing_store.decide(
                    session,
                    router,
                    facts,
                    utcnow(),
                    seed=params.lead_id,
                    account_owner=owner_email,
                    account=(
                        f"{account.account.name} (by {account.by}, {account.similarity:g}%)"
                        if account is not None
                        else None
                    ),
                )
            now = utcnow()
            lead = lead_store.get_lead(session, params.lead_id)
            if lead is None:
                lead = Lead(
                    id=params.lead_id,
                    workflow_id=params.workflow_id,
                    source_system=params.source_system,
                    email=params.submission.email,
                    stage=Stage.captured.value,
                    received_at=params.received_at,
                    data={},
                )
                session.add(lead)
            lead.received_at = params.received_at
            lead.notified_at = None
            lead.speed_to_lead_ms = None
            lead.data = params.submission.model_dump(mode="json", exclude_none=True)
            lead.submissions = max(lead.submissions or 0, params.submissions)
            lead.score = score.score
            lead.grade = score.grade
            lead.routing = {"decision": decision.model_dump(mode="json"), "facts": facts}
            lead.pool = decision.pool
            lead.territory = router.territory_of(facts)
            lead.source = source_of(lead.data, lead.source_system)
            lead.owner_rep_id = decision.owner.rep_id if decision.owner else None
            lead.assigned_at = now if decision.owner else None
            if decision.owner and lead.first_assigned_at is None:
                lead.first_assigned_at = now  # the leaderboard's follow-up counts from it
            lead.stage = (Stage.assigned if decision.owner else Stage.scored).value
            pool = router.pools.get(decision.pool) if decision.pool else None
            assignment = Assignment(
                score=score,
                decision=decision,
                card=CardFacts(
                    rule=decision.rule,
                    pool=decision.pool,
                    strategy=pool.strategy.value if pool is not None else None,
                    score_reasons=score_reasons([p.model_dump(mode="json") for p in score.parts]),
                    channel=pool.slack_channel if pool is not None else None,
                ),
                timers=(
                    assignment_timers(
                        router.config,
                        router.version,
                        pool=decision.pool,
                        rep_email=decision.owner.email,
                        start=now,
                        origin=params.origin,
                    )
                    if decision.owner is not None
                    else queue_timer(router.config, router.version, now)
                ),
            )
            lead_store.add_event(
                session,
                params.lead_id,
                EventType.captured,
                stage=Stage.captured,
                occurred_at=params.received_at,
                idempotency_key=f"{params.idempotency_key}:captured",
                data={"source_system": params.source_system},
            )
            lead_store.add_event(
                session,
                params.lead_id,
                EventType.scored,
                stage=Stage.scored,
                idempotency_key=f"{params.idempotency_key}:scored",
                data={
                    "score": score.score,
                    "grade": score.grade,
                    "parts": [p.model_dump(mode="json") for p in score.parts],
                },
            )
            lead_store.add_event(
                session,
                params.lead_id,
                EventType.assigned if decision.owner else EventType.unassigned,
                stage=Stage.assigned if decision.owner else None,
                idempotency_key=key,
                data={
                    "assignment": assignment.model_dump(mode="json"),
                    "rule": decision.rule,
                    "reason": decision.reason,
                },
            )
        log.info(
            "lead %s scored %s, routed: %s",
            params.lead_id,
            score.score,
            decision.reason,
            extra={"lead_id": params.lead_id},
        )
        return _slim(assignment)

    @activity.defn(name="sync_lead_to_crm")
    @classified
    def sync_lead_to_crm(self, params: CrmSyncInput) -> CrmSyncResult:
        """Create or update the lead in the CRM with its owner."""
        owner = self._owners.of(params.owner)
        data = crm_lead_data(params.lead_id, params.submission, owner.owner_id, params.score)
        try:
            ref = self._crm.upsert_lead(data, params.idempotency_key)
        except ConnectorError as err:
            log.warning(
                "CRM %s refused lead %s: %s",
                self._crm.name,
                params.lead_id,
                err.vendor_message,
                extra={"lead_id": params.lead_id},
            )
            raise to_application_error(err, self._crm.name) from err
        return record_crm_write(
            self._db, params.lead_id, params.idempotency_key, ref, unlinked=owner.unlinked
        )

    @activity.defn(name="record_resubmissions")
    @classified
    def record_resubmissions(self, params: RecordResubmissionsInput) -> None:
        """Put repeated submissions of the same lead on its timeline (each with the empty
        fields it filled and the changes it proposed), and store the lead's count of
        submissions and, when fields were filled, its submission."""
        with self._db.session() as session:
            for item in params.resubmissions:
                lead_store.add_event_once(
                    session,
                    params.lead_id,
                    EventType.resubmitted,
                    idempotency_key=f"{params.idempotency_key}:{item.submission_id}",
                    occurred_at=item.received_at,
                    data={"filled": item.filled, "proposed": item.proposed},
                )
            for old in params.submissions:  # runs recorded before batches were bounded
                lead_store.add_event_once(
                    session,
                    params.lead_id,
                    EventType.resubmitted,
                    idempotency_key=f"{params.idempotency_key}:{old.submission_id}",
                    occurred_at=old.received_at,
                    data={"fields": sorted(old.submission.model_dump(exclude_none=True))},
                )
            lead = lead_store.get_lead(session, params.lead_id)
            if lead is not None:
                lead.submissions = max(lead.submissions or 0, params.total_submissions)
                if params.submission is not None:
                    lead.data = params.submission.model_dump(mode="json", exclude_none=True)

    @activity.defn(name="record_event")
    @classified
    def record_event(self, params: RecordEventInput) -> None:
        """Put an event the workflow decided on the lead's timeline, once, and keep the
        stored lead in step: its stage, its needs-attention flag and failed steps."""
        with self._db.session() as session:
            added = lead_store.add_event_once(
                session,
                params.lead_id,
                params.type,
                stage=params.stage,
                idempotency_key=params.idempotency_key,
                data=dict(params.data),
            )
            if not added:
                return
            lead = lead_store.get_lead(session, params.lead_id)
            if lead is None and params.submission is not None and params.received_at:
                # Routing failed for good before the lead was stored: store it now, so
                # the needs-attention list shows it.
                lead = Lead(
                    id=params.lead_id,
                    workflow_id=workflow_id_for(params.lead_id),
                    email=params.submission.email,
                    stage=Stage.captured.value,
                    received_at=params.received_at,
                    data=params.submission.model_dump(mode="json", exclude_none=True),
                )
                session.add(lead)
            if lead is None:
                return
            if params.stage is not None:
                lead.stage = params.stage.value
            if params.needs_attention:
                lead.needs_attention = True
            if params.attention is not None:
                entry = params.attention.model_dump(mode="json")
                kept = [a for a in lead.attention or [] if a.get("step") != entry["step"]]
                lead.attention = [*kept, entry]
                lead.needs_attention = True
            if params.clear_attention:
                lead.attention = []
                lead.needs_attention = False
            if params.submission is not None and params.received_at is None:
                lead.data = params.submission.model_dump(mode="json", exclude_none=True)


def _slim(assignment: Assignment) -> Assignment:
    """What the workflow needs of an assignment. The explanation and the score's parts
    are on the timeline and with the lead; kept out of the workflow's history, they do
    not weigh on every replay of it."""
    return Assignment(
        score=assignment.score.model_copy(update={"parts": []}),
        decision=assignment.decision.model_copy(update={"explanation": {}}),
        kept=assignment.kept,
        timers=assignment.timers,
        card=assignment.card,
    )


def _entered_by(session: Session, router: Router, email: str) -> RoutingDecision:
    """The decision for an outbound lead: the rep who entered it owns it."""
    rep = rep_store.active_rep_by_email(session, email)
    if rep is None:
        raise ApplicationError(
            f"{email} is not an active rep", type="UnknownRep", non_retryable=True
        )
    return RoutingDecision(
        owner=rep_store.owner_of(rep),
        team="",
        rule="outbound",
        reason=f"outbound: entered by {rep.name}, who owns it",
        rep=rep.email,
        config_version=router.version,
    )
