"""``LeadImport``: a bulk import of leads (workflow id ``import-<import_id>``).

The rows wait in the database (``store.imports``); the workflow hands them to their leads'
lifecycles one batch at a time through ``start_import_batch``, which paces them and marks
each row started as it goes, and it continues as new every ``rows_per_run`` rows so that
even 100,000 rows keep a short history. A worker that dies mid-batch leaves the batch to
be run again once its heartbeat times out: the rows it had marked are skipped, and the
lead's lifecycle drops a row handed over twice (same submission id). A batch that can
never succeed closes the import as ``failed`` with the reason."""

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
        LeadImportInput,
        LeadImportResult,
    )

from workflows.steps import RETRY

if TYPE_CHECKING:
    from temporalio.client import Client

    from settings import Settings

__all__ = ["LeadImportWorkflow", "import_workflow_id", "start_import"]


def import_workflow_id(import_id: str) -> str:
    return f"import-{import_id}"


@workflow.defn(name="LeadImport")
class LeadImportWorkflow:
    @workflow.run
    async def run(self, params: LeadImportInput) -> LeadImportResult:
        started = params.started
        this_run = 0
        error: str | None = None
        while True:
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
                cause = err.cause
                error = cause.message if isinstance(cause, ApplicationError) else str(err)
                break
            started += batch.started
            this_run += batch.started
            if batch.remaining == 0:
                break
            if this_run >= params.rows_per_run or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(params.model_copy(update={"started": started}))
        return await workflow.execute_activity_method(
            ImportActivities.finish,
            FinishImportInput(import_id=params.import_id, error=error),
            start_to_close_timeout=timedelta(seconds=params.batch_margin_s),
            retry_policy=RETRY,
        )


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
