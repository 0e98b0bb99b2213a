"""The weekly leaderboard: results and the behaviours that lead to them, per rep.

Pure: computed from what the reps did in a period (``store.leaderboard.tallies`` adds it
up in the database; ``leaderboard`` ranks a list of single activities the same way), the
same figures wherever they are shown (the wins channel's weekly post, the KPI page).

Points reward behaviours, not only results (LIFECYCLE.md): a lead contacted 1, a meeting
booked 3, a lead qualified 2, a proposal sent 3, a deal won 10. Ranked by points, then
deals won, then the faster median follow-up."""

from __future__ import annotations

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
    at: datetime | None = None  # when it happened (not needed by the ranking)
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


class RepTally(BaseModel):
    """What one rep did in the period, added up: how many of each kind, revenue per
    currency, and the follow-up seconds of each contact."""

    rep_email: str
    rep_name: str
    counts: dict[str, int] = Field(default_factory=dict)  # kind → how many
    revenue: dict[str, Decimal] = Field(default_factory=dict)  # per currency (upper case)
    follow_ups: list[float] = Field(default_factory=list)


def tally(activities: list[Activity]) -> list[RepTally]:
    """The activities added up per rep (kinds outside ``POINTS`` left out)."""
    by_rep: dict[str, RepTally] = {}
    for activity in activities:
        if activity.kind not in POINTS:
            continue
        rep = by_rep.get(activity.rep_email)
        if rep is None:
            rep = by_rep[activity.rep_email] = RepTally(
                rep_email=activity.rep_email, rep_name=activity.rep_name
            )
        rep.counts[activity.kind] = rep.counts.get(activity.kind, 0) + 1
        if activity.kind == "won" and activity.amount is not None:
            currency = (activity.currency or "USD").upper()
            rep.revenue[currency] = rep.revenue.get(currency, Decimal(0)) + activity.amount
        if activity.follow_up_s is not None:
            rep.follow_ups.append(activity.follow_up_s)
    return list(by_rep.values())


def leaderboard(activities: list[Activity]) -> list[LeaderRow]:
    """The reps with any activity, best first."""
    return rank(tally(activities))


def rank(tallies: list[RepTally]) -> list[LeaderRow]:
    """The reps with anything counted, best first."""
    rows = [
        LeaderRow(
            rank=0,
            rep_email=t.rep_email,
            rep_name=t.rep_name,
            points=sum(POINTS[kind] * n for kind, n in t.counts.items() if kind in POINTS),
            deals_won=t.counts.get("won", 0),
            revenue=dict(t.revenue),
            meetings_booked=t.counts.get("meeting_booked", 0),
            median_follow_up_s=median(t.follow_ups) if t.follow_ups else None,
            contacted=t.counts.get("contacted", 0),
        )
        for t in tallies
        if any(t.counts.get(kind) for kind in POINTS)
    ]
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
