"""The bulk import's activities: hand a batch of an import's rows to their leads'
lifecycles, paced, and close the import.

A row enters exactly as a ``POST /leads`` does (``activities.lead_start``): signal-with-
start of the lead's workflow, so a person already known joins their lead. Rows start at
the import's pace, a few in flight at once; each is marked started in the database right
after Temporal recorded it. A batch run again after a crash skips the rows marked, and a
row handed over but not yet marked when the worker died is handed over again with the
same submission id (``import:<import>:<line>``), which the lead's lifecycle drops as a
repeat."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import classified, permanent_error
from activities.lead_start import LifecycleLimits, hand_to_lifecycle
from domain.lead_import_run import (
    FinishImportInput,
    ImportBatchInput,
    ImportBatchResult,
    LeadImportResult,
    row_submission_id,
)
from domain.lifecycle import SubmissionReceived
from store import imports as import_store
from store.db import Database
from store.models import utcnow

log = logging.getLogger("leadflow.activities")

# Rows being handed over at once: the pace sets when each starts, and a slow moment of
# Temporal or the database (a row taking longer than 1/rate) does not slow the pace down.
IN_FLIGHT = 8


def _raise_first_failure(tasks: list[asyncio.Task[bool]]) -> None:
    for task in tasks:
        error = task.exception() if task.done() and not task.cancelled() else None
        if error is not None:
            raise error


class ImportActivities:
    def __init__(self, db: Database, limits: LifecycleLimits) -> None:
        self._db = db
        self._limits = limits

    @activity.defn(name="start_import_batch")
    async def start_batch(self, params: ImportBatchInput) -> ImportBatchResult:
        """Hand up to ``limit`` pending rows to their leads' lifecycles, at most ``rate``
        a second (the pause after the last one keeps the pace into the next batch)."""
        try:
            return await self._start_batch(params)
        except (ApplicationError, asyncio.CancelledError):
            raise
        except Exception as err:
            permanent = permanent_error(err)
            if permanent is not None:
                raise permanent from None
            raise

    async def _start_batch(self, params: ImportBatchInput) -> ImportBatchResult:
        import_id = params.import_id
        rows = await asyncio.to_thread(self._pending, import_id, params.limit)
        interval = 1.0 / params.rate
        slots = asyncio.Semaphore(IN_FLIGHT)
        tasks: list[asyncio.Task[bool]] = []
        due = time.monotonic()
        try:
            for row in rows:
                await slots.acquire()
                _raise_first_failure(tasks)
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                # Never faster than the rate, even to catch up after a slow moment.
                due = max(due, time.monotonic()) + interval
                tasks.append(asyncio.create_task(self._hand_over(import_id, row, slots)))
            started = sum(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        wait = due - time.monotonic()
        if rows and wait > 0:
            await asyncio.sleep(wait)  # the pace goes on into the next batch
        remaining = await asyncio.to_thread(self._remaining, import_id)
        log.info(
            "import %s: %d rows handed to the lifecycle, %d to go",
            import_id,
            started,
            remaining,
            extra={"import_id": import_id},
        )
        return ImportBatchResult(started=started, remaining=remaining)

    async def _hand_over(
        self, import_id: str, row: import_store.PendingRow, slots: asyncio.Semaphore
    ) -> bool:
        """One row to its lead's lifecycle, then marked started; whether this marked it."""
        try:
            await hand_to_lifecycle(
                activity.client(),
                self._limits.input_for(row.lead_id),
                SubmissionReceived(
                    submission=row.submission,
                    received_at=datetime.now(UTC),
                    submission_id=row_submission_id(import_id, row.line),
                ),
                task_queue=activity.info().task_queue,
            )
            marked = await asyncio.to_thread(self._mark, import_id, row.line)
            activity.heartbeat(row.line)
            return marked
        finally:
            slots.release()

    def _pending(self, import_id: str, limit: int) -> list[import_store.PendingRow]:
        with self._db.session() as session:
            # The starter marks the import running; if it died before, the first batch does.
            import_store.mark_running(session, import_id)
        with self._db.read() as session:
            return import_store.pending_rows(session, import_id, limit)

    def _mark(self, import_id: str, line: int) -> bool:
        with self._db.session() as session:
            return import_store.mark_started(session, import_id, line, utcnow())

    def _remaining(self, import_id: str) -> int:
        with self._db.read() as session:
            return import_store.remaining_rows(session, import_id)

    @activity.defn(name="finish_import")
    @classified
    def finish(self, params: FinishImportInput) -> LeadImportResult:
        """Close the import (``completed``, or ``failed`` with the reason)."""
        with self._db.session() as session:
            row = import_store.finish_import(session, params.import_id, params.error)
            return LeadImportResult(
                import_id=row.id,
                status=row.status,
                imported=row.imported,
                merged=row.merged,
                rejected=row.rejected,
            )
