"""The routing engine as a whole, pure: rules (domain/rules.py), pool rotation
(domain/rotation.py) and the router that joins them (domain/routing.py).

Eligibility is checked against an oracle written here from the configuration's contract
(rep-local dates and hours, caps counted in the pool's timezone), not against the
engine's own reasons.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.config import (
    Assign,
    Condition,
    Member,
    OnReturn,
    Op,
    Period,
    PoolConfig,
    PoolFallback,
    RepConfig,
    RoutingConfig,
    Rule,
    Strategy,
    WorkingHours,
)
from domain.config_checks import validated
from domain.lead import LeadSubmission
from domain.rotation import PoolState, pick
from domain.routing import Routed, Router, RoutingSnapshot
from domain.rules import CompiledRules, compile_when, facts_of
from tests.strategies import (
    TERRITORIES,
    grades,
    moments,
    pools,
    routing_leads,
    rule_lists,
    scores,
)

MONDAY = datetime(2026, 1, 5, 9, tzinfo=UTC)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ANY_LEAD = facts_of(LeadSubmission(email="lead@acme.com"), None, None)
quick = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------- helpers


def router_for(pool: PoolConfig, reps: dict[str, RepConfig]) -> Router:
    """A router whose one rule sends every lead to ``pool``."""
    return Router.build(
        RoutingConfig(
            reps=list(reps.values()),
            pools=[pool],
            rules=[Rule(name="everyone", assign=Assign(pool=pool.name))],
            fallback=Assign(pool=pool.name),
        ),
        version=1,
    )


def simple_pool(
    weights: list[int], strategy: Strategy = Strategy.weighted, **pool: Any
) -> tuple[PoolConfig, dict[str, RepConfig]]:
    """A pool "p" of reps r0, r1, ... with these weights, always available."""
    reps = {
        f"r{i}@example.com": RepConfig(email=f"r{i}@example.com", name=f"R{i}")
        for i in range(len(weights))
    }
    members = [Member(rep=email, weight=w) for email, w in zip(reps, weights, strict=True)]
    return PoolConfig(name="p", strategy=strategy, members=members, **pool), reps


def run(
    router: Router, times: list[datetime], snapshot: RoutingSnapshot | None = None
) -> Iterator[Routed]:
    """Route one lead at each of ``times``, carrying the pool's state from lead to lead."""
    snapshot = snapshot or RoutingSnapshot()
    for n, now in enumerate(times):
        routed = router.route(ANY_LEAD, snapshot, now, seed=f"lead-{n}")
        if routed.state is not None and routed.pool is not None:
            snapshot.pools[routed.pool] = routed.state
        yield routed


def every(seconds: float, count: int, start: datetime = MONDAY) -> list[datetime]:
    return [start + timedelta(seconds=seconds * n) for n in range(count)]


def why_not(
    member: Member,
    rep: RepConfig | None,
    pool: PoolConfig,
    now: datetime,
    taken: list[tuple[datetime, str]],
) -> str | None:
    """The oracle: why ``member`` may not take a lead of ``pool`` at ``now``, given the
    leads the pool gave out before (``taken``: when, to whom), or None."""
    if rep is None or not rep.active:
        return "inactive"
    if member.weight == 0:
        return "weight 0"
    local = now.astimezone(ZoneInfo(rep.timezone))
    if any(p.from_ <= local.date() <= p.until for p in rep.out_of_office):
        return "away"
    hours = rep.working_hours
    if hours is not None and (
        WEEKDAYS[local.weekday()] not in hours.days or not hours.start <= local.time() < hours.end
    ):
        return "outside working hours"
    zone = ZoneInfo(pool.timezone)
    day = now.astimezone(zone).date()
    week = now.astimezone(zone).isocalendar()[:2]
    mine = [when.astimezone(zone) for when, who in taken if who == member.rep]
    if member.daily_cap is not None and sum(w.date() == day for w in mine) >= member.daily_cap:
        return "daily cap"
    if (
        member.weekly_cap is not None
        and sum(w.isocalendar()[:2] == week for w in mine) >= member.weekly_cap
    ):
        return "weekly cap"
    return None


# --------------------------------------------------------------------- determinism


@quick
@given(
    pools(),
    rule_lists(max_size=6),
    routing_leads,
    scores,
    grades,
    st.lists(moments, min_size=1, max_size=8),
    st.dictionaries(st.sampled_from([f"r{i}@example.com" for i in range(6)]), st.integers(0, 9)),
    st.text(max_size=8),
)
def test_same_snapshot_lead_and_time_give_the_same_decision(
    pool_reps: tuple[PoolConfig, dict[str, RepConfig]],
    rules: list[Rule],
    lead: LeadSubmission,
    score: int | None,
    grade: str | None,
    times: list[datetime],
    open_leads: dict[str, int],
    seed: str,
) -> None:
    pool, reps = pool_reps
    config = RoutingConfig(
        reps=list(reps.values()),
        pools=[pool],
        territories=list(TERRITORIES),
        rules=[r.model_copy(update={"assign": Assign(pool="p")}) for r in rules],
        fallback=Assign(pool="p"),
    )
    router = Router.build(config, version=7)
    times = sorted(times)
    snapshot = RoutingSnapshot(open_leads=open_leads)
    for _ in run(router, times[:-1], snapshot):  # some history, so the state is not empty
        pass
    before = snapshot.model_dump()
    facts = facts_of(lead, score, grade)

    first = router.route(facts, snapshot, times[-1], seed=seed)
    again = router.route(facts, snapshot, times[-1], seed=seed)
    rebuilt = Router.build(RoutingConfig.model_validate(config.dump()), version=7)
    fresh = rebuilt.route(
        facts_of(lead, score, grade), snapshot.model_copy(deep=True), times[-1], seed=seed
    )

    assert snapshot.model_dump() == before, "routing must not change the snapshot it reads"
    assert first.model_dump() == again.model_dump() == fresh.model_dump()
    assert first.decision.config_version == 7


# --------------------------------------------------------------------- eligibility


@settings(quick, max_examples=150)
@given(
    pools(),
    moments,
    st.lists(st.integers(min_value=0, max_value=8 * 3600), min_size=1, max_size=40),
)
def test_never_an_ineligible_rep(
    pool_reps: tuple[PoolConfig, dict[str, RepConfig]], start: datetime, gaps: list[int]
) -> None:
    pool, reps = pool_reps
    router = router_for(pool, reps)
    times = [start + timedelta(seconds=sum(gaps[: n + 1])) for n in range(len(gaps))]
    taken: list[tuple[datetime, str]] = []
    for now, routed in zip(times, run(router, times), strict=True):
        decision = routed.decision
        reasons = {m.rep: why_not(m, reps.get(m.rep), pool, now, taken) for m in pool.members}
        if not decision.fallback:
            assert decision.rep is not None
            assert reasons[decision.rep] is None, f"{decision.rep}: {reasons[decision.rep]}"
            taken.append((now, decision.rep))
            continue
        assert all(reasons.values()), f"fell back although {reasons} shows someone eligible"
        # The pool's own fallback rep, if any, must be able to take leads.
        if decision.rep is not None:
            assert pool.fallback is not None and decision.rep == pool.fallback.rep
            spare = reps[decision.rep]
            assert spare.active
            assert why_not(Member(rep=spare.email), spare, pool, now, []) is None


def test_a_rep_without_working_hours_is_always_available() -> None:
    pool, reps = simple_pool([1, 1])
    reps["r1@example.com"] = reps["r1@example.com"].model_copy(
        update={
            "working_hours": WorkingHours(days=["mon"], start=dt_time(9), end=dt_time(10)),
            "timezone": "Asia/Tokyo",
        }
    )
    sunday_night = datetime(2026, 1, 11, 23, 30, tzinfo=UTC)
    reps_got = {r.decision.rep for r in run(router_for(pool, reps), every(60, 10, sunday_night))}
    assert reps_got == {"r0@example.com"}


def test_working_hours_and_time_off_are_the_rep_s_own_local_time() -> None:
    # 23:30 UTC on Sunday 2026-01-11 is 08:30 on Monday in Tokyo.
    tokyo = RepConfig(
        email="t@example.com",
        name="T",
        timezone="Asia/Tokyo",
        working_hours=WorkingHours(days=["mon"], start=dt_time(8), end=dt_time(9)),
    )
    pool = PoolConfig(
        name="p", members=[Member(rep=tokyo.email)], fallback=PoolFallback(queue="triage")
    )
    router = router_for(pool, {tokyo.email: tokyo})
    assert (
        router.route(
            ANY_LEAD, RoutingSnapshot(), datetime(2026, 1, 11, 23, 30, tzinfo=UTC), seed="s"
        ).decision.rep
        == tokyo.email
    )
    assert (
        router.route(
            ANY_LEAD, RoutingSnapshot(), datetime(2026, 1, 12, 0, 30, tzinfo=UTC), seed="s"
        ).decision.queue
        == "triage"
    )
    away = tokyo.model_copy(
        update={
            "working_hours": None,
            "out_of_office": [Period.model_validate({"from": "2026-01-12", "until": "2026-01-12"})],
        }
    )
    router = router_for(pool, {away.email: away})
    # Still Sunday in UTC, already the Monday off in Tokyo.
    assert (
        router.route(
            ANY_LEAD, RoutingSnapshot(), datetime(2026, 1, 11, 16, tzinfo=UTC), seed="s"
        ).decision.queue
        == "triage"
    )
    assert (
        router.route(
            ANY_LEAD, RoutingSnapshot(), datetime(2026, 1, 11, 14, tzinfo=UTC), seed="s"
        ).decision.rep
        == away.email
    )


# ----------------------------------------------------------------- weighted shares


def test_weights_two_one_one_share_sixty_leads_thirty_fifteen_fifteen_at_every_step() -> None:
    pool, reps = simple_pool([2, 1, 1])
    picks = [r.decision.rep for r in run(router_for(pool, reps), every(60, 60))]
    assert Counter(picks) == {"r0@example.com": 30, "r1@example.com": 15, "r2@example.com": 15}
    for k in range(1, 16):
        prefix = Counter(picks[: 4 * k])
        assert prefix == {"r0@example.com": 2 * k, "r1@example.com": k, "r2@example.com": k}


@quick
@given(
    st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=7).filter(any),
    st.sampled_from([Strategy.weighted, Strategy.round_robin]),
)
def test_every_member_is_within_one_lead_of_its_share_after_every_lead(
    weights: list[int], strategy: Strategy
) -> None:
    pool, reps = simple_pool(weights, strategy=strategy)
    if strategy is Strategy.round_robin:
        weights = [min(w, 1) for w in weights]
    total = sum(weights)
    counts: Counter[str] = Counter()
    for n, routed in enumerate(run(router_for(pool, reps), every(60, 3 * total + 7)), start=1):
        counts[routed.decision.rep or ""] += 1
        for i, weight in enumerate(weights):
            assert abs(counts[f"r{i}@example.com"] - n * weight / total) <= 1, (n, counts)


@st.composite
def busy_pools(draw: st.DrawFn) -> tuple[PoolConfig, dict[str, RepConfig]]:
    """A weighted pool whose members are often away, off hours or capped."""
    pool, reps = draw(pools(strategy=Strategy.weighted, min_members=2, caps=False))
    members = [
        m.model_copy(
            update={
                "weight": draw(st.integers(min_value=1, max_value=6)),
                "daily_cap": draw(st.none() | st.integers(min_value=20, max_value=150)),
                "weekly_cap": draw(st.none() | st.integers(min_value=300, max_value=1000)),
            }
            if i
            else {"weight": draw(st.integers(min_value=1, max_value=6))}
        )
        for i, m in enumerate(pool.members)
    ]
    # Everyone active; the first member always there and uncapped, so that somebody
    # always takes the lead.
    reps = {
        e: r.model_copy(
            update={"active": True}
            if e != pool.members[0].rep
            else {"active": True, "out_of_office": [], "working_hours": None}
        )
        for e, r in reps.items()
    }
    return pool.model_copy(update={"members": members}), reps


@settings(quick, max_examples=5)
@given(busy_pools())
def test_shares_of_eligible_members_hold_within_one_percent_over_ten_thousand_leads(
    pool_reps: tuple[PoolConfig, dict[str, RepConfig]],
) -> None:
    pool, reps = pool_reps
    state = PoolState()
    weights = {m.rep: m.weight for m in pool.members}
    counts: Counter[str] = Counter()
    expected: dict[str, float] = dict.fromkeys(weights, 0.0)
    leads = 10_000
    for n in range(leads):  # over 30 days: about 330 a day
        now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n * 30 * 86400 / leads)
        chosen = pick(pool, reps, state, now, seed=str(n))
        state = chosen.state
        assert chosen.rep is not None
        skipped = {s.rep for s in chosen.skipped}
        eligible = [rep for rep in weights if rep not in skipped]
        total = sum(weights[rep] for rep in eligible)
        for rep in eligible:
            expected[rep] += weights[rep] / total
        counts[chosen.rep] += 1
    for rep in weights:
        assert abs(counts[rep] - expected[rep]) <= leads / 100, (rep, counts, expected)


# ------------------------------------------------------------ membership changes


@quick
@given(
    st.lists(st.integers(min_value=1, max_value=6), min_size=2, max_size=6),
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=1, max_value=6),
    st.booleans(),
)
def test_adding_or_removing_a_member_keeps_the_others_standing(
    weights: list[int], leads: int, new_weight: int, add: bool
) -> None:
    pool, reps = simple_pool(weights)
    state = PoolState()
    for n in range(leads):
        state = pick(pool, reps, state, MONDAY + timedelta(minutes=n), seed=str(n)).state
    old = {rep: s.credit for rep, s in state.members.items()}
    if add:
        newcomer = "new@example.com"
        reps[newcomer] = RepConfig(email=newcomer, name="New")
        members = [*pool.members, Member(rep=newcomer, weight=new_weight)]
    else:
        members = pool.members[1:]
    changed = pool.model_copy(update={"members": members})
    later = MONDAY + timedelta(days=1)
    first = pick(changed, reps, state, later, seed="after")
    kept = [m.rep for m in members if m.rep in old]
    # Nobody who stayed is reset or moved relative to the others.
    for rep in kept:
        assert first.before[rep] == pytest.approx(old[rep], abs=1e-6)
    assert first.state.decisions == leads + 1
    if not add:
        return
    # The newcomer joins at the pool's level (the members' mean credit) ...
    level = sum(old.values()) / len(old) if old else 0.0
    assert first.before[newcomer] == pytest.approx(level, abs=1e-6)
    # ... and gets no burst: over the next W*k leads about k*w of them, never more.
    total = sum(m.weight for m in members)
    state, got = PoolState.model_validate(first.state.model_dump()), int(first.rep == newcomer)
    for k in range(1, 4):
        for n in range(total):
            chosen = pick(
                changed, reps, state, later + timedelta(minutes=k * total + n), seed=f"{k}-{n}"
            )
            state, got = chosen.state, got + (chosen.rep == newcomer)
        assert got <= k * new_weight + 1, (k, got)
        assert got >= k * new_weight - 1, (k, got)


# ------------------------------------------------------------ back from time off

AWAY_FROM = date(2026, 1, 7)


@st.composite
def time_off(draw: st.DrawFn) -> tuple[PoolConfig, dict[str, RepConfig], date, int]:
    """A pool whose first member is away for some days, and how many leads come a day."""
    weights = draw(st.lists(st.integers(min_value=1, max_value=6), min_size=2, max_size=6))
    pool, reps = simple_pool(weights)
    until = AWAY_FROM + timedelta(days=draw(st.integers(min_value=0, max_value=4)))
    returning = pool.members[0].rep
    reps[returning] = reps[returning].model_copy(
        update={"out_of_office": [Period.model_validate({"from": AWAY_FROM, "until": until})]}
    )
    return pool, reps, until, draw(st.integers(min_value=5, max_value=60))


@settings(quick, max_examples=60)
@given(time_off())
def test_a_rep_back_from_time_off_rejoins_where_the_rotation_stands(
    scenario: tuple[PoolConfig, dict[str, RepConfig], date, int],
) -> None:
    pool, reps, until, per_day = scenario
    returning, weight = pool.members[0].rep, pool.members[0].weight
    total = sum(m.weight for m in pool.members)
    state = PoolState()
    start = datetime(2026, 1, 5, tzinfo=UTC)
    standing: float | None = None
    after: list[str] = []
    for n in range(per_day * 14):
        now = start + timedelta(seconds=n * 86400 / per_day)
        chosen = pick(pool, reps, state, now, seed=str(n))
        assert not chosen.catch_up
        if now.date() < AWAY_FROM:
            standing = chosen.after[returning]
        elif now.date() <= until:
            assert chosen.rep != returning
            assert chosen.after[returning] == standing, "credit moved while away"
        else:
            if not after:
                assert chosen.before[returning] == standing, "did not rejoin where it stood"
            after.append(chosen.rep or "")
        state = chosen.state
    # Not flooded: over the first N leads after its return it gets fewer than N*w/W + 2,
    # that is at most ceil(N*w/W) + 1 -- what any N consecutive leads of a smooth rotation
    # may give a member even without time off (being up to a lead behind at the start
    # and up to a lead ahead at the end): weights 5:4:5:6:5 give the weight-6 member two
    # leads in a row, where its share of two is 0.48. "Fair share + 1" cannot be asked.
    got = 0
    for n, rep in enumerate(after, start=1):
        got += rep == returning
        assert got <= math.ceil(n * weight / total) + 1, (n, got)


@settings(quick, max_examples=40)
@given(time_off(), st.integers(min_value=1, max_value=5))
def test_catch_up_gives_at_most_the_daily_extra_until_the_missed_share_is_made_up(
    scenario: tuple[PoolConfig, dict[str, RepConfig], date, int], extra: int
) -> None:
    pool, reps, until, per_day = scenario
    pool = pool.model_copy(update={"on_return": OnReturn(catch_up=True, max_extra_per_day=extra)})
    returning, weight = pool.members[0].rep, pool.members[0].weight
    total = sum(m.weight for m in pool.members)
    state = PoolState()
    start = datetime(2026, 1, 5, tzinfo=UTC)
    extras: Counter[date] = Counter()
    got = regular = regular_got = 0
    made_up = False
    for n in range(per_day * 40):
        now = start + timedelta(seconds=n * 86400 / per_day)
        chosen = pick(pool, reps, state, now, seed=str(n))
        state = chosen.state
        got += chosen.rep == returning
        if chosen.catch_up:
            assert chosen.rep == returning and now.date() > until
            assert not made_up, "an extra lead after the missed share was made up"
            extras[now.date()] += 1
            assert extras[now.date()] <= extra
        elif now.date() > until:
            # Besides the extras, the rotation itself does not flood the returning rep.
            regular, regular_got = regular + 1, regular_got + (chosen.rep == returning)
            assert regular_got <= math.ceil(regular * weight / total) + 1
        if now.date() > until and state.members[returning].owed < 1:
            made_up = True
            # Made up: its count is its share of every lead, its time off included.
            assert abs(got - (n + 1) * weight / total) < 2, (n, got)
    assert made_up or extras[max(extras)] == extra, "catch-up stopped before it was made up"


# ---------------------------------------------------------------------- tie-breaks


def test_ties_go_to_the_least_recently_assigned_member() -> None:
    pool, reps = simple_pool([1, 1, 1])
    state = PoolState.model_validate(
        {
            "members": {
                "r0@example.com": {"last_assigned_at": "2026-01-05T08:00:00Z"},
                "r1@example.com": {"last_assigned_at": "2026-01-05T07:00:00Z"},
                "r2@example.com": {"last_assigned_at": "2026-01-05T08:30:00Z"},
            }
        }
    )
    routed = router_for(pool, reps).route(
        ANY_LEAD, RoutingSnapshot(pools={"p": state}), MONDAY, seed="x"
    )
    assert routed.decision.rep == "r1@example.com"
    tie = routed.decision.explanation["pool"]["tie_break"]
    assert tie["by"] == "least recently assigned"


def test_remaining_ties_are_a_seeded_pick_recorded_in_the_decision_never_list_order() -> None:
    pool, reps = simple_pool([1, 1, 1, 1])
    firsts: Counter[str] = Counter()
    for n in range(200):
        seed = f"lead-{n}"
        routed = router_for(pool, reps).route(ANY_LEAD, RoutingSnapshot(), MONDAY, seed=seed)
        tie = routed.decision.explanation["pool"]["tie_break"]
        assert tie["by"] == "seeded random" and tie["seed"] == seed
        assert len(tie["tied"]) == 4
        # The same seed picks the same member whatever order the members are listed in.
        flipped = pool.model_copy(update={"members": pool.members[::-1]})
        again = router_for(flipped, reps).route(ANY_LEAD, RoutingSnapshot(), MONDAY, seed=seed)
        assert again.decision.rep == routed.decision.rep
        firsts[routed.decision.rep or ""] += 1
    assert set(firsts) == set(reps)
    assert min(firsts.values()) >= 25, firsts  # 50 each expected


# ---------------------------------------------------------------------- fallbacks


def test_the_fallback_takes_a_lead_that_no_rule_matches() -> None:
    pool, reps = simple_pool([1, 1])
    reps["spare@example.com"] = RepConfig(email="spare@example.com", name="Spare")
    config = RoutingConfig(
        reps=list(reps.values()),
        pools=[pool],
        rules=[
            Rule(
                name="demos",
                when=Condition(field="source", op=Op.eq, value="demo"),
                assign=Assign(pool="p"),
            ),
        ],
        fallback=Assign(rep="spare@example.com"),
    )
    router = Router.build(config, version=3)
    unmatched = facts_of(LeadSubmission(email="a@b.com", source="pricing"), None, None)
    routed = router.route(unmatched, RoutingSnapshot(), MONDAY, seed="s")
    assert routed.decision.rule == "fallback"
    assert routed.decision.rep == "spare@example.com"
    assert routed.decision.explanation["rule"] == "fallback"
    matched = facts_of(LeadSubmission(email="a@b.com", source="Demo"), None, None)
    assert router.route(matched, RoutingSnapshot(), MONDAY, seed="s").decision.rule == "demos"


@pytest.mark.parametrize(
    ("fallback", "rep", "queue"),
    [
        (PoolFallback(queue="triage"), None, "triage"),
        (PoolFallback(rep="spare@example.com"), "spare@example.com", None),
    ],
)
def test_a_pool_whose_members_are_all_capped_or_away_hands_the_lead_to_its_fallback(
    fallback: PoolFallback, rep: str | None, queue: str | None
) -> None:
    pool, reps = simple_pool([1, 1], fallback=fallback)
    pool.members[0].daily_cap = 1
    reps["r1@example.com"].out_of_office = [
        Period.model_validate({"from": MONDAY.date(), "until": MONDAY.date()})
    ]
    reps["spare@example.com"] = RepConfig(email="spare@example.com", name="Spare")
    decisions = [r.decision for r in run(router_for(pool, reps), every(60, 3))]
    assert decisions[0].rep == "r0@example.com" and not decisions[0].fallback
    for decision in decisions[1:]:
        assert decision.fallback
        assert (decision.rep, decision.queue) == (rep, queue)
        assert "nobody in pool 'p'" in decision.reason
        skipped = {s["rep"]: s["reason"] for s in decision.explanation["pool"]["skipped"]}
        assert skipped == {"r0@example.com": "capped", "r1@example.com": "away"}


# --------------------------------------------------------- least loaded and named


@settings(quick, max_examples=100)
@given(
    pools(strategy=Strategy.least_loaded, caps=False),
    moments,
    st.lists(st.integers(min_value=0, max_value=5), min_size=6, max_size=6),
)
def test_least_loaded_picks_an_eligible_member_with_the_fewest_open_leads(
    pool_reps: tuple[PoolConfig, dict[str, RepConfig]], now: datetime, loads: list[int]
) -> None:
    pool, reps = pool_reps
    open_leads = {f"r{i}@example.com": n for i, n in enumerate(loads)}
    routed = router_for(pool, reps).route(
        ANY_LEAD, RoutingSnapshot(open_leads=open_leads), now, seed="s"
    )
    eligible = [m.rep for m in pool.members if why_not(m, reps[m.rep], pool, now, []) is None]
    if not eligible:
        assert routed.decision.fallback
        return
    assert routed.decision.rep in eligible
    assert open_leads[routed.decision.rep] == min(open_leads[rep] for rep in eligible)


@settings(quick, max_examples=100)
@given(pools(strategy=Strategy.named, caps=False), moments)
def test_named_picks_the_first_eligible_member_in_the_listed_order(
    pool_reps: tuple[PoolConfig, dict[str, RepConfig]], now: datetime
) -> None:
    pool, reps = pool_reps
    routed = router_for(pool, reps).route(ANY_LEAD, RoutingSnapshot(), now, seed="s")
    eligible = [m.rep for m in pool.members if why_not(m, reps[m.rep], pool, now, []) is None]
    if eligible:
        assert (routed.decision.rep, routed.decision.fallback) == (eligible[0], False)
    else:
        assert routed.decision.fallback


# ---------------------------------------------------------------------- conditions

GERMAN = LeadSubmission(
    email="Jane@Acme.com",
    title="VP of  Sales",
    country="Germany",
    state="Bavaria",
    postal_code="80331",
    company_size=250,
    industry="Software",
    source="Demo",
    website="https://www.Acme.com/pricing",
    extra={"tier": "Gold", "seats": "40", "plan": "3"},
)
CALIFORNIAN = LeadSubmission(
    email="sam@gmail.com", country="US", state="California", postal_code="94105"
)
NEW_YORKER = LeadSubmission(email="ny@corp.com", country="usa", state="NY")
LONDONER = LeadSubmission(email="li@corp.co.uk", country="United Kingdom", postal_code="SW1A 1AA")
BARE = LeadSubmission(email="x@corp.com")
LEADS = {"de": GERMAN, "ca": CALIFORNIAN, "ny": NEW_YORKER, "uk": LONDONER, "bare": BARE}
SCORES = {"de": (72, "hot")}

# (field, op, value, lead, expected)
CASES: list[tuple[str, str, Any, str, bool]] = [
    # text, case-insensitive and whitespace-normalised
    ("industry", "eq", "SOFTWARE", "de", True),
    ("industry", "eq", "retail", "de", False),
    ("industry", "eq", "software", "bare", False),
    ("industry", "ne", "Retail", "de", True),
    ("industry", "ne", "software", "de", False),
    ("industry", "ne", "software", "bare", True),  # a missing value matches ne ...
    ("source", "in", ["pricing", "DEMO"], "de", True),
    ("source", "in", ["pricing"], "de", False),
    ("source", "in", ["demo"], "bare", False),
    ("source", "not_in", ["demo"], "de", False),
    ("source", "not_in", ["demo"], "bare", True),  # ... not_in ...
    ("title", "contains", "OF SALES", "de", True),
    ("title", "contains", "ceo", "de", False),
    ("title", "contains", "vp", "bare", False),
    ("title", "starts_with", "vp", "de", True),
    ("title", "starts_with", "sales", "de", False),
    ("title", "ends_with", "Sales", "de", True),
    ("email_domain", "ends_with", ".COM", "de", True),
    ("title", "regex", r"^vp\b", "de", True),
    ("title", "regex", "director|head", "de", False),
    ("title", "regex", ".*", "bare", False),
    ("website_domain", "eq", "acme.com", "de", True),
    ("free_mail", "eq", True, "ca", True),
    ("free_mail", "eq", True, "de", False),
    # numbers
    ("company_size", "gt", 100, "de", True),
    ("company_size", "gt", 250, "de", False),
    ("company_size", "gte", 250, "de", True),
    ("company_size", "lt", 250, "de", False),
    ("company_size", "lte", 250, "de", True),
    ("company_size", "between", [100, 250], "de", True),
    ("company_size", "between", [251, 1000], "de", False),
    ("company_size", "eq", 250, "de", True),
    ("company_size", "lt", 10, "bare", False),  # missing numbers compare false
    ("company_size", "between", [0, 10**9], "bare", False),
    ("score", "gte", 70, "de", True),
    ("score", "lt", 70, "de", False),
    ("score", "lt", 50, "bare", False),
    ("grade", "eq", "HOT", "de", True),
    # extra fields: text, and numbers written as text
    ("extra.tier", "eq", "gold", "de", True),
    ("extra.tier", "in", ["silver", "bronze"], "de", False),
    ("extra.seats", "gt", 10, "de", True),
    ("extra.seats", "between", [41, 50], "de", False),
    ("extra.plan", "eq", 3, "de", True),  # a number in a rule against a text field
    ("extra.plan", "in", [2, 3], "de", True),
    ("extra.missing", "empty", None, "de", True),
    ("extra.tier", "not_empty", None, "de", True),
    # empty and not empty
    ("phone", "empty", None, "de", True),
    ("title", "empty", None, "de", False),
    ("company_size", "empty", None, "bare", True),
    ("title", "not_empty", None, "de", True),
    ("title", "not_empty", None, "bare", False),  # ... and empty, nothing else
    # countries as names or codes, on either side
    ("country", "eq", "DE", "de", True),
    ("country", "eq", "Germany", "de", True),
    ("country", "eq", "deu", "de", True),
    ("country", "eq", "Austria", "de", False),
    ("country", "in", ["Austria", "DE"], "de", True),
    ("country", "eq", "United States", "ny", True),
    ("country", "not_in", ["US"], "ca", False),
    # states as names or codes in the US
    ("state", "eq", "CA", "ca", True),
    ("state", "eq", "California", "ca", True),
    ("state", "in", ["california", "WA"], "ca", True),
    ("state", "eq", "California", "ny", False),
    ("state", "eq", "New York", "ny", True),
    # postal prefixes, spaces and case ignored
    ("postal_code", "starts_with", "SW1A 1", "uk", True),
    ("postal_code", "starts_with", "sw1a1", "uk", True),
    ("postal_code", "eq", "sw1a 1aa", "uk", True),
    ("postal_code", "starts_with", "94", "ca", True),
    ("postal_code", "starts_with", "EC", "uk", False),
    # territories: countries, states, postal prefixes
    ("country", "in_territory", "DACH", "de", True),
    ("country", "in_territory", "DACH", "uk", False),
    ("country", "in_territory", "US West", "ca", True),
    ("country", "in_territory", "US West", "ny", False),
    ("country", "in_territory", "London", "uk", True),
    ("country", "in_territory", "London", "ca", False),
    ("postal_code", "in_territory", "Munich", "de", True),
    ("postal_code", "in_territory", "Munich", "bare", False),
]


def test_the_condition_cases_cover_every_operator() -> None:
    assert {Op(case[1]) for case in CASES} == set(Op)


def holds(when: Any, lead: str) -> bool:
    """Whether a rule with ``when`` takes ``lead``, through the router."""
    score, grade = SCORES.get(lead, (None, None))
    config = validated(
        {
            "reps": [
                {"email": "a@example.com", "name": "A"},
                {"email": "b@example.com", "name": "B"},
            ],
            "territories": [t.model_dump(mode="json") for t in TERRITORIES],
            "rules": [{"name": "the rule", "when": when, "assign": {"rep": "a@example.com"}}],
            "fallback": {"rep": "b@example.com"},
        }
    )
    router = Router.build(config, version=1)
    rule, _, _, _ = router.match(facts_of(LEADS[lead], score, grade))
    return rule == "the rule"


@pytest.mark.parametrize(("field", "op", "value", "lead", "expected"), CASES)
def test_condition(field: str, op: str, value: Any, lead: str, expected: bool) -> None:
    when: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        when["value"] = value
    assert holds(when, lead) is expected


def test_all_and_any_nest() -> None:
    german_big = {
        "all": [
            {"field": "country", "op": "eq", "value": "DE"},
            {"field": "company_size", "op": "gte", "value": 200},
        ]
    }
    partner = {"field": "source", "op": "eq", "value": "partner"}
    assert holds({"any": [german_big, partner]}, "de")
    assert not holds({"any": [german_big, partner]}, "ca")
    assert not holds({"all": [german_big, partner]}, "de")
    assert holds(
        {
            "all": [
                german_big,
                {"any": [partner, {"field": "title", "op": "regex", "value": "^vp"}]},
            ]
        },
        "de",
    )
    assert holds({"any": [{"all": [partner]}, {"any": [{"all": [german_big]}]}]}, "de")


def test_the_first_enabled_rule_wins_and_disabled_rules_never_match() -> None:
    reps = [{"email": f"{n}@example.com", "name": n} for n in ("a", "b", "c", "d")]
    german = {"field": "country", "op": "eq", "value": "Germany"}
    config = validated(
        {
            "reps": reps,
            "rules": [
                {
                    "name": "off",
                    "enabled": False,
                    "when": german,
                    "assign": {"rep": "a@example.com"},
                },
                {"name": "germany", "when": german, "assign": {"rep": "b@example.com"}},
                {"name": "germany too", "when": german, "assign": {"rep": "c@example.com"}},
                {"name": "off catch-all", "enabled": False, "assign": {"rep": "a@example.com"}},
                {"name": "everyone", "assign": {"rep": "d@example.com"}},
            ],
            "fallback": {"rep": "a@example.com"},
        }
    )
    router = Router.build(config, version=1)
    for lead, (rule, rep) in {
        "de": ("germany", "b@example.com"),
        "ca": ("everyone", "d@example.com"),
    }.items():
        decision = router.route(
            facts_of(LEADS[lead], None, None), RoutingSnapshot(), MONDAY, seed="s"
        ).decision
        assert (decision.rule, decision.rep) == (rule, rep)


@settings(quick, max_examples=120)
@given(rule_lists(max_size=30), st.lists(st.tuples(routing_leads, scores, grades), max_size=8))
def test_the_index_never_changes_the_answer(
    rules: list[Rule], leads: list[tuple[LeadSubmission, int | None, str | None]]
) -> None:
    territories = {t.name: t for t in TERRITORIES}
    compiled = CompiledRules.build(rules, list(TERRITORIES))
    # The naive engine: every rule in order, each compiled on its own, disabled skipped.
    naive = [
        (rule, compile_when(rule.when, territories) if rule.when is not None else None)
        for rule in rules
    ]
    for lead, score, grade in leads:
        facts = facts_of(lead, score, grade)
        expected = next(
            (r.name for r, test in naive if r.enabled and (test is None or test(facts))), None
        )
        position, tested = compiled.first_match(facts)
        assert (None if position is None else compiled.rules[position].name) == expected
        assert tested <= len(compiled.rules)
