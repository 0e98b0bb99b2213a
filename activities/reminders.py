"""Activities of the lifecycle's reminders: the speed-to-lead SLA's reminder and
escalation to the pool's manager, and the reminder of a worked lead nobody moves. Each
event carries the elapsed time on the SLA clock and on the wall clock."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity

from activities.base import StepActivities
from activities.errors import classified
from bots.blocks import lifecycle as blocks
from bots.notifier import Message
from domain.config import RoutingConfig
from domain.lead import EventType
from domain.lifecycle import (
    TimerName,
)
from domain.lifecycle_plan import pool_of, sla_elapsed, stage_timers
from domain.lifecycle_steps import (
    ReminderInput,
    ReminderResult,
)
from store import leads as lead_store
from store.models import utcnow

# A worked lead nobody moves: after this many reminders its pool's manager hears too.
STALE_REMINDERS_BEFORE_MANAGER = 3


class ReminderActivities(StepActivities):
    """Reminders and escalations."""

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
            lead_id=params.lead_id,
        )
        message = Message(kind="sla_escalation", lead_id=params.lead_id, text=text, blocks=b)
        self._notifier.notify_person(
            manager, rep.name if rep else manager, message, f"{params.idempotency_key}:manager"
        )
        return manager, None
