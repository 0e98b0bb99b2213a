"""The weekly leaderboard: results and the behaviours that lead to them, per rep.

Pure: computed from a period's lifecycle events (``store.leaderboard`` reads them), the
same figures wherever they are shown (the wins channel's weekly post, the dashboard).

Points reward behaviours, not only results (LIFECYCLE.md): a lead contacted 1, a meeting
booked 3, a lead qualified 2, a proposal sent 3, a deal won 10. Ranked by points, then
deals won, then the faster median follow-up."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from statistics import median

from pydantic import BaseModel, Field

POINTS = {"contacted": 1, "meeting_booked": 3, "qualified": 2, "proposal_sent": 3, "won": 10}


class Activity(BaseModel):
    """One thing a rep did in the period: an event of ``POINTS``'s kinds on one of their
    leads. ``follow_up_s`` for ``contacted``: seconds from the lead's assignment."""

    rep_email: str
    rep_name: str
    kind: str
    at: datetime
    amount: Decimal | None = None
    currency: str | None = None
    follow_up_s: float | None = None


class LeaderRow(BaseModel):
    rank: int
    rep_email: str
    rep_name: str
    points: int
    deals_won: int
    revenue: dict[str, Decimal] = Field(default_factory=dict)  # per currency
    meetings_booked: int
    median_follow_up_s: float | None = None
    contacted: int


def leaderboard(activities: list[Activity]) -> list[LeaderRow]:
    """The reps with any activity, best first."""
    by_rep: dict[str, list[Activity]] = defaultdict(list)
    for activity in activities:
        if activity.kind in POINTS:
            by_rep[activity.rep_email].append(activity)
    rows = []
    for email, done in by_rep.items():
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for won in (a for a in done if a.kind == "won" and a.amount is not None):
            revenue[(won.currency or "USD").upper()] += won.amount or Decimal(0)
        follow_ups = [a.follow_up_s for a in done if a.follow_up_s is not None]
        rows.append(
            LeaderRow(
                rank=0,
                rep_email=email,
                rep_name=done[0].rep_name,
                points=sum(POINTS[a.kind] for a in done),
                deals_won=sum(1 for a in done if a.kind == "won"),
                revenue=dict(revenue),
                meetings_booked=sum(1 for a in done if a.kind == "meeting_booked"),
                median_follow_up_s=median(follow_ups) if follow_ups else None,
                contacted=sum(1 for a in done if a.kind == "contacted"),
            )
        )
    rows.sort(
        key=lambda r: (
            -r.points,
            -r.deals_won,
            r.median_follow_up_s if r.median_follow_up_s is not None else float("inf"),
            r.rep_name,
        )
    )
    for index, row in enumerate(rows, start=1):
        row.rank = index
    return rows


def fastest_follow_up(rows: list[LeaderRow]) -> LeaderRow | None:
    """The rep with the fastest median follow-up."""
    timed = [r for r in rows if r.median_follow_up_s is not None]
    return min(timed, key=lambda r: r.median_follow_up_s or 0.0) if timed else None
