"""When the lifecycle's timers fire, planned from the published configuration.

Activities call these with the configuration in force when a timer starts, and hand the
workflow absolute deadlines: the workflow only sleeps until them, so a later publish
changes timers started after it and never one already running.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from domain.business_hours import DEFAULT_HOURS, add_working_time, working_time_between
from domain.config import PoolConfig, RoutingConfig, SlaConfig, WorkingHours
from domain.lead import Stage
from domain.lifecycle import Origin, Timer, TimerName

# Timers that survive the lead entering a stage (any other timer stops); the activity
# that moved the lead starts the new stage's own timers.
KEPT_ON_ENTER: dict[Stage, frozenset[TimerName]] = {
    Stage.contacted: frozenset({TimerName.no_meeting}),
}
SLA_TIMERS = frozenset({TimerName.sla_remind, TimerName.sla_reassign, TimerName.sla_escalate})


def timers_on_enter(stage: Stage, timers: list[Timer]) -> list[Timer]:
    """The running timers that go on when the lead enters ``stage``."""
    kept = KEPT_ON_ENTER.get(stage, frozenset())
    return [t for t in timers if t.name in kept]


def merged(timers: list[Timer], started: list[Timer]) -> list[Timer]:
    """``timers`` with ``started`` added, a started timer replacing one of its name;
    ordered by when they fire."""
    names = {t.name for t in started}
    return sorted(
        [t for t in timers if t.name not in names] + started,
        key=lambda t: (t.fires_at, list(TimerName).index(t.name)),
    )


def pool_of(config: RoutingConfig, name: str | None) -> PoolConfig | None:
    return next((p for p in config.pools if p.name == name), None)


def sla_of(config: RoutingConfig, pool: str | None) -> SlaConfig:
    found = pool_of(config, pool)
    return found.sla if found is not None else SlaConfig()


def _clock(
    config: RoutingConfig, pool: str | None, rep_email: str | None
) -> tuple[bool, WorkingHours, str, list[date]]:
    found = pool_of(config, pool)
    sla = found.sla if found is not None else SlaConfig()
    rep = next((r for r in config.reps if r.email == rep_email), None)
    hours = rep.working_hours if rep is not None and rep.working_hours else DEFAULT_HOURS
    tz = rep.timezone if rep is not None else (found.timezone if found is not None else "UTC")
    holidays = list(found.holidays) if found is not None else []
    return sla.business_hours, hours, tz, holidays


def sla_deadline(
    config: RoutingConfig,
    pool: str | None,
    rep_email: str | None,
    start: datetime,
    after: timedelta,
) -> datetime:
    """When ``after`` of the SLA clock has run from ``start``: wall time, or with the
    pool's ``business_hours`` only the owner's working hours (pool holidays skipped)."""
    business, hours, tz, holidays = _clock(config, pool, rep_email)
    if not business:
        return start + after
    return add_working_time(start, after, hours, tz, holidays)


def sla_elapsed(
    config: RoutingConfig, pool: str | None, rep_email: str | None, start: datetime, now: datetime
) -> float:
    """Seconds the SLA clock has counted from ``start`` to ``now``."""
    business, hours, tz, holidays = _clock(config, pool, rep_email)
    if not business:
        return max(0.0, (now - start).total_seconds())
    return working_time_between(start, now, hours, tz, holidays).total_seconds()


def assignment_timers(
    config: RoutingConfig,
    version: int | None,
    *,
    pool: str | None,
    rep_email: str | None,
    start: datetime,
    origin: Origin,
    reassignments: int = 0,
    start_sla: bool = True,
) -> list[Timer]:
    """The timers of a lead given to a rep at ``start``: the speed-to-lead SLA (inbound
    leads not yet contacted: remind, then reassign while reassignments remain, then
    escalate) and the no-meeting timer. Outbound and imported leads get no SLA, at the
    first assignment or any later one (``Origin.has_speed_to_lead_sla``)."""
    nurture = config.nurture
    timers = [
        Timer(
            name=TimerName.no_meeting,
            fires_at=start + nurture.no_meeting_after,
            started_at=start,
            config_version=version,
        )
    ]
    if origin.has_speed_to_lead_sla and start_sla:
        sla = sla_of(config, pool)
        steps = [(TimerName.sla_remind, sla.remind_after)]
        if reassignments < sla.max_reassignments:
            steps.append((TimerName.sla_reassign, sla.reassign_after))
        steps.append((TimerName.sla_escalate, sla.escalate_after))
        for name, after in steps:
            timers.append(
                Timer(
                    name=name,
                    fires_at=sla_deadline(config, pool, rep_email, start, after),
                    started_at=start,
                    config_version=version,
                )
            )
    return merged([], timers)


def queue_timer(config: RoutingConfig, version: int | None, start: datetime) -> list[Timer]:
    """A lead nobody could take waits in its queue; routing is tried again after this."""
    return [
        Timer(
            name=TimerName.queue_retry,
            fires_at=start + config.nurture.queue_retry_after,
            started_at=start,
            config_version=version,
        )
    ]


def stage_timers(
    config: RoutingConfig, version: int | None, names: list[str], start: datetime
) -> list[Timer]:
    """The timers a stage starts: ``stale`` (a worked stage nobody moves), ``cool_off``
    and ``lost_cool_off`` (nurture; both fire as ``cool_off``), ``queue_retry`` (a lead
    waiting in a queue)."""
    nurture = config.nurture
    durations = {
        "stale": (TimerName.stale, nurture.stale_after),
        "cool_off": (TimerName.cool_off, nurture.cool_off),
        "lost_cool_off": (TimerName.cool_off, nurture.lost_cool_off),
        "queue_retry": (TimerName.queue_retry, nurture.queue_retry_after),
        "no_meeting": (TimerName.no_meeting, nurture.no_meeting_after),
    }
    return [
        Timer(name=name, fires_at=start + after, started_at=start, config_version=version)
        for name, after in (durations[n] for n in names)
    ]
