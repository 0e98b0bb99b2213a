"""Activities of the lifecycle after routing: stage changes, reassignments, the CRM's
status and nurture list, engagement scoring, SLA reminders and escalations, and the
hand-off of a won customer to account management.

Each records its timeline event under an idempotency key built from the workflow id and
the step, so a retry (or a worker killed halfway) changes nothing twice; a retry of a
step already recorded answers what the first try decided.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import StepActivities
from activities.crm_write import crm_lead_data, record_crm_write
from activities.errors import classified
from bots.blocks import lifecycle as blocks
from bots.blocks.lead_card import STAGE_WORDS, LastAction
from bots.lead_cards import card_message
from domain.crm import LeadStatus
from domain.lead import EventType, Owner, Stage
from domain.lifecycle import (
    CrmSyncResult,
    TimerName,
)
from domain.lifecycle_plan import (
    assignment_timers,
    queue_timer,
    stage_timers,
)
from domain.lifecycle_steps import (
    CrmUpdateInput,
    EngagementInput,
    EngagementResult,
    Rerouted,
    RerouteInput,
    RerouteReason,
    StageChanged,
    StageChangeInput,
)
from domain.routing import Router
from domain.rules import facts_of
from domain.scoring import add_engagement, score_lead
from store import leads as lead_store
from store import reps as rep_store
from store import routing as routing_store
from store.models import Rep, utcnow

log = logging.getLogger("leadflow.activities")

# A worked lead nobody moves: after this many reminders its pool's manager hears too.
STALE_REMINDERS_BEFORE_MANAGER = 3


class LifecycleActivities(StepActivities):
    """Stage changes, reassignments, the CRM's status and list, engagement."""

    # -- reassignment, recycle, queue retry -------------------------------------------

    @activity.defn(name="reroute_lead")
    @classified
    def reroute_lead(self, params: RerouteInput) -> Rerouted:
        """Give the lead to another rep: the one named (``to``, or the CRM's owner), or
        whoever the published rules choose now, never one of ``exclude``. Records who
        had it, who has it and why; the new owner is told."""
        key = f"{params.idempotency_key}:rerouted"
        router = self._router()
        with self._db.session() as session:
            done = lead_store.event_recorded(session, key)
            if done is not None:
                result = Rerouted.model_validate(done.data["rerouted"])
            else:
                result = self._reroute(session, router, params, key)
        if result.owner is not None and (
            params.why is RerouteReason.recycle
            or params.previous is None
            or result.owner.rep_id != params.previous.rep_id
        ):
            sla = [t for t in result.timers if t.name is TimerName.sla_reassign] or [
                t for t in result.timers if t.name is TimerName.sla_escalate
            ]
            text, b = blocks.reassigned(
                lead_name=params.submission.full_name,
                company=params.submission.company,
                new_owner_name=result.owner.name,
                previous_owner_name=params.previous.name if params.previous else None,
                reason=result.reason,
                sla_lapsed=params.why is RerouteReason.sla_lapsed,
                deadline=sla[0].fires_at if sla else None,
                lead_url=self._lead_url(params.lead_id),
                new_owner_slack_id=result.owner.slack_user_id,
            )
            self._notify(result.owner, "reassigned", params.lead_id, text, f"{key}:notify", b=b)
        return result

    def _reroute(
        self, session: Session, router: Router, params: RerouteInput, key: str
    ) -> Rerouted:
        now = utcnow()
        config, version = router.config, router.version
        owner: Owner | None
        pool: str | None = None
        rule: str | None = None
        if params.to is not None or params.crm_owner_id is not None:
            email = params.to or rep_store.email_for_crm_owner(
                session, params.crm_owner_id or "", self._crm.name
            )
            if email is None:
                raise ApplicationError(
                    f"no rep has the CRM owner id {params.crm_owner_id}",
                    type="UnknownRep",
                    non_retryable=True,
                )
            owner = rep_store.owner_of(_active_rep(session, email))
            by = f" by {params.by}" if params.by else ""
            reason = (
                f"the CRM says {owner.name} owns it"
                if params.why is RerouteReason.owner_changed
                else f"reassigned to {owner.name}{by}"
            )
        else:
            facts = facts_of(params.submission, params.score, params.grade)
            decision = routing_store.decide(
                session, router, facts, now, seed=key, exclude=params.exclude
            )
            owner, pool, rule, reason = (
                decision.owner,
                decision.pool,
                decision.rule,
                decision.reason,
            )
        lead = lead_store.get_lead(session, params.lead_id)
        if pool is None and lead is not None and lead.routing:
            pool = (lead.routing.get("decision") or {}).get("pool")
        if owner is not None:
            timers = assignment_timers(
                config,
                version,
                pool=pool,
                rep_email=owner.email,
                start=now,
                origin=params.origin,
                reassignments=params.reassignments,
                start_sla=params.start_sla,
            )
        else:
            timers = queue_timer(config, version, now)
        result = Rerouted(
            owner=owner,
            previous=params.previous,
            reason=reason,
            rule=rule,
            pool=pool,
            config_version=version,
            timers=timers,
        )
        if lead is not None and owner is not None:
            lead.owner_rep_id = owner.rep_id
            lead.assigned_at = now
            lead.first_assigned_at = lead.first_assigned_at or now
            lead.pool = pool or lead.pool  # the KPIs slice by the current owner's pool
            if params.why in (RerouteReason.recycle, RerouteReason.queue_retry) or lead.stage in (
                Stage.scored.value,
                Stage.captured.value,
            ):
                lead.stage = Stage.assigned.value
        event = {
            RerouteReason.recycle: EventType.recycled,
            RerouteReason.queue_retry: EventType.assigned if owner else EventType.unassigned,
            RerouteReason.owner_changed: EventType.owner_changed,
        }.get(params.why, EventType.reassigned)
        lead_store.add_event(
            session,
            params.lead_id,
            event,
            stage=Stage.assigned
            if owner is not None and lead is not None and (lead.stage == Stage.assigned.value)
            else None,
            idempotency_key=key,
            occurred_at=now,
            data={
                "why": params.why.value,
                "from": params.previous.email if params.previous else None,
                "to": owner.email if owner else None,
                "reason": reason,
                "by": params.by,
                "config_version": version,
                "rerouted": result.model_dump(mode="json"),
            },
        )
        return result

    # -- stages ----------------------------------------------------------------------

    @activity.defn(name="change_stage")
    @classified
    def change_stage(self, params: StageChangeInput) -> StageChanged:
        """Put an event on the timeline, move the stored lead to its stage, and plan the
        timers the stage starts."""
        router = self._router()
        config, version = router.config, router.version
        with self._db.session() as session:
            added = lead_store.add_event_once(
                session,
                params.lead_id,
                params.type,
                stage=params.stage,
                idempotency_key=params.idempotency_key,
                occurred_at=params.occurred_at,
                data={**params.data, "from_stage": params.previous_stage.value},
            )
            lead = lead_store.get_lead(session, params.lead_id) if added else None
            if lead is not None:
                lead.stage = params.stage.value
        if added and params.stage is not params.previous_stage:
            self._refresh_card(params)
        return StageChanged(
            timers=stage_timers(config, version, params.start, params.occurred_at),
            config_version=version,
            recycle_score=config.nurture.recycle_score,
            nurture_list=config.nurture.list_name,
        )

    def _refresh_card(self, params: StageChangeInput) -> None:
        """Keep the lead's card (in Slack) true to its stage when the change came from
        elsewhere (the API, the CRM, a timer). Best effort: a card Slack cannot update
        now is rebuilt at its next click; the stage change never waits on Slack."""
        update = getattr(self._notifier, "update_message", None)
        if update is None:
            return
        by = params.data.get("by")
        last = LastAction(
            what=STAGE_WORDS.get(params.stage, params.stage.value),
            by=str(by) if by else "Leadflow",
            at=params.occurred_at,
        )
        try:
            with self._db.read() as session:
                found = card_message(session, params.lead_id, params.stage, last, self._base_url)
            if found is not None:
                update(*found)
        except Exception as err:
            log.warning(
                "could not refresh the card of lead %s: %s", params.lead_id, type(err).__name__
            )

    # -- CRM -------------------------------------------------------------------------

    @activity.defn(name="update_crm")
    @classified
    def update_crm(self, params: CrmUpdateInput) -> CrmSyncResult:
        """Bring the CRM record in line with the lead: written with its owner, then its
        status and nurture-list membership. Every call is idempotent at the CRM."""
        config = self._router().config
        owner = self._owners.of(params.owner)
        data = crm_lead_data(params.lead_id, params.submission, owner.owner_id, params.score)
        with self._vendor():
            ref = self._crm.upsert_lead(data, params.idempotency_key)
            if params.status is not None:
                self._crm.set_status(ref.crm_id, LeadStatus(params.status), params.reason)
            if params.nurture is not None:
                self._crm.set_nurture(ref.crm_id, params.nurture, config.nurture.list_name)
        return record_crm_write(
            self._db,
            params.lead_id,
            params.idempotency_key,
            ref,
            {"status": params.status, "nurture": params.nurture},
            unlinked=owner.unlinked,
        )

    # -- engagement ------------------------------------------------------------------

    @activity.defn(name="record_engagement")
    @classified
    def record_engagement(self, params: EngagementInput) -> EngagementResult:
        """Add an engagement's points (the published scoring section; older points
        decayed by its half-life) and re-score the lead."""
        config = self._router().config
        engagement, points = add_engagement(
            params.engagement, params.kind, params.occurred_at, config.scoring
        )
        score = score_lead(
            params.submission,
            config.scoring,
            territories=config.territories,
            engagement=engagement,
            now=params.occurred_at,
        )
        with self._db.session() as session:
            added = lead_store.add_event_once(
                session,
                params.lead_id,
                EventType.engagement,
                idempotency_key=params.idempotency_key,
                occurred_at=params.occurred_at,
                data={
                    "kind": params.kind,
                    "points": points,
                    "score": score.score,
                    "grade": score.grade,
                    "engagement_points": round(engagement.points, 2),
                    "by": params.by,
                    "parts": [p.model_dump(mode="json") for p in score.parts],
                },
            )
            lead = lead_store.get_lead(session, params.lead_id) if added else None
            if lead is not None:
                lead.score = score.score
                lead.grade = score.grade
        return EngagementResult(
            engagement=engagement,
            points=points,
            score=score.score,
            grade=score.grade,
            recycle_score=config.nurture.recycle_score,
        )


def _active_rep(session: Session, email: str) -> Rep:
    rep = rep_store.active_rep_by_email(session, email)
    if rep is None:
        raise ApplicationError(
            f"{email} is not an active rep", type="UnknownRep", non_retryable=True
        )
    return rep
