"""Activities of the lifecycle after routing: stage changes, reassignments, the CRM's
status and nurture list, engagement scoring, SLA reminders and escalations, and the
hand-off of a won customer to account management.

Each records its timeline event under an idempotency key built from the workflow id and
the step, so a retry (or a worker killed halfway) changes nothing twice; a retry of a
step already recorded answers what the first try decided.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import classified, to_application_error
from activities.lead import crm_lead_data
from bots.blocks import lifecycle as blocks
from bots.notifier import Message, Notifier
from connectors.base import CRM, ConnectorError
from domain.config import RoutingConfig
from domain.crm import LeadStatus
from domain.lead import EventType, Owner, Stage
from domain.lifecycle import (
    CrmSyncResult,
    CrmUpdateInput,
    EngagementInput,
    EngagementResult,
    ReminderInput,
    ReminderResult,
    Rerouted,
    RerouteInput,
    RerouteReason,
    StageChanged,
    StageChangeInput,
    TimerName,
)
from domain.lifecycle_plan import (
    assignment_timers,
    pool_of,
    queue_timer,
    sla_elapsed,
    stage_timers,
)
from domain.routing import Router
from domain.rules import facts_of
from domain.scoring import add_engagement, score_lead
from store import leads as lead_store
from store import reps as rep_store
from store import routing as routing_store
from store.db import Database
from store.models import Rep, utcnow

log = logging.getLogger("leadflow.activities")

# A worked lead nobody moves: after this many reminders its pool's manager hears too.
STALE_REMINDERS_BEFORE_MANAGER = 3


class LifecycleActivities:
    """Activities with their collaborators handed in, so tests can pass others."""

    def __init__(
        self,
        db: Database,
        crm: CRM,
        notifier: Notifier,
        *,
        default_team: str,
        base_url: str,
    ) -> None:
        self._db = db
        self._crm = crm
        self._notifier = notifier
        self._routers = routing_store.RouterCache(default_team)
        self._base_url = base_url

    # -- helpers ---------------------------------------------------------------------

    def _router(self) -> Router:
        with self._db.read() as session:
            return self._routers.current(session)

    def _lead_url(self, lead_id: str) -> str:
        return f"{self._base_url}/admin/leads/{lead_id}"

    @contextmanager
    def _vendor(self) -> Iterator[None]:
        """CRM errors as Temporal failures: retryable ones retry, permanent ones park."""
        try:
            yield
        except ConnectorError as err:
            log.warning("CRM %s: %s", self._crm.name, type(err).__name__)
            raise to_application_error(err, self._crm.name) from None

    @staticmethod
    def _active_rep(session: Session, email: str) -> Rep:
        rep = session.scalars(select(Rep).where(Rep.email == email.strip().lower())).first()
        if rep is None or not rep.active:
            raise ApplicationError(
                f"{email} is not an active rep", type="UnknownRep", non_retryable=True
            )
        return rep

    def _notify(self, owner: Owner, kind: str, lead_id: str, text: str, key: str, *, b: Any) -> int:
        message = Message(kind=kind, lead_id=lead_id, text=text, blocks=b)
        return self._notifier.notify(owner, message, key)

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
            email = params.to or rep_store.email_for_crm_owner(session, params.crm_owner_id or "")
            if email is None:
                raise ApplicationError(
                    f"no rep has the CRM owner id {params.crm_owner_id}",
                    type="UnknownRep",
                    non_retryable=True,
                )
            owner = rep_store.owner_of(self._active_rep(session, email))
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
        return StageChanged(
            timers=stage_timers(config, version, params.start, params.occurred_at),
            config_version=version,
            recycle_score=config.nurture.recycle_score,
            nurture_list=config.nurture.list_name,
        )

    # -- CRM -------------------------------------------------------------------------

    @activity.defn(name="update_crm")
    @classified
    def update_crm(self, params: CrmUpdateInput) -> CrmSyncResult:
        """Bring the CRM record in line with the lead: written with its owner, then its
        status and nurture-list membership. Every call is idempotent at the CRM."""
        config = self._router().config
        data = crm_lead_data(params.lead_id, params.submission, params.owner, params.score)
        with self._vendor():
            ref = self._crm.upsert_lead(data, params.idempotency_key)
            if params.status is not None:
                self._crm.set_status(ref.crm_id, LeadStatus(params.status), params.reason)
            if params.nurture is not None:
                self._crm.set_nurture(ref.crm_id, params.nurture, config.nurture.list_name)
        with self._db.session() as session:
            lead = lead_store.get_lead(session, params.lead_id)
            if lead is not None:
                lead.crm_id = ref.crm_id
            lead_store.add_event_once(
                session,
                params.lead_id,
                EventType.crm_synced,
                idempotency_key=params.idempotency_key,
                data={
                    "crm": ref.crm,
                    "crm_id": ref.crm_id,
                    "owner_id": ref.owner_id,
                    "created": ref.created,
                    "status": params.status,
                    "nurture": params.nurture,
                },
            )
        return CrmSyncResult(crm=ref.crm, crm_id=ref.crm_id, created=ref.created)

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

    # -- reminders and escalations ---------------------------------------------------

    @activity.defn(name="remind")
    @classified
    def remind(self, params: ReminderInput) -> ReminderResult:
        """An SLA step or a stale-lead reminder: the owner is reminded, or (escalation)
        the pool's manager is told; the event carries the elapsed time."""
        router = self._router()
        config, version = router.config, router.version
        now = utcnow()
        elapsed = sla_elapsed(config, params.pool, params.owner.email, params.assigned_at, now)
        wall = max(0.0, (now - params.assigned_at).total_seconds())
        url = self._lead_url(params.lead_id)
        sub = params.submission
        result = ReminderResult(elapsed_s=round(elapsed, 3))
        if params.timer is TimerName.sla_remind:
            text, b = blocks.sla_reminder(
                lead_name=sub.full_name,
                company=sub.company,
                owner_name=params.owner.name,
                elapsed=timedelta(seconds=elapsed),
                deadline=params.deadline or now,
                lead_url=url,
                owner_slack_id=params.owner.slack_user_id,
            )
            self._notify(
                params.owner, "sla_reminder", params.lead_id, text, params.idempotency_key, b=b
            )
            result.notified = params.owner.email
            event = EventType.sla_reminded
        elif params.timer is TimerName.sla_escalate:
            result.notified, result.needs_attention = self._escalate(config, params, elapsed)
            event = EventType.sla_escalated
        else:
            since = params.stage_entered_at or params.assigned_at
            text, b = blocks.stale_reminder(
                lead_name=sub.full_name,
                company=sub.company,
                owner_name=params.owner.name,
                stage=params.stage.value if params.stage else "open",
                idle=max(timedelta(0), now - since),
                lead_url=url,
                owner_slack_id=params.owner.slack_user_id,
            )
            self._notify(
                params.owner, "stale_reminder", params.lead_id, text, params.idempotency_key, b=b
            )
            result.notified = params.owner.email
            if params.reminders + 1 >= STALE_REMINDERS_BEFORE_MANAGER:
                manager, _ = self._escalate(config, params, elapsed)
                result.notified = manager or result.notified
            result.timers = stage_timers(config, version, ["stale"], now)
            event = EventType.stale_reminded
        with self._db.session() as session:
            lead_store.add_event_once(
                session,
                params.lead_id,
                event,
                idempotency_key=f"{params.idempotency_key}:recorded",
                occurred_at=now,
                data={
                    "owner": params.owner.email,
                    "elapsed_s": round(elapsed, 3),
                    "wall_elapsed_s": round(wall, 3),
                    "business_hours": pool_of(config, params.pool) is not None
                    and bool(pool_of(config, params.pool).sla.business_hours),  # type: ignore[union-attr]
                    "reassignments": params.reassignments,
                    "notified": result.notified,
                    "needs_attention": result.needs_attention,
                    "config_version": version,
                },
            )
            if result.needs_attention:
                lead = lead_store.get_lead(session, params.lead_id)
                if lead is not None:
                    lead.needs_attention = True
        return result

    def _escalate(
        self, config: RoutingConfig, params: ReminderInput, elapsed: float
    ) -> tuple[str | None, str | None]:
        """Tell the pool's manager; (who was told, why nobody could be)."""
        pool = pool_of(config, params.pool)
        manager = pool.manager if pool is not None else None
        if manager is None:
            return None, f"pool {params.pool!r} has no manager to escalate to"
        rep = next((r for r in config.reps if r.email == manager), None)
        text, b = blocks.sla_escalation(
            lead_name=params.submission.full_name,
            company=params.submission.company,
            owner_name=params.owner.name,
            manager_name=rep.name if rep else manager,
            elapsed=timedelta(seconds=elapsed),
            reassignments=params.reassignments,
            lead_url=self._lead_url(params.lead_id),
            manager_slack_id=rep.slack_user_id if rep else None,
        )
        message = Message(kind="sla_escalation", lead_id=params.lead_id, text=text, blocks=b)
        self._notifier.notify_person(
            manager, rep.name if rep else manager, message, f"{params.idempotency_key}:manager"
        )
        return manager, None
