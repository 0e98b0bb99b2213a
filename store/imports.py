"""Bulk imports of leads in the database: the import (file, mapping, counts) and its rows by
line. A row is marked started in the transaction that counts it, so a batch that runs
again (a worker died mid-way) finds it started and skips it. One import runs at a time:
``claim_turn`` lets an import run or queues it behind the others, in order of creation.
The leads of an import are those its started rows created (``owners_of``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from domain.lead import LeadSubmission, lead_key
from domain.lead_import import Column, Problem, RejectedRow, Validation
from domain.lead_import_run import seconds_left
from store.models import ImportRow, Lead, LeadImport, utcnow

# Where an import stands. ``queued``: started while another import runs; it runs when
# every import ahead of it in line (by creation) has finished.
MAPPING, VALIDATED, QUEUED, RUNNING = "mapping", "validated", "queued", "running"
COMPLETED, FAILED = "completed", "failed"
FINISHED = (COMPLETED, FAILED)
# Where a row stands.
PENDING, STARTED, MERGED, REJECTED = "pending", "started", "merged", "rejected"
_INSERT_CHUNK = 2_000


@dataclass(frozen=True)
class PendingRow:
    line: int
    lead_id: str
    submission: LeadSubmission


def new_import_id() -> str:
    return uuid.uuid4().hex[:12]


def create_import(
    session: Session,
    *,
    filename: str,
    source: str,
    created_by: str,
    headers: Sequence[str],
    columns: Sequence[Column],
    content: str | None,
    import_id: str | None = None,
) -> LeadImport:
    """A new import waiting for its mapping to be confirmed (``mapping``)."""
    row = LeadImport(
        id=import_id or new_import_id(),
        filename=filename[:255],
        source=source,
        status=MAPPING,
        created_by=created_by,
        headers=list(headers),
        columns=[c.model_dump() for c in columns],
        content=content,
        rows=0,
        accepted=0,
        merged=0,
        rejected=0,
        imported=0,
    )
    session.add(row)
    session.flush()
    return row


def columns_of(row: LeadImport) -> list[Column]:
    return [Column.model_validate(c) for c in row.columns]


def save_validation(
    session: Session,
    row: LeadImport,
    columns: Sequence[Column],
    validation: Validation,
    secret: bytes,
) -> None:
    """Store every row as judged (replacing an earlier validation of the same import) with
    the lead id of each accepted one, and the counts; the import is then ``validated``."""
    session.execute(delete(ImportRow).where(ImportRow.import_id == row.id))
    records: list[dict[str, Any]] = []
    for accepted in validation.accepted:
        submission = accepted.submission
        records.append(
            _record(
                row.id,
                accepted.line,
                PENDING,
                lead_id=lead_key(submission.email, secret),
                submission=submission.model_dump(mode="json", exclude_none=True),
            )
        )
    for line, into in validation.merged.items():
        records.append(_record(row.id, line, MERGED, merged_into=into))
    for rejected in validation.rejected:
        problems = [p.model_dump() for p in rejected.problems]
        records.append(_record(row.id, rejected.line, REJECTED, problems=problems))
    for start in range(0, len(records), _INSERT_CHUNK):
        session.execute(insert(ImportRow), records[start : start + _INSERT_CHUNK])
    row.columns = [c.model_dump() for c in columns]
    row.rows = validation.rows
    row.accepted = len(validation.accepted)
    row.merged = len(validation.merged)
    row.rejected = len(validation.rejected)
    row.imported = 0
    row.status = VALIDATED


def _record(import_id: str, line: int, status: str, **values: Any) -> dict[str, Any]:
    record = {
        "import_id": import_id,
        "line": line,
        "status": status,
        "lead_id": None,
        "submission": None,
        "merged_into": None,
        "problems": None,
        "started_at": None,
    }
    record.update(values)
    return record


def get_import(session: Session, import_id: str) -> LeadImport | None:
    return session.get(LeadImport, import_id)


def recent_imports(session: Session, limit: int = 50) -> list[LeadImport]:
    return list(
        session.scalars(select(LeadImport).order_by(LeadImport.created_at.desc()).limit(limit))
    )


def mark_running(session: Session, import_id: str, now: datetime | None = None) -> bool:
    """``validated`` → ``running``; False when the import was not waiting to start."""
    done = session.execute(
        update(LeadImport)
        .where(LeadImport.id == import_id, LeadImport.status == VALIDATED)
        .values(status=RUNNING, started_at=now or utcnow(), content=None)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Turn:
    """An import's place in line: ``go`` when it runs now; otherwise the import it waits
    for (the one just ahead of it)."""

    go: bool
    behind: str | None = None


@dataclass(frozen=True)
class _InLine:
    id: str
    status: str
    created_at: datetime

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.created_at, self.id)


def _ahead(me: _InLine, others: Sequence[_InLine]) -> str | None:
    """The import ``me`` waits for: the last queued one created before it, else the
    running one; None when nothing is ahead."""
    queued = [o for o in others if o.status == QUEUED and o.key < me.key]
    if queued:
        return max(queued, key=lambda o: o.key).id
    return next((o.id for o in others if o.status == RUNNING), None)


def _line(
    session: Session, statuses: Sequence[str], import_id: str, *, lock: bool
) -> list[_InLine]:
    query = (
        select(LeadImport.id, LeadImport.status, LeadImport.created_at)
        .where(or_(LeadImport.status.in_(statuses), LeadImport.id == import_id))
        .order_by(LeadImport.created_at, LeadImport.id)
    )
    return [
        _InLine(*found) for found in session.execute(query.with_for_update() if lock else query)
    ]


def claim_turn(session: Session, import_id: str, now: datetime | None = None) -> Turn:
    """Run the import now (``running``) when no other import runs and none queued before
    it waits; otherwise queue it (``queued``) behind them. A running or finished import
    goes on. Atomic: every candidate's row is locked (PostgreSQL; SQLite's write
    transaction is exclusive), so two imports claiming at once never both run."""
    line = _line(session, (VALIDATED, QUEUED, RUNNING), import_id, lock=True)
    me = next((i for i in line if i.id == import_id), None)
    if me is None:
        raise LookupError(f"no import {import_id}")
    if me.status == RUNNING or me.status in FINISHED:
        return Turn(go=True)
    behind = _ahead(me, [i for i in line if i.id != import_id])
    # The file is no longer needed once the import is started (queued or running).
    values: dict[str, Any] = {"status": QUEUED, "content": None}
    if behind is None:
        values.update(status=RUNNING, started_at=now or utcnow())
    session.execute(update(LeadImport).where(LeadImport.id == import_id).values(**values))
    return Turn(go=behind is None, behind=behind)


def queued_behind(session: Session, row: LeadImport) -> str | None:
    """The import a queued one waits for (None for any other)."""
    if row.status != QUEUED:
        return None
    line = _line(session, (QUEUED, RUNNING), row.id, lock=False)
    me = next(i for i in line if i.id == row.id)
    return _ahead(me, [i for i in line if i.id != row.id])


def pending_rows(session: Session, import_id: str, limit: int) -> list[PendingRow]:
    """The next rows not yet handed to their lead's lifecycle, in file order."""
    found = session.execute(
        select(ImportRow.line, ImportRow.lead_id, ImportRow.submission)
        .where(ImportRow.import_id == import_id, ImportRow.status == PENDING)
        .order_by(ImportRow.line)
        .limit(limit)
    ).all()
    return [
        PendingRow(line, lead_id or "", LeadSubmission.model_validate(submission))
        for line, lead_id, submission in found
    ]


def mark_started(session: Session, import_id: str, line: int, now: datetime) -> bool:
    """Mark one pending row started and count it, in the caller's transaction; False
    when it was already started (a batch run again)."""
    done = session.execute(
        update(ImportRow)
        .where(
            ImportRow.import_id == import_id,
            ImportRow.line == line,
            ImportRow.status == PENDING,
        )
        .values(status=STARTED, started_at=now)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    session.execute(
        update(LeadImport)
        .where(LeadImport.id == import_id)
        .values(imported=LeadImport.imported + 1)
    )
    return True


def remaining_rows(session: Session, import_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(ImportRow)
            .where(ImportRow.import_id == import_id, ImportRow.status == PENDING)
        )
        or 0
    )


def unsettled_rows(session: Session, import_id: str) -> int:
    """Started rows whose lead is not settled yet: not stored (not routed yet), or given
    an owner who has not been told (a quiet notice still to record), unless a step of
    it failed for good."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(ImportRow)
            .outerjoin(Lead, Lead.id == ImportRow.lead_id)
            .where(
                ImportRow.import_id == import_id,
                ImportRow.status == STARTED,
                or_(
                    Lead.id.is_(None),
                    and_(
                        Lead.owner_rep_id.is_not(None),
                        Lead.notified_at.is_(None),
                        Lead.needs_attention.is_(False),
                    ),
                ),
            )
        )
        or 0
    )


def owners_of(session: Session, row: LeadImport) -> list[tuple[int, int]]:
    """(rep id, leads) for each rep who owns leads this import created: the leads of its
    started rows stored since it started. A row of a person Leadflow already knew is a
    resubmission of their lead, and does not count."""
    if row.started_at is None:
        return []
    found = session.execute(
        select(Lead.owner_rep_id, func.count())
        .select_from(ImportRow)
        .join(Lead, Lead.id == ImportRow.lead_id)
        .where(
            ImportRow.import_id == row.id,
            ImportRow.status == STARTED,
            Lead.owner_rep_id.is_not(None),
            Lead.created_at >= row.started_at,
        )
        .group_by(Lead.owner_rep_id)
        .order_by(Lead.owner_rep_id)
    ).all()
    return [(int(rep_id or 0), int(count)) for rep_id, count in found]


def finish_import(
    session: Session, import_id: str, error: str | None = None, now: datetime | None = None
) -> LeadImport:
    """The import is ``completed`` (or ``failed`` with ``error``); once: a repeated call
    changes nothing."""
    row = session.get(LeadImport, import_id, with_for_update=True)
    if row is None:
        raise LookupError(f"no import {import_id}")
    if row.status not in FINISHED:
        row.status = FAILED if error else COMPLETED
        row.error = error
        row.finished_at = now or utcnow()
        row.content = None
    return row


def rejected_rows(session: Session, import_id: str, limit: int | None = None) -> list[RejectedRow]:
    query = (
        select(ImportRow.line, ImportRow.problems)
        .where(ImportRow.import_id == import_id, ImportRow.status == REJECTED)
        .order_by(ImportRow.line)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        RejectedRow(line=line, problems=[Problem.model_validate(p) for p in problems or []])
        for line, problems in session.execute(query).all()
    ]


def progress_of(
    row: LeadImport, now: datetime | None = None, *, behind: str | None = None
) -> dict[str, Any]:
    """Where an import stands, as the progress endpoint and the terminal show it;
    ``behind``: the import a queued one waits for (``queued_behind``)."""
    now = now or utcnow()
    elapsed = 0.0
    if row.started_at is not None:
        elapsed = ((row.finished_at or now) - row.started_at).total_seconds()
    remaining = max(row.accepted - row.imported, 0)
    rate = row.imported / elapsed if elapsed > 0 and row.imported else None
    return {
        "id": row.id,
        "status": row.status,
        "queued_behind": behind if row.status == QUEUED else None,
        "done": row.status in FINISHED,
        "error": row.error,
        "rows": row.rows,
        "accepted": row.accepted,
        "imported": row.imported,
        "merged": row.merged,
        "rejected": row.rejected,
        "remaining": remaining,
        "percent": round(100 * row.imported / row.accepted, 1) if row.accepted else 100.0,
        "rate_per_s": round(rate, 2) if rate is not None else None,
        "seconds_left": (
            None
            if row.status != RUNNING
            else _rounded(seconds_left(remaining, row.imported, elapsed))
        ),
        "elapsed_s": round(elapsed, 1),
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def notified(session: Session, lead_ids: Sequence[str]) -> set[str]:
    """Which of ``lead_ids`` have an owner who has been told (``leads.notified_at``): the
    import's measure of how far the lifecycle has caught up with the rows handed over."""
    if not lead_ids:
        return set()
    return set(
        session.scalars(select(Lead.id).where(Lead.id.in_(lead_ids), Lead.notified_at.is_not(None)))
    )
