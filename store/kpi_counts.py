"""Counting the leads' KPI facts (``domain.kpi_facts``) in cells, for ``store.kpis``.

A cell is the leads of one owner (and, as asked, of one pool, source, territory and time
bucket) in the period. Two queries fill the cells, whatever the groupings asked for: one
aggregate (counts and sums per cell) and one that reads the durations the medians need
(one row of plain numbers per contacted or closed lead). Every grouping of a report is
then the cells added up, so a page showing the figures per rep, per week and per source
reads the leads once; keeping the owner in every cell counts each group's reps exactly.

Both queries read only the ``ix_leads_kpis`` covering index. ``week_cells`` counts the
same facts for ``store.kpi_rollup``'s weekly rollup, keeping what depends on the time of
the report (an uncontacted lead's SLA, missed only once its deadline passes) apart, and
``rollup_cell`` turns such a row back into a report's cell; ``milestone_cells`` counts
the leaderboard's milestones of a time range (``store.leaderboard``).
"""

from __future__ import annotations

import gc
import sys
import threading
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from domain.kpis import Totals
from store import leads as lead_store
from store.models import Lead

# The slices a cell may be keyed by besides its owner (``rep`` is the owner).
SLICES = {"pool": Lead.pool, "source": Lead.source, "territory": Lead.territory}

# Per cell, in this order: what the aggregate query sums.
_LEADS, _MET, _MISSED, _MEETINGS, _QUALIFIED, _PROPOSALS = range(6)
_WON, _LOST, _REVENUE_MINOR, _OTHER_CURRENCY, _REP_EVENTS = range(6, 11)
_COUNTS = 11
LEADS, MISSED = _LEADS, _MISSED  # the positions other modules read

CellKey = tuple[Any, ...]  # (owner rep id, *slice values, time bucket if any)


@dataclass(slots=True)
class Cell:
    counts: list[int] = field(default_factory=lambda: [0] * _COUNTS)
    follow_up_s: list[float] = field(default_factory=list)
    cycle_days: list[float] = field(default_factory=list)
    first_contact_days: list[float] = field(default_factory=list)
    # More of the three durations, as rollup rows keep them (``pack``): unpacked only
    # once per group, joined, by ``totals_of_cells``.
    packed: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)


def pack(values: Iterable[float]) -> bytes:
    """float64 values, little-endian whatever the machine (``unpack`` reads them)."""
    packed = array("d", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack(blob: bytes | None) -> list[float]:
    if not blob:
        return []
    packed = array("d")
    packed.frombytes(blob)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()


def count_cells(
    session: Session,
    scope: list[ColumnElement[bool]],
    keys: list[ColumnElement[Any]],
    *,
    currency: str,
    now: datetime,
) -> dict[CellKey, Cell]:
    """The cells of the leads in ``scope``, keyed by their owner then ``keys``."""
    in_currency = or_(Lead.currency.is_(None), Lead.currency == currency)
    won = Lead.won_at.is_not(None)
    sums = _stage_sums()
    sums[_MISSED] = func.sum(case((missed(now), 1), else_=0))
    sums[_REVENUE_MINOR] = func.sum(
        case((and_(won, in_currency), func.coalesce(Lead.won_amount_minor, 0)))
    )
    sums[_OTHER_CURRENCY] = func.sum(case((and_(won, ~in_currency), 1), else_=0))
    return _cells(session, scope, [Lead.owner_rep_id.expression, *keys], sums)


def _stage_sums() -> list[ColumnElement[Any]]:
    """What every cell sums, in the order of the counts (``_MISSED``, ``_REVENUE_MINOR``
    and ``_OTHER_CURRENCY`` left for the caller, as they depend on the report)."""
    won = Lead.won_at.is_not(None)
    lost = and_(Lead.won_at.is_(None), Lead.lost_at.is_not(None))
    met = and_(
        Lead.sla_due_at.is_not(None),
        Lead.first_contacted_at.is_not(None),
        Lead.first_contacted_at <= Lead.sla_due_at,
    )
    # A later stage implies the earlier ones (a deal won without a recorded proposal
    # still passed through one), as ``domain.kpis.totals_of`` counts them.
    reached_proposal = or_(won, Lead.proposal_at.is_not(None))
    reached_qualified = or_(reached_proposal, Lead.qualified_at.is_not(None))
    reached_meeting = or_(reached_qualified, Lead.meeting_at.is_not(None))
    sums: list[ColumnElement[Any]] = [func.count()] * _COUNTS
    sums[_MET] = func.sum(case((met, 1), else_=0))
    sums[_MEETINGS] = func.sum(case((reached_meeting, 1), else_=0))
    sums[_QUALIFIED] = func.sum(case((reached_qualified, 1), else_=0))
    sums[_PROPOSALS] = func.sum(case((reached_proposal, 1), else_=0))
    sums[_WON] = func.sum(case((won, 1), else_=0))
    sums[_LOST] = func.sum(case((lost, 1), else_=0))
    sums[_REP_EVENTS] = func.sum(Lead.rep_events)
    return sums


def _cells(
    session: Session,
    scope: list[ColumnElement[bool]],
    key_cols: list[ColumnElement[Any]],
    sums: list[ColumnElement[Any]],
) -> dict[CellKey, Cell]:
    width = len(key_cols)
    # Core execution, rows read from the driver's cursor: these are plain numbers, and
    # building a SQLAlchemy row for each would cost more than the queries themselves.
    conn = session.connection()
    counts = conn.execute(select(*key_cols, *sums).where(*scope).group_by(*key_cols))
    cells: dict[CellKey, Cell] = {}
    for row in plain_rows(counts):
        cells[tuple(row[:width])] = Cell(counts=[int(v or 0) for v in row[width:]])
    durations = conn.execute(
        select(*key_cols, Lead.follow_up_s, Lead.cycle_s).where(
            *scope, or_(Lead.follow_up_s.is_not(None), Lead.cycle_s.is_not(None))
        )
    )
    for row in plain_rows(durations):
        # A lead written between the two reads (PostgreSQL reads each statement's
        # committed rows) gets a cell of its own rather than failing the report.
        key = tuple(row[:width])
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Cell()
        follow_up, cycle = row[width], row[width + 1]
        if follow_up is not None:
            cell.follow_up_s.append(follow_up if follow_up > 0 else 0.0)
        if cycle is not None:
            cell.cycle_days.append(cycle / 86400 if cycle > 0 else 0.0)
            if follow_up is not None:
                cell.first_contact_days.append(follow_up / 86400 if follow_up > 0 else 0.0)
    return cells


# ----------------------------------------------------------------- the weekly rollup

# A rollup row's cell (``week_cells``) keeps, where a report's has _MISSED, _REVENUE_MINOR
# and _OTHER_CURRENCY, the leads contacted late, those not contacted that have a
# deadline, and the amounts of the won deals without a currency; then two more counts:
# the won deals in the row's currency and their amounts.
_LATE, _OPEN, _WON_MINOR = _MISSED, _REVENUE_MINOR, _OTHER_CURRENCY
_IN_CURRENCY, _IN_CURRENCY_MINOR = _COUNTS, _COUNTS + 1
ROLLUP_COUNTS = _COUNTS + 2


def week_cells(session: Session, scope: list[ColumnElement[bool]]) -> dict[CellKey, Cell]:
    """The rollup's cells of the leads in ``scope``, keyed by (owner, pool, source,
    currency): what ``count_cells`` counts, but nothing that depends on the time of the
    report (``rollup_cell`` adds that). Only won deals have a currency here, and a row
    holds the deals of one currency (the first row of its slice also every lead without
    one), so an installation with one currency has one row per owner, pool and source."""
    won = Lead.won_at.is_not(None)
    keys: list[ColumnElement[Any]] = [
        Lead.owner_rep_id.expression,
        Lead.pool.expression,
        Lead.source.expression,
        case((won, Lead.currency)),
    ]
    sums = _stage_sums()
    due, contacted = Lead.sla_due_at.is_not(None), Lead.first_contacted_at.is_not(None)
    sums[_LATE] = func.sum(
        case((and_(due, contacted, Lead.first_contacted_at > Lead.sla_due_at), 1), else_=0)
    )
    sums[_OPEN] = func.sum(case((and_(due, ~contacted), 1), else_=0))
    sums[_WON_MINOR] = func.sum(case((won, func.coalesce(Lead.won_amount_minor, 0)), else_=0))
    return _fold_currencies(_cells(session, scope, keys, sums))


def _fold_currencies(cells: dict[CellKey, Cell]) -> dict[CellKey, Cell]:
    """Per (owner, pool, source): the leads without a won currency joined to the row of
    its first currency; each currency's won deals and amounts in its own two counts."""
    slices: dict[CellKey, dict[str | None, Cell]] = {}
    for key, cell in cells.items():
        slices.setdefault(key[:-1], {})[key[-1]] = cell
    out: dict[CellKey, Cell] = {}
    for key, parts in slices.items():
        plain = parts.pop(None, None)
        named = sorted(parts.items())
        if plain is not None:
            plain.counts += [0, 0]
            if not named:
                out[(*key, None)] = plain
        for index, (currency, cell) in enumerate(named):
            cell.counts += [cell.counts[_WON], cell.counts[_WON_MINOR]]
            cell.counts[_WON_MINOR] = 0
            if index == 0 and plain is not None:
                cell.counts = [a + b for a, b in zip(cell.counts, plain.counts, strict=True)]
                cell.follow_up_s += plain.follow_up_s
                cell.cycle_days += plain.cycle_days
                cell.first_contact_days += plain.first_contact_days
            out[(*key, currency)] = cell
    return out


def rollup_cell(
    counts: list[int],
    deal_currency: str | None,
    *,
    currency: str,
    open_ahead: int,
    packed: tuple[bytes, bytes, bytes],
) -> Cell:
    """A report's cell from a rollup row (counted by ``week_cells``; ``deal_currency`` is
    the row's); ``open_ahead`` of its leads are not contacted and their deadline has
    not passed yet (so they have not missed it)."""
    out = counts[:_COUNTS]
    in_currency = deal_currency is not None and deal_currency == currency
    out[_MISSED] = counts[_LATE] + counts[_OPEN] - open_ahead
    out[_REVENUE_MINOR] = counts[_WON_MINOR] + (counts[_IN_CURRENCY_MINOR] if in_currency else 0)
    out[_OTHER_CURRENCY] = 0 if in_currency else counts[_IN_CURRENCY]
    return Cell(counts=out, packed=[packed] if any(packed) else [])


# ---------------------------------------------------------------- the leaderboard's

# Milestone → the lead's column holding the first time it was reached.
MILESTONE_COLUMNS = {
    "contacted": Lead.first_contacted_at,
    "meeting_booked": Lead.meeting_at,
    "qualified": Lead.qualified_at,
    "proposal_sent": Lead.proposal_at,
    "won": Lead.won_at,
}
MilestoneKey = tuple[int, str, str | None]  # (owner rep id, milestone, currency of a win)


@dataclass(slots=True)
class MilestoneCell:
    count: int = 0
    amount_minor: int | None = None  # won: the amounts' sum (None when none is known)
    follow_ups: list[float] = field(default_factory=list)  # contacted: from assignment


def milestone_cells(
    session: Session, start: datetime, end: datetime
) -> dict[MilestoneKey, MilestoneCell]:
    """Per owner, the leads whose milestones were first reached in [start, end): one
    small query per milestone, each a range of its own partial index; wins per currency
    with their amounts; contacts with the seconds since the lead first had an owner."""
    conn = session.connection()
    out: dict[MilestoneKey, MilestoneCell] = {}
    owned = Lead.owner_rep_id.is_not(None)
    for kind, column in MILESTONE_COLUMNS.items():
        within = [column >= start, column < end, owned]
        if kind == "won":
            rows = conn.execute(
                select(
                    Lead.owner_rep_id, Lead.currency, func.count(), func.sum(Lead.won_amount_minor)
                )
                .where(*within)
                .group_by(Lead.owner_rep_id, Lead.currency)
            )
            for rep_id, currency, n, minor in rows:
                if n:
                    amount = None if minor is None else int(minor)
                    out[(int(rep_id or 0), kind, currency)] = MilestoneCell(int(n), amount)
            continue
        counts = conn.execute(
            select(Lead.owner_rep_id, func.count()).where(*within).group_by(Lead.owner_rep_id)
        )
        for rep_id, n in counts:
            if n:
                out[(int(rep_id or 0), kind, None)] = MilestoneCell(int(n))
    waited = lead_store.seconds_between(session, Lead.first_assigned_at, Lead.first_contacted_at)
    follow_ups = conn.execute(
        select(Lead.owner_rep_id, waited).where(
            owned,
            Lead.first_assigned_at.is_not(None),
            Lead.first_contacted_at >= start,
            Lead.first_contacted_at < end,
        )
    )
    for rep_id, seconds in follow_ups:
        cell = out.setdefault((int(rep_id or 0), "contacted", None), MilestoneCell())
        cell.follow_ups.append(max(0.0, float(seconds)))
    return out


def totals_of_cell(cell: Cell, reps: int, *, durations: bool = True) -> Totals:
    """The totals of a group's cell (``store.kpi_cells.Group``) with ``reps`` owners.
    Without ``durations``, the lists of durations are left empty."""
    counts = cell.counts

    def joined(values: list[float], at: int) -> list[float]:
        if not durations:
            return []
        if not cell.packed:
            return list(values)
        return [*values, *unpack(b"".join(p[at] for p in cell.packed))]

    # Constructed, not validated: every value is already what the model holds, and the
    # lists may hold a year of durations.
    return Totals.model_construct(
        leads=counts[_LEADS],
        sla_met=counts[_MET],
        sla_missed=counts[_MISSED],
        meetings=counts[_MEETINGS],
        qualified=counts[_QUALIFIED],
        proposals=counts[_PROPOSALS],
        won=counts[_WON],
        lost=counts[_LOST],
        revenue=Decimal(counts[_REVENUE_MINOR]) / 100,
        other_currency_won=counts[_OTHER_CURRENCY],
        rep_events=counts[_REP_EVENTS],
        follow_up_s=joined(cell.follow_up_s, 0),
        cycle_days=joined(cell.cycle_days, 1),
        first_contact_days=joined(cell.first_contact_days, 2),
        reps=reps,
    )


def missed(now: datetime) -> ColumnElement[bool]:
    """The lead's speed-to-lead SLA was missed: contacted after its deadline, or not
    contacted and the deadline has passed."""
    return and_(
        Lead.sla_due_at.is_not(None),
        or_(
            and_(Lead.first_contacted_at.is_not(None), Lead.first_contacted_at > Lead.sla_due_at),
            and_(Lead.first_contacted_at.is_(None), Lead.sla_due_at < now),
        ),
    )


def plain_rows(result: Any) -> list[tuple[Any, ...]]:
    """A Core result's rows as the driver gives them (plain tuples), the result closed."""
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return list(rows)


_pauses = 0
_pauses_lock = threading.Lock()


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a report (or the leaderboard) is computed: a
    year's report builds some hundred thousand short-lived objects (rows, cells, lists of
    durations), none in a cycle, and the collections they would trigger walk every
    object of the process (a web process holds many), costing more than the report."""
    global _pauses
    with _pauses_lock:
        _pauses += 1
        if _pauses == 1:
            gc.disable()
    try:
        yield
    finally:
        with _pauses_lock:
            _pauses -= 1
            if _pauses == 0:
                gc.enable()
