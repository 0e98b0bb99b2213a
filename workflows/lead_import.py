"""``LeadImport``: a bulk import of leads (workflow id ``import-<import_id>``).

The rows wait in the database (``store.imports``); the workflow hands them to their leads'
lifecycles one batch at a time through ``start_import_batch``, which paces them and marks
each row started as it goes, and it continues as new every ``rows_per_run`` rows so that
even 100,000 rows keep a short history. A worker that dies mid-batch leaves the batch to
be run again once its heartbeat times out: the rows it had marked are skipped, and the
lead's lifecycle drops a row handed over twice (same submission id). A batch that can
never succeed closes the import as ``failed`` with the reason.

One import runs at a time: a new run first takes its turn (``claim_import_turn``); while
another import runs, it is ``queued`` and checks again after a durable timer, so the
queue lives in the database and Temporal and survives any restart. Once the import is
done (completed or failed), each rep who owns leads it created gets one summary
(``summarize_import``) instead of a message per lead."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.lead_import import ImportActivities
    from domain.lead_import_run import (
        FinishImportInput,
        ImportBatchInput,
        ImportSummaryInput,
        ImportTurnInput,
        LeadImportInput,
        LeadImportResult,
        import_workflow_id,
    )

from workflows.steps import RETRY

if TYPE_CHECKING:
    from temporalio.client import Client

    from settings import Settings

__all__ = [
    "IMPORT_QUEUE",
    "IMPORT_SUMMARY",
    "LeadImportWorkflow",
    "import_workflow_id",
    "start_import",
]

# Patches (see STYLE.md): runs recorded before imports took turns, and before the owners'
# summaries, replay without them.
IMPORT_QUEUE = "import-queue"
IMPORT_SUMMARY = "import-summary"


@workflow.defn(name="LeadImport")
class LeadImportWorkflow:
    @workflow.run
    async def run(self, params: LeadImportInput) -> LeadImportResult:
        started = params.started
        this_run = 0
        error: str | None = None
        if workflow.patched(IMPORT_QUEUE):
            try:
                await self._wait_for_turn(params)
            except ActivityError as err:
                error = _reason(err)
        while error is None:
            try:
                batch = await workflow.execute_activity_method(
                    ImportActivities.start_batch,
                    ImportBatchInput(
                        import_id=params.import_id, limit=params.batch_rows, rate=params.rate
                    ),
                    start_to_close_timeout=timedelta(
                        seconds=params.batch_rows / params.rate + params.batch_margin_s
                    ),
                    heartbeat_timeout=timedelta(seconds=params.heartbeat_timeout_s),
                    retry_policy=RETRY,
                )
            except ActivityError as err:
                # Only a failure that no retry can fix gets here (RETRY never gives up).
                error = _reason(err)
                break
            started += batch.started
            this_run += batch.started
            if batch.remaining == 0:
                break
            if this_run >= params.rows_per_run or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(params.model_copy(update={"started": started}))
        result = await workflow.execute_activity_method(
            ImportActivities.finish,
            FinishImportInput(import_id=params.import_id, error=error),
            start_to_close_timeout=timedelta(seconds=params.batch_margin_s),
            retry_policy=RETRY,
        )
        if workflow.patched(IMPORT_SUMMARY):
            await self._summarize(params)
        return result

    async def _wait_for_turn(self, params: LeadImportInput) -> None:
        """Until no import runs and none queued before this one waits: a check, then a
        durable timer, so a restart loses nothing; continued as new now and then so a long
        wait keeps a short history."""
        checks = 0
        while True:
            turn = await workflow.execute_activity_method(
                ImportActivities.claim_turn,
                ImportTurnInput(import_id=params.import_id),
                start_to_close_timeout=timedelta(seconds=params.batch_margin_s),
                retry_policy=RETRY,
            )
            if turn.go:
                return
            checks += 1
            if (
                checks >= params.queue_checks_per_run
                or workflow.info().is_continue_as_new_suggested()
            ):
                workflow.continue_as_new(params)
            await workflow.sleep(timedelta(seconds=params.queue_poll_s))

    async def _summarize(self, params: LeadImportInput) -> None:
        """Each owner's summary of the import's leads, once they are routed (at most
        ``summary_wait_s`` later). A summary that cannot be sent leaves the import as it
        ended: its leads are routed and recorded either way."""
        waited = 0.0
        while True:
            try:
                summary = await workflow.execute_activity_method(
                    ImportActivities.summarize,
                    ImportSummaryInput(
                        import_id=params.import_id, final=waited >= params.summary_wait_s
                    ),
                    start_to_close_timeout=timedelta(seconds=params.batch_margin_s),
                    retry_policy=RETRY,
                )
            except ActivityError as err:
                workflow.logger.warning(
                    "import %s: the owners' summaries were not sent: %s",
                    params.import_id,
                    _reason(err),
                )
                return
            if summary.sent:
                return
            await workflow.sleep(timedelta(seconds=params.queue_poll_s))
            waited += params.queue_poll_s


def _reason(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(err)


async def start_import(client: Client, settings: Settings, import_id: str) -> None:
    """Start the import's workflow with the pace and batch sizes of ``settings``; an
    import started before (running or finished) is left as it is."""
    try:
        await client.start_workflow(
            LeadImportWorkflow.run,
            LeadImportInput(
                import_id=import_id,
                rate=settings.import_rate,
                batch_rows=settings.import_batch_rows,
                rows_per_run=settings.import_rows_per_run,
                heartbeat_timeout_s=settings.import_heartbeat_timeout_s,
                batch_margin_s=max(60.0, settings.activity_timeout_s * 6),
            ),
            id=import_workflow_id(import_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
