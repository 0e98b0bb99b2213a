"""The Temporal worker: registers the workflows and activities and polls the task queue."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.approvals import ApprovalActivities
from activities.crm_inbound import CrmInboundActivities, sync_rep_links
from activities.handoff import HandoffActivities
from activities.lead import LeadActivities
from activities.lead_import import ImportActivities
from activities.lead_start import LifecycleLimits
from activities.leaderboard import LeaderboardActivities
from activities.lifecycle import LifecycleActivities
from activities.notify import NotifyActivities
from activities.reminders import ReminderActivities
from bots.notifier import Notifier, OfflineNotifier
from bots.slack_notifier import SlackNotifier
from connectors.base import CRM, ConnectorError
from connectors.factory import make_crm
from settings import Settings
from store.db import Database
from workflows.approval import ApprovalWorkflow
from workflows.client import make_client
from workflows.crm_inbound import CrmNoticeWorkflow, CrmPollWorkflow
from workflows.handoff import HandoffWorkflow
from workflows.lead_import import LeadImportWorkflow
from workflows.lead_lifecycle import LeadLifecycleWorkflow
from workflows.leaderboard import LeaderboardWorkflow
from workflows.schedules import ensure_crm_poll_schedule, ensure_leaderboard_schedule

log = logging.getLogger("leadflow.worker")

ACTIVITY_THREADS = 32

# Passed through the workflow sandbox (imported once, shared by every run):
# - validators our pydantic models use, imported lazily on first use, so decoding a
#   payload in a workflow does not re-import them there;
# - our own ``workflows`` package: re-executed in every run's sandbox it cost ≈180 KB and
#   ≈21 ms of CPU per run (docs/benchmarks.md), for isolation it does not need: it holds
#   no module-level state, and its determinism is guarded by the recorded histories
#   replayed in tests/test_replay.py.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "email_validator", "idna", "workflows"
    )
)


def build_worker(
    client: Client,
    settings: Settings,
    db: Database,
    executor: ThreadPoolExecutor,
    *,
    task_queue: str | None = None,
    crm: CRM | None = None,
    notifier: Notifier | None = None,
) -> Worker:
    """A worker for the lead lifecycle. Tests pass their own task queue and fakes."""
    crm = crm or make_crm(settings, db)
    notifier = notifier or make_notifier(settings, db)
    acts = LeadActivities(
        db, crm, notifier, default_team=settings.default_team, base_url=settings.base_url
    )
    common = {"default_team": settings.default_team, "base_url": settings.base_url}
    life = LifecycleActivities(db, crm, notifier, **common)
    notices = NotifyActivities(db, crm, notifier, **common)
    reminders = ReminderActivities(db, crm, notifier, **common)
    handoff = HandoffActivities(db, crm, notifier, **common)
    inbound = CrmInboundActivities(db, crm)
    approvals = ApprovalActivities(db, crm, notifier, **common)
    leaders = LeaderboardActivities(db, notifier)
    imports = ImportActivities(
        db, LifecycleLimits.from_settings(settings), notifier, base_url=settings.base_url
    )
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=[
            LeadLifecycleWorkflow,
            HandoffWorkflow,
            CrmNoticeWorkflow,
            CrmPollWorkflow,
            ApprovalWorkflow,
            LeaderboardWorkflow,
            LeadImportWorkflow,
        ],
        workflow_runner=SANDBOX,
        activities=[
            leaders.post,
            acts.assign_lead,
            acts.sync_lead_to_crm,
            notices.notify_owner,
            acts.record_resubmissions,
            acts.record_event,
            life.reroute_lead,
            life.change_stage,
            life.update_crm,
            life.record_engagement,
            reminders.remind,
            handoff.convert_lead,
            handoff.choose_account_manager,
            handoff.create_onboarding_tasks,
            handoff.announce_win,
            inbound.interpret_notice,
            inbound.record_notice_failure,
            inbound.poll_changes,
            inbound.save_mark,
            inbound.apply_change,
            approvals.plan_approval,
            approvals.record_approval_request,
            approvals.open_approval_level,
            approvals.record_approval_decision,
            imports.claim_turn,
            imports.start_batch,
            imports.finish,
            imports.summarize,
        ],
        activity_executor=executor,
        # Memory is bounded by the cache, not by the open leads (docs/benchmarks.md).
        max_cached_workflows=settings.worker_cached_workflows,
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=settings.worker_sticky_timeout_s),
        max_concurrent_activities=ACTIVITY_THREADS,
        # On SIGTERM, let in-flight steps finish (they are short) rather than abandon them
        # to their start-to-close timeout.
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or forever), then finish in-flight tasks and return."""
    db = Database(settings.effective_database_url, pool_size=ACTIVITY_THREADS // 2)
    try:
        db.ping()
    except Exception as err:
        raise SystemExit(
            f"leadflow worker: cannot reach the database at LEADFLOW_DATABASE_URL ({err})"
        ) from err
    try:
        crm = make_crm(settings, db)  # an unusable CRM setting is refused before anything starts
    except (ConnectorError, ValueError) as err:
        raise SystemExit(f"leadflow worker: {err}") from err
    await asyncio.to_thread(link_reps_at_start, db, crm)
    try:
        client = await make_client(settings)
    except Exception as err:
        raise SystemExit(
            f"leadflow worker: cannot reach Temporal at {settings.temporal_target} "
            f"(LEADFLOW_TEMPORAL_ADDRESS / LEADFLOW_TEMPORAL_PORT): {err}"
        ) from err
    await ensure_leaderboard_schedule(
        client,
        settings.temporal_task_queue,
        settings.leaderboard_cron,
        settings.leaderboard_timezone,
    )
    await ensure_crm_poll_schedule(
        client,
        settings.temporal_task_queue,
        settings.crm_poll_interval_s if crm.name != "local" else None,
    )
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(client, settings, db, executor, crm=crm)
        log.info(
            "worker polling task queue %r on %s",
            settings.temporal_task_queue,
            settings.temporal_target,
        )
        async with worker:
            if stop is None:
                await asyncio.Event().wait()
            else:
                await stop.wait()
        log.info("worker stopped")
    db.dispose()


def make_notifier(settings: Settings, db: Database) -> Notifier:
    """Slack when a bot token is configured (every message is also an inbox row);
    otherwise the inbox alone."""
    if settings.slack_bot_token is not None:
        return SlackNotifier.from_settings(settings, db)
    return OfflineNotifier(db, settings.slack_wins_channel)


def link_reps_at_start(db: Database, crm: CRM) -> None:
    """Link reps to the CRM's users by email, and say which could not be. A CRM that
    cannot be reached now does not stop the worker: leads of unlinked reps land in the
    CRM without an owner and need attention until ``leadflow reps sync`` succeeds."""
    if crm.name == "local":
        return
    try:
        report = sync_rep_links(db, crm)
    except ConnectorError as err:
        log.warning("could not read the users of %s to link reps: %s", crm.name, err)
        return
    log.info(
        "%s: %d of %d reps linked to its users",
        crm.name,
        len(report.linked),
        len(report.links),
    )
    for link in report.unlinked:
        log.warning("rep %s is not linked to a %s user: %s", link.email, crm.name, link.problem)
