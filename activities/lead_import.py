"""The bulk import's activities: take the import's turn (one import runs at a time), hand
a batch of its rows to their leads' lifecycles, paced, close the import, and tell each
owner in one message how many of its leads they got.

A row enters exactly as a ``POST /leads`` does (``activities.lead_start``): signal-with-
start of the lead's workflow, so a person already known joins their lead. Rows start at
the import's pace, a few in flight at once; each is marked started in the database right
after Temporal recorded it. A batch run again after a crash skips the rows marked, and a
row handed over but not yet marked when the worker died is handed over again with the
same submission id (``import:<import>:<line>``), which the lead's lifecycle drops as a
repeat. Every row is handed over as an ``imported`` lead (``domain.lifecycle.Origin``):
no speed-to-lead SLA, and a quiet notice instead of a message per lead."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import classified, permanent_error
from activities.lead_start import LifecycleLimits, hand_to_lifecycle
from activities.notify import import_summary_message
from bots.notifier import Notifier
from domain.lead_import_run import (
    FinishImportInput,
    ImportBatchInput,
    ImportBatchResult,
    ImportSummaryInput,
    ImportSummaryResult,
    ImportTurn,
    ImportTurnInput,
    LeadImportResult,
    import_workflow_id,
    row_submission_id,
)
from domain.lifecycle import Origin, SubmissionReceived
from store import imports as import_store
from store import reps as rep_store
from store.db import Database
from store.models import utcnow

log = logging.getLogger("leadflow.activities")

# Rows being handed over at once: the pace sets when each starts, and a slow moment of
# Temporal or the database (a row taking longer than 1/rate) does not slow the pace down.
IN_FLIGHT = 8
# Backpressure: at most this many seconds of the pace's rows may be handed over and not yet
# told to their owner; past it the import waits for the lifecycle to catch up, so a live
# web-form lead never queues behind more than this much of an import. A lead still not
# told after BACKLOG_FORGET_S (parked on a failed step, waiting in a queue) stops counting.
BACKLOG_S = 2.0
BACKLOG_FORGET_S = 60.0
BACKLOG_CHECK_S = 0.25


class Backlog:
    """The rows of a batch handed over whose owner has not been told yet."""

    def __init__(self, db: Database, rate: float) -> None:
        self._db = db
        self.limit = max(IN_FLIGHT, math.ceil(rate * BACKLOG_S))
        self._waiting: dict[str, float] = {}  # lead id → when it was handed over
        self.waited_s = 0.0

    def handed_over(self, lead_id: str) -> None:
        self._waiting[lead_id] = time.monotonic()

    async def room(self) -> None:
        """Return once fewer than ``limit`` rows wait for their owner's notice."""
        started = time.monotonic()
        while True:
            horizon = time.monotonic() - BACKLOG_FORGET_S
            for lead_id in [k for k, at in self._waiting.items() if at < horizon]:
                del self._waiting[lead_id]
            if len(self._waiting) < self.limit:
                break
            told = await asyncio.to_thread(self._told, list(self._waiting))
            for lead_id in told:
                self._waiting.pop(lead_id, None)
            if len(self._waiting) < self.limit:
                break
            if activity.in_activity():
                activity.heartbeat()
            await asyncio.sleep(BACKLOG_CHECK_S)
        self.waited_s += time.monotonic() - started

    def _told(self, lead_ids: list[str]) -> set[str]:
        with self._db.read() as session:
            return import_store.notified(session, lead_ids)


def _raise_first_failure(tasks: list[asyncio.Task[bool]]) -> None:
    for task in tasks:
        error = task.exception() if task.done() and not task.cancelled() else None
        if error is not None:
            raise error


async def _workflow_ended(client: Client, import_id: str) -> str | None:
    """How the workflow of ``import_id`` ended (``terminated``, ``not found`` …), or None
    while it runs (or when Temporal cannot say now)."""
    try:
        described = await client.get_workflow_handle(import_workflow_id(import_id)).describe()
    except RPCError as err:
        return "not found" if err.status == RPCStatusCode.NOT_FOUND else None
    if described.status in (None, WorkflowExecutionStatus.RUNNING):
        return None
    return described.status.name.lower()


def _unknown(import_id: str) -> ApplicationError:
    return ApplicationError(
        f"there is no import {import_id} in the database", type="UnknownImport", non_retryable=True
    )


class ImportActivities:
    def __init__(
        self, db: Database, limits: LifecycleLimits, notifier: Notifier, *, base_url: str
    ) -> None:
        self._db = db
        self._limits = limits
        self._notifier = notifier
        self._base_url = base_url

    @activity.defn(name="claim_import_turn")
    async def claim_turn(self, params: ImportTurnInput) -> ImportTurn:
        """Run the import now, or queue it behind the import it waits for. An import
        ahead whose workflow has ended without finishing it (terminated by hand) does not
        hold the line: it is closed as failed, saying so, and the turn is claimed again."""
        try:
            return await self._claim_turn(params.import_id)
        except (ApplicationError, asyncio.CancelledError):
            raise
        except LookupError:
            raise _unknown(params.import_id) from None
        except Exception as err:
            permanent = permanent_error(err)
            if permanent is not None:
                raise permanent from None
            raise

    async def _claim_turn(self, import_id: str) -> ImportTurn:
        closed: set[str] = set()
        while True:
            turn = await asyncio.to_thread(self._claim, import_id)
            if turn.go or turn.behind is None or turn.behind in closed:
                return ImportTurn(go=turn.go, behind=turn.behind)
            ended = await _workflow_ended(activity.client(), turn.behind)
            if ended is None:
                return ImportTurn(go=False, behind=turn.behind)
            log.warning(
                "import %s: the import ahead, %s, lost its workflow (%s); closing it",
                import_id,
                turn.behind,
                ended,
                extra={"import_id": import_id},
            )
            reason = f"its workflow ended ({ended}) before the import finished"
            await asyncio.to_thread(self._close, turn.behind, reason)
            closed.add(turn.behind)

    def _claim(self, import_id: str) -> import_store.Turn:
        with self._db.session() as session:
            return import_store.claim_turn(session, import_id)

    def _close(self, import_id: str, reason: str) -> None:
        with self._db.session() as session:
            import_store.finish_import(session, import_id, reason)

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
        backlog = Backlog(self._db, params.rate)
        tasks: list[asyncio.Task[bool]] = []
        due = time.monotonic()
        try:
            for row in rows:
                await slots.acquire()
                _raise_first_failure(tasks)
                await backlog.room()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                # Never faster than the rate, even to catch up after a slow moment.
                due = max(due, time.monotonic()) + interval
                backlog.handed_over(row.lead_id)
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
            "import %s: %d rows handed to the lifecycle, %d to go (%.1f s waiting for the "
            "lifecycle to catch up)",
            import_id,
            started,
            remaining,
            backlog.waited_s,
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
                self._limits.input_for(row.lead_id, Origin.imported),
                SubmissionReceived(
                    submission=row.submission,
                    received_at=datetime.now(UTC),
                    submission_id=row_submission_id(import_id, row.line),
                    origin=Origin.imported,
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
            # The import's turn marks it running; a run that began before imports took
            # turns (no ``claim_import_turn`` in its history) is marked by its first batch.
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

    @activity.defn(name="summarize_import")
    @classified
    def summarize(self, params: ImportSummaryInput) -> ImportSummaryResult:
        """One message to each rep who owns leads the import created: how many, with a
        link to them. Waits (answers ``sent=False``) while some of its leads are not
        routed yet, unless ``final``. Once per import and rep: a retry sends nothing more."""
        with self._db.read() as session:
            waiting = import_store.unsettled_rows(session, params.import_id)
            if waiting and not params.final:
                return ImportSummaryResult(sent=False, waiting=waiting)
            row = import_store.get_import(session, params.import_id)
            if row is None:
                raise _unknown(params.import_id)
            filename, source = row.filename, row.source
            owners = [
                (rep_store.owner_of(rep), count)
                for rep_id, count in import_store.owners_of(session, row)
                if (rep := rep_store.get_rep(session, rep_id)) is not None
            ]
        for owner, count in owners:
            message = import_summary_message(
                count, filename, base_url=self._base_url, rep_id=owner.rep_id, source=source
            )
            key = f"import-{params.import_id}:summary:{owner.rep_id}"
            self._notifier.notify(owner, message, key)
        leads = sum(count for _, count in owners)
        log.info(
            "import %s: %d leads summed up to %d owners (%d not routed yet)",
            params.import_id,
            leads,
            len(owners),
            waiting,
            extra={"import_id": params.import_id},
        )
        return ImportSummaryResult(sent=True, waiting=waiting, reps=len(owners), leads=leads)
