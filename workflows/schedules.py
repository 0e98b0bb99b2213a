"""The Temporal Schedules Leadflow keeps (created or brought in line by the worker at
start): ``crm-poll`` polls the configured CRM for changes every
``LEADFLOW_CRM_POLL_INTERVAL_S``; it is removed when polling is off or the CRM is the
embedded one (nobody else changes it). ``weekly-leaderboard`` posts the leaderboard to
the wins channel at ``LEADFLOW_LEADERBOARD_CRON`` (``LEADFLOW_LEADERBOARD_TIMEZONE``)."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from workflows.crm_inbound import CrmPollWorkflow
from workflows.leaderboard import LeaderboardWorkflow

log = logging.getLogger("leadflow.schedules")

CRM_POLL_SCHEDULE = "crm-poll"
LEADERBOARD_SCHEDULE = "weekly-leaderboard"


def _crm_poll(task_queue: str, every: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CrmPollWorkflow.run, id="crm-poll-run", task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A poll still running when the next is due: the next is skipped, never queued.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_crm_poll_schedule(
    client: Client, task_queue: str, interval_s: float | None
) -> None:
    """Create, update or (``interval_s`` None or 0) remove the ``crm-poll`` schedule."""
    handle = client.get_schedule_handle(CRM_POLL_SCHEDULE)
    if not interval_s:
        try:
            await handle.delete()
            log.info("CRM polling is off: removed the %s schedule", CRM_POLL_SCHEDULE)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        return
    wanted = _crm_poll(task_queue, timedelta(seconds=interval_s))
    try:
        await client.create_schedule(CRM_POLL_SCHEDULE, wanted)
        log.info("polling the CRM for changes every %gs", interval_s)
    except ScheduleAlreadyRunningError:

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=wanted)

        await handle.update(update)


async def ensure_leaderboard_schedule(
    client: Client, task_queue: str, cron: str, time_zone: str
) -> None:
    """Create, update or (``cron`` empty) remove the ``weekly-leaderboard`` schedule."""
    handle = client.get_schedule_handle(LEADERBOARD_SCHEDULE)
    if not cron.strip():
        try:
            await handle.delete()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        return
    wanted = Schedule(
        action=ScheduleActionStartWorkflow(
            LeaderboardWorkflow.run, id="weekly-leaderboard-run", task_queue=task_queue
        ),
        spec=ScheduleSpec(cron_expressions=[cron.strip()], time_zone_name=time_zone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(LEADERBOARD_SCHEDULE, wanted)
    except ScheduleAlreadyRunningError:

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=wanted)

        await handle.update(update)
