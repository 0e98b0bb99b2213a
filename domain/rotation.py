"""Who in a pool takes the next lead: eligibility, the pool's strategy and its state.

Weighted rotation is *smooth*: each eligible member earns its weight in credit per lead,
and the member who takes it gives back the total weight W of those who were eligible, so
credit / W is how many leads a member is behind its share. The lead goes to the member
whose credit would soonest reach W (a whole lead behind), among those it does not put a
whole lead ahead: earliest deadline first. (Nginx's "most credit" rule drifts further:
with weights 1:1:1:5:5:5 a weight-5 member has 2 of the first 11 leads, not 3.) Over any
run each member's share follows the weights exactly at every multiple of W, and is less
than one lead off in between (2:1:1 gives A B C A A C B A …, never A A B C). Credit is
each member's *standing*, so:

- adding or removing a member leaves everybody else's credit as it was;
- a new member joins at the pool's current level (the mean credit of the members);
- a member who is away, capped or outside working hours earns nothing meanwhile and
  rejoins exactly where it stood: no flood of catch-up leads on return, unless the pool
  opts into a bounded catch-up (``on_return``), which hands the returning member at most
  ``max_extra_per_day`` extra leads a day until it has made up its missed share.

Ties go to the member assigned least recently, then to a pick seeded by the lead, which
the decision records. ``least_loaded`` takes the member with the fewest open leads;
``named`` the first eligible member in the listed order; ``round_robin`` is weighted
rotation with every weight 1 (weight 0 still means "not in rotation").

Pure: ``pick`` takes a snapshot of the state and returns the state after; the store
commits it atomically.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Mapping
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain.config import Member, PoolConfig, RepConfig, Strategy


class SkipReason(StrEnum):
    inactive = "inactive"
    zero_weight = "zero_weight"
    away = "away"
    outside_hours = "outside_hours"
    capped = "capped"
    unknown_rep = "unknown_rep"
    # Had this lead before and let it go (the speed-to-lead SLA lapsed, or it was
    # reassigned away): not given it again.
    had_it = "had_it"


class MemberState(BaseModel):
    credit: float = 0.0
    last_assigned_at: datetime | None = None
    day: str | None = None  # the pool-timezone day the counts below are for
    day_count: int = 0
    week: str | None = None
    week_count: int = 0
    # Bounded catch-up (``on_return``): share of leads missed while away, and extras given.
    owed: float = 0.0
    extra_day: str | None = None
    extra_count: int = 0


class PoolState(BaseModel):
    """A pool's rotation state, as stored."""

    members: dict[str, MemberState] = Field(default_factory=dict)
    decisions: int = 0


class Skip(BaseModel):
    rep: str
    reason: SkipReason


class PoolPick(BaseModel):
    """The member chosen (None when nobody was eligible), why others were skipped, how a
    tie was broken, and the state before and after."""

    rep: str | None
    skipped: list[Skip] = Field(default_factory=list)
    tie_break: dict[str, object] | None = None
    catch_up: bool = False
    before: dict[str, float] = Field(default_factory=dict)
    after: dict[str, float] = Field(default_factory=dict)
    state: PoolState


def available(
    rep: RepConfig, now: datetime, away_until: Mapping[str, datetime] | None = None
) -> SkipReason | None:
    """Why ``rep`` cannot take a lead at ``now`` (away or outside working hours, in the
    rep's own timezone), or None. ``away_until``: reps who said they are away (from Slack
    or the admin app) until when, besides the configuration's time off."""
    until = (away_until or {}).get(rep.email)
    if until is not None and now < until:
        return SkipReason.away
    local = now.astimezone(ZoneInfo(rep.timezone))
    today = local.date()
    for period in rep.out_of_office:
        if period.from_ <= today <= period.until:
            return SkipReason.away
    hours = rep.working_hours
    if hours is not None:
        weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
        clock = local.time().replace(tzinfo=None)
        if weekday not in hours.days or not hours.start <= clock < hours.end:
            return SkipReason.outside_hours
    return None


def _periods(pool: PoolConfig, now: datetime) -> tuple[str, str]:
    local = now.astimezone(ZoneInfo(pool.timezone))
    year, week, _ = local.isocalendar()
    return local.date().isoformat(), f"{year}-W{week:02d}"


def _weight(pool: PoolConfig, member: Member) -> int:
    if member.weight == 0:
        return 0
    return 1 if pool.strategy is Strategy.round_robin else member.weight


def _with_members(pool: PoolConfig, state: PoolState) -> PoolState:
    """The state for the pool's current members: departed members dropped (nobody else's
    credit changes), new members at the pool's current level."""
    current = {m.rep for m in pool.members}
    kept = {rep: s.model_copy() for rep, s in state.members.items() if rep in current}
    level = sum(s.credit for s in kept.values()) / len(kept) if kept else 0.0
    for member in pool.members:
        kept.setdefault(member.rep, MemberState(credit=level))
    return PoolState(members=kept, decisions=state.decisions)


def pick(
    pool: PoolConfig,
    reps: dict[str, RepConfig],
    state: PoolState,
    now: datetime,
    *,
    seed: str,
    open_leads: dict[str, int] | None = None,
    exclude: Collection[str] = (),
    away_until: Mapping[str, datetime] | None = None,
) -> PoolPick:
    """Choose the member who takes the next lead of ``pool`` at ``now``, never one of
    ``exclude`` (rep emails)."""
    state = _with_members(pool, state)
    day, week = _periods(pool, now)
    skipped: list[Skip] = []
    eligible: list[tuple[Member, int]] = []
    away: list[tuple[Member, int]] = []
    for member in pool.members:
        ms = state.members[member.rep]
        if ms.day != day:
            ms.day, ms.day_count = day, 0
        if ms.week != week:
            ms.week, ms.week_count = week, 0
        rep = reps.get(member.rep)
        weight = _weight(pool, member)
        reason: SkipReason | None
        if rep is None:
            reason = SkipReason.unknown_rep
        elif member.rep in exclude:
            reason = SkipReason.had_it
        elif not rep.active:
            reason = SkipReason.inactive
        elif weight == 0:
            reason = SkipReason.zero_weight
        else:
            reason = available(rep, now, away_until)
            if reason is None and (
                (member.daily_cap is not None and ms.day_count >= member.daily_cap)
                or (member.weekly_cap is not None and ms.week_count >= member.weekly_cap)
            ):
                reason = SkipReason.capped
        if reason is None:
            eligible.append((member, weight))
        else:
            skipped.append(Skip(rep=member.rep, reason=reason))
            if reason is SkipReason.away and weight > 0:
                away.append((member, weight))
    before = {rep: round(s.credit, 6) for rep, s in state.members.items()}
    if not eligible:
        return PoolPick(rep=None, skipped=skipped, before=before, after=before, state=state)

    chosen, tie_break, catch_up = _choose(pool, state, eligible, now, seed, open_leads or {})
    total = sum(w for _, w in eligible)
    if pool.strategy in (Strategy.round_robin, Strategy.weighted) and not catch_up:
        for member, weight in eligible:
            state.members[member.rep].credit += weight
        state.members[chosen].credit -= total
    if pool.on_return.catch_up:
        for member, weight in away:
            state.members[member.rep].owed += weight / total
    ms = state.members[chosen]
    ms.last_assigned_at = now
    ms.day_count += 1
    ms.week_count += 1
    if catch_up:
        ms.owed = max(0.0, ms.owed - 1)
        if ms.extra_day != day:
            ms.extra_day, ms.extra_count = day, 0
        ms.extra_count += 1
    state.decisions += 1
    after = {rep: round(s.credit, 6) for rep, s in state.members.items()}
    return PoolPick(
        rep=chosen,
        skipped=skipped,
        tie_break=tie_break,
        catch_up=catch_up,
        before=before,
        after=after,
        state=state,
    )


def _choose(
    pool: PoolConfig,
    state: PoolState,
    eligible: list[tuple[Member, int]],
    now: datetime,
    seed: str,
    open_leads: dict[str, int],
) -> tuple[str, dict[str, object] | None, bool]:
    """The chosen member, the tie-break used (if any), and whether it is a catch-up."""
    if pool.on_return.catch_up:
        day = now.astimezone(ZoneInfo(pool.timezone)).date().isoformat()
        owed = [
            m.rep
            for m, _ in eligible
            if state.members[m.rep].owed >= 1
            and (
                state.members[m.rep].extra_day != day
                or state.members[m.rep].extra_count < pool.on_return.max_extra_per_day
            )
        ]
        if owed and pool.on_return.max_extra_per_day > 0:
            best = max(owed, key=lambda rep: state.members[rep].owed)
            return best, {"catch_up_owed": round(state.members[best].owed, 3)}, True
    if pool.strategy is Strategy.named:
        return eligible[0][0].rep, None, False
    if pool.strategy is Strategy.least_loaded:
        scores = {m.rep: -float(open_leads.get(m.rep, 0)) for m, _ in eligible}
    else:
        scores = _deadlines(state, eligible)
    top = max(scores.values())
    tied = [rep for rep, score in scores.items() if abs(score - top) < 1e-9]
    if len(tied) == 1:
        return tied[0], None, False
    oldest = min(_last(state, rep) for rep in tied)
    least_recent = [rep for rep in tied if _last(state, rep) == oldest]
    if len(least_recent) == 1:
        return least_recent[0], {"tied": sorted(tied), "by": "least recently assigned"}, False
    rng = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))
    chosen = rng.choice(sorted(least_recent))
    return chosen, {"tied": sorted(least_recent), "by": "seeded random", "seed": seed}, False


def _deadlines(state: PoolState, eligible: list[tuple[Member, int]]) -> dict[str, float]:
    """Weighted rotation's scores, highest first: minus the leads until each member's
    credit reaches the total weight, for the members whom this lead would not put a
    whole lead ahead (credit after it above minus the total); the most credit when it
    would put everybody ahead (after members came back, or left, with credit)."""
    total = sum(w for _, w in eligible)
    credit = {m.rep: state.members[m.rep].credit + w for m, w in eligible}
    if all(c <= 0 for c in credit.values()):
        return credit
    return {m.rep: (credit[m.rep] - total) / w for m, w in eligible if credit[m.rep] > 0}


def _last(state: PoolState, rep: str) -> float:
    at = state.members[rep].last_assigned_at
    return at.timestamp() if at is not None else float("-inf")
