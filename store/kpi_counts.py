"""Counting the leads' KPI facts (``domain.kpi_facts``) in cells, for ``store.kpis``.

A cell is the leads of one owner (and, as asked, of one pool, source, territory and time
bucket) in the period. Two queries fill the cells, whatever the groupings asked for: one
aggregate (counts and sums per cell) and one that reads the durations the medians need
(one row of plain numbers per contacted or closed lead). Every grouping of a report is
then the cells added up, so a page showing the figures per rep, per week and per source
reads the leads once; keeping the owner in every cell counts each group's reps exactly.

Both queries read only the ``ix_leads_kpis`` covering index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from domain.kpis import Totals
from store.models import Lead

# The slices a cell may be keyed by besides its owner (``rep`` is the owner).
SLICES = {"pool": Lead.pool, "source": Lead.source, "territory": Lead.territory}

# Per cell, in this order: what the aggregate query sums.
_LEADS, _MET, _MISSED, _MEETINGS, _QUALIFIED, _PROPOSALS = range(6)
_WON, _LOST, _REVENUE_MINOR, _OTHER_CURRENCY, _REP_EVENTS = range(6, 11)
_COUNTS = 11

CellKey = tuple[Any, ...]  # (owner rep id, *slice values, time bucket if any)


@dataclass(slots=True)
class Cell:
    counts: list[int] = field(default_factory=lambda: [0] * _COUNTS)
    follow_up_s: list[float] = field(default_factory=list)
    cycle_days: list[float] = field(default_factory=list)
    first_contact_days: list[float] = field(default_factory=list)


def count_cells(
    session: Session,
    scope: list[ColumnElement[bool]],
    keys: list[ColumnElement[Any]],
    *,
    currency: str,
    now: datetime,
) -> dict[CellKey, Cell]:
    """The cells of the leads in ``scope``, keyed by their owner then ``keys``."""
    key_cols = [Lead.owner_rep_id, *keys]
    in_currency = or_(Lead.currency.is_(None), Lead.currency == currency)
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
    width = len(key_cols)
    # Core execution, rows read from the driver's cursor: these are plain numbers, and
    # building a SQLAlchemy row for each would cost more than the queries themselves.
    conn = session.connection()
    counts = conn.execute(
        select(
            *key_cols,
            func.count(),
            func.sum(case((met, 1), else_=0)),
            func.sum(case((missed(now), 1), else_=0)),
            func.sum(case((reached_meeting, 1), else_=0)),
            func.sum(case((reached_qualified, 1), else_=0)),
            func.sum(case((reached_proposal, 1), else_=0)),
            func.sum(case((won, 1), else_=0)),
            func.sum(case((lost, 1), else_=0)),
            func.sum(case((and_(won, in_currency), func.coalesce(Lead.won_amount_minor, 0)))),
            func.sum(case((and_(won, ~in_currency), 1), else_=0)),
            func.sum(Lead.rep_events),
        )
        .where(*scope)
        .group_by(*key_cols)
    )
    cells: dict[CellKey, Cell] = {}
    for row in _rows(counts):
        cells[tuple(row[:width])] = Cell(counts=[int(v or 0) for v in row[width:]])
    durations = conn.execute(
        select(*key_cols, Lead.follow_up_s, Lead.cycle_s).where(
            *scope, or_(Lead.follow_up_s.is_not(None), Lead.cycle_s.is_not(None))
        )
    )
    for row in _rows(durations):
        cell = cells[tuple(row[:width])]
        follow_up, cycle = row[width], row[width + 1]
        if follow_up is not None:
            cell.follow_up_s.append(follow_up if follow_up > 0 else 0.0)
        if cycle is not None:
            cell.cycle_days.append(cycle / 86400 if cycle > 0 else 0.0)
            if follow_up is not None:
                cell.first_contact_days.append(follow_up / 86400 if follow_up > 0 else 0.0)
    return cells


def totals_of_cells(cells: Iterable[tuple[CellKey, Cell]]) -> Totals:
    """The cells added up; reps are the distinct owners among them."""
    sums = [0] * _COUNTS
    follow_up: list[float] = []
    cycle: list[float] = []
    first_contact: list[float] = []
    owners = set()
    for key, cell in cells:
        for i, value in enumerate(cell.counts):
            sums[i] += value
        follow_up += cell.follow_up_s
        cycle += cell.cycle_days
        first_contact += cell.first_contact_days
        if key[0] is not None and cell.counts[_LEADS]:
            owners.add(key[0])
    return Totals(
        leads=sums[_LEADS],
        sla_met=sums[_MET],
        sla_missed=sums[_MISSED],
        meetings=sums[_MEETINGS],
        qualified=sums[_QUALIFIED],
        proposals=sums[_PROPOSALS],
        won=sums[_WON],
        lost=sums[_LOST],
        revenue=Decimal(sums[_REVENUE_MINOR]) / 100,
        other_currency_won=sums[_OTHER_CURRENCY],
        rep_events=sums[_REP_EVENTS],
        follow_up_s=follow_up,
        cycle_days=cycle,
        first_contact_days=first_contact,
        reps=len(owners),
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


def _rows(result: Any) -> list[tuple[Any, ...]]:
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return list(rows)
