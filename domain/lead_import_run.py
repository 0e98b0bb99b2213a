"""What the ``LeadImport`` workflow (``workflows.lead_import``) and its activities exchange,
and the arithmetic of its progress. Fields are only ever added with defaults, so running
imports keep decoding their history."""

from __future__ import annotations

from pydantic import BaseModel


class LeadImportInput(BaseModel):
    """``LeadImport`` (workflow id ``import-<import_id>``): hand the import's rows to
    their leads' lifecycles, ``rate`` rows a second at most, ``batch_rows`` per
    activity, continuing as new every ``rows_per_run`` rows. ``started`` carries the
    count across runs."""

    import_id: str
    rate: float = 10.0
    batch_rows: int = 500
    rows_per_run: int = 5_000
    heartbeat_timeout_s: float = 30.0
    # Added to a batch's paced duration for its start-to-close timeout.
    batch_margin_s: float = 60.0
    started: int = 0
    # A queued import asks for its turn every ``queue_poll_s`` (a durable timer between
    # checks), continuing as new every ``queue_checks_per_run`` checks; once done, it
    # waits up to ``summary_wait_s`` for its leads to be routed before each owner's
    # summary is sent with what is there.
    queue_poll_s: float = 2.0
    queue_checks_per_run: int = 200
    summary_wait_s: float = 120.0


class ImportTurnInput(BaseModel):
    import_id: str


class ImportTurn(BaseModel):
    """``go``: the import runs now; otherwise it is queued behind ``behind``."""

    go: bool
    behind: str | None = None


class ImportSummaryInput(BaseModel):
    """Tell each owner how many of the import's leads they got, once the leads are
    routed; ``final``: send now with what is there."""

    import_id: str
    final: bool = False


class ImportSummaryResult(BaseModel):
    """``sent``: the summaries went out (``reps`` messages for ``leads`` leads);
    otherwise ``waiting`` leads are not routed yet."""

    sent: bool
    waiting: int = 0
    reps: int = 0
    leads: int = 0


class ImportBatchInput(BaseModel):
    import_id: str
    limit: int
    rate: float


class ImportBatchResult(BaseModel):
    """Rows this batch handed to the lifecycle, and the rows still waiting."""

    started: int
    remaining: int


class FinishImportInput(BaseModel):
    """Close the import: ``completed``, or ``failed`` with ``error`` in plain words."""

    import_id: str
    error: str | None = None


class LeadImportResult(BaseModel):
    import_id: str
    status: str
    imported: int
    merged: int
    rejected: int


def import_workflow_id(import_id: str) -> str:
    """The id of the import's ``LeadImport`` workflow."""
    return f"import-{import_id}"


def row_submission_id(import_id: str, line: int) -> str:
    """The submission id of an import's row: the same on every try, so the lead's
    lifecycle counts a row handed over twice (a batch run again after a crash) once."""
    return f"import:{import_id}:{line}"


def seconds_left(remaining: int, done: int, elapsed_s: float) -> float | None:
    """The time the remaining rows take at the rate seen so far; None before any."""
    if remaining <= 0:
        return 0.0
    if done <= 0 or elapsed_s <= 0:
        return None
    return remaining * elapsed_s / done
