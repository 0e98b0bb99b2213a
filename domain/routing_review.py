"""Routing in hindsight: who would have got leads already decided under another
configuration (``replay``), and how a pool shared its leads (``fairness``).

Both read the decisions recorded with the leads (``RecordedLead``: the decision as stored,
and the facts it was taken on) as plain data, as a replay reads thousands. Pure: the
caller reads the records; nothing here stores anything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from domain.config import Member, PoolConfig, RepConfig, Strategy
from domain.rotation import MemberState, PoolState, SkipReason
from domain.routing import Router, RoutingSnapshot
from domain.rules import Facts

# The reasons a member is skipped that fairness always reports (zero when none).
REASONS = tuple(r.value for r in SkipReason if r is not SkipReason.unknown_rep)


@dataclass(frozen=True)
class RecordedLead:
    """A lead's routing as recorded: its decision (``RoutingDecision`` as stored) and
    facts, at its decision time."""

    lead_id: str
    at: datetime
    decision: dict[str, Any]
    facts: Facts

    def explained(self, part: str) -> dict[str, Any]:
        """A part of the decision's explanation (``pool``, ``account``), or {}."""
        return _mapping(_mapping(self.decision.get("explanation")).get(part))


class RepRef(BaseModel):
    name: str
    email: str


class Outcome(BaseModel):
    rep: RepRef | None
    rule: str
    pool: str | None
    queue: str | None = None


class ActualOutcome(Outcome):
    config_version: int | None


class ReplayedLead(BaseModel):
    lead_id: str
    at: datetime
    actual: ActualOutcome
    draft: Outcome
    changed: bool


class RepTotal(BaseModel):
    rep: RepRef | None = Field(description="null: no rep (queued or unassigned)")
    before: int
    after: int


class Replay(BaseModel):
    leads: list[ReplayedLead] = Field(description="oldest first, the order replayed")
    changed: int
    totals: list[RepTotal]


class MemberFairness(BaseModel):
    rep: str
    name: str | None
    weight: int
    in_rotation: bool
    expected_share: float | None = Field(description="null for named and least_loaded pools")
    actual_count: int
    actual_share: float | None
    drift_points: float | None = Field(description="actual minus expected share, in points")
    skipped: dict[str, int]


class PoolFairness(BaseModel):
    pool: str
    strategy: str
    decisions: int = Field(description="leads whose decision names the pool")
    rotated: int = Field(description="of which a member took by rotation")
    fallback: int = Field(description="of which the pool's fallback took (nobody eligible)")
    members: list[MemberFairness]


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def actual_outcome(decision: dict[str, Any]) -> ActualOutcome | None:
    """Who got the lead and by which rule, from a stored decision (None: not a decision
    of this engine)."""
    owner = _mapping(decision.get("owner"))
    email = owner.get("email") or decision.get("rep")
    try:
        return ActualOutcome(
            rep=RepRef(name=owner.get("name") or email, email=email) if email else None,
            rule=decision.get("rule"),
            pool=decision.get("pool"),
            queue=decision.get("queue"),
            config_version=decision.get("config_version"),
        )
    except ValidationError:
        return None


def starting_states(router: Router, records: list[RecordedLead]) -> dict[str, PoolState]:
    """Each of the router's pools as it stood before the first of ``records`` (oldest
    first), as far as the decisions recorded it: the earliest credits recorded for a pool
    of its name (a pool with none recorded starts fresh).

    Decisions record credits, not when each member last took a lead, which breaks ties.
    That order is taken from the records: a tie goes to the member assigned least
    recently, so the members who take their first lead of the pool earliest in the
    records had waited longest; members who take none had taken one last."""
    states: dict[str, PoolState] = {}
    first_takers: dict[str, list[str]] = {}
    for record in records:
        pool = record.explained("pool")
        name, before = pool.get("name"), pool.get("state_before")
        if name in router.pools and name not in states and isinstance(before, dict):
            states[name] = PoolState(
                members={
                    rep: MemberState(credit=float(credit))
                    for rep, credit in before.items()
                    if isinstance(credit, int | float)
                }
            )
        rep = record.decision.get("rep")
        if isinstance(name, str) and isinstance(rep, str) and not record.decision.get("fallback"):
            takers = first_takers.setdefault(name, [])
            if rep not in takers:
                takers.append(rep)
    if records:
        start = records[0].at
        for name, state in states.items():
            takers = first_takers.get(name, [])
            for rep, member in state.members.items():
                waited = len(takers) + 1 - takers.index(rep) if rep in takers else 1
                member.last_assigned_at = start - timedelta(seconds=waited)
    return states


def replay(router: Router, records: list[RecordedLead], open_leads: dict[str, int]) -> Replay:
    """Each lead of ``records`` (oldest first) routed by ``router`` at its own decision
    time, the pools' rotation carried from lead to lead from ``starting_states``, next to
    who got it then. The account owner is the one the decision recorded, if any."""
    states = starting_states(router, records)
    leads: list[ReplayedLead] = []
    reps: dict[str | None, RepRef | None] = {None: None}
    before: Counter[str | None] = Counter()
    after: Counter[str | None] = Counter()
    for record in records:
        actual = actual_outcome(record.decision)
        if actual is None:
            continue
        account = record.explained("account")
        snapshot = RoutingSnapshot(
            pools=states,
            open_leads=open_leads,
            account_owner=account.get("owner"),
            account=account.get("name"),
        )
        routed = router.route(record.facts, snapshot, record.at, seed=record.lead_id)
        if routed.pool is not None and routed.state is not None:
            states[routed.pool] = routed.state
        now = routed.decision
        rep = router.reps.get(now.rep) if now.rep is not None else None
        draft = Outcome(
            rep=RepRef(name=rep.name, email=rep.email) if rep is not None else None,
            rule=now.rule,
            pool=now.pool,
            queue=now.queue,
        )
        was = actual.rep.email if actual.rep else None
        will = draft.rep.email if draft.rep else None
        reps.setdefault(was, actual.rep)
        reps.setdefault(will, draft.rep)
        before[was] += 1
        after[will] += 1
        changed = (was, actual.queue) != (will, draft.queue)
        leads.append(
            ReplayedLead(
                lead_id=record.lead_id, at=record.at, actual=actual, draft=draft, changed=changed
            )
        )
    keys = sorted(set(before) | set(after), key=lambda k: (k is None, k or ""))
    return Replay(
        leads=leads,
        changed=sum(lead.changed for lead in leads),
        totals=[RepTotal(rep=reps[k], before=before[k], after=after[k]) for k in keys],
    )


def fairness(pool: PoolConfig, reps: list[RepConfig], records: list[RecordedLead]) -> PoolFairness:
    """How ``pool`` shared the leads of ``records`` whose decision names it: per member
    its expected share (its weight over the total weight of the members in rotation:
    active, weight above 0; every weight counts 1 in a round-robin pool), its actual
    share of the leads the rotation gave out, the drift in points, and why it was
    skipped."""
    decided = [(r, r.decision) for r in records if r.decision.get("pool") == pool.name]
    counts = Counter(
        d.get("rep") for _, d in decided if not d.get("fallback") and d.get("rep") is not None
    )
    rotated = sum(counts.values())
    skipped: dict[str, Counter[str]] = {}
    for record, _ in decided:
        for skip in record.explained("pool").get("skipped") or []:
            if isinstance(skip, dict):
                skipped.setdefault(str(skip.get("rep")), Counter())[str(skip.get("reason"))] += 1
    by_email = {r.email: r for r in reps}

    def weight(member: Member) -> int:
        rep = by_email.get(member.rep)
        if rep is None or not rep.active or member.weight == 0:
            return 0
        return 1 if pool.strategy is Strategy.round_robin else member.weight

    total = sum(weight(m) for m in pool.members)
    by_share = pool.strategy in (Strategy.round_robin, Strategy.weighted) and total > 0
    members = []
    for member in pool.members:
        expected = round(weight(member) / total, 4) if by_share else None
        actual = round(counts[member.rep] / rotated, 4) if rotated else None
        drift = None
        if actual is not None and expected is not None:
            drift = round((actual - expected) * 100, 2)
        rep = by_email.get(member.rep)
        members.append(
            MemberFairness(
                rep=member.rep,
                name=rep.name if rep is not None else None,
                weight=member.weight,
                in_rotation=weight(member) > 0,
                expected_share=expected,
                actual_count=counts[member.rep],
                actual_share=actual,
                drift_points=drift,
                skipped={**dict.fromkeys(REASONS, 0), **skipped.get(member.rep, {})},
            )
        )
    return PoolFairness(
        pool=pool.name,
        strategy=pool.strategy.value,
        decisions=len(decided),
        rotated=rotated,
        fallback=sum(bool(d.get("fallback")) for _, d in decided),
        members=members,
    )
