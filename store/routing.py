"""Routing decisions against the store: the published configuration (compiled once per
version, picked up by the next decision after a publish), the pools' rotation state
claimed with compare-and-set, and the rep the decision names.

With no configuration published yet, the active reps of the default team share leads in
one round-robin pool: a fresh database routes from the first lead on.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.config import Assign, Member, PoolConfig, RepConfig, RoutingConfig
from domain.lead import Stage
from domain.routing import Router, RoutingDecision, RoutingSnapshot
from domain.rules import Facts
from store import availability
from store import config as config_store
from store import reps as rep_store
from store.models import Lead, Rep

CLAIM_ATTEMPTS = 20
# Stages in which a lead counts as open work of its owner (``least_loaded``).
CLOSED_STAGES = tuple(
    s.value for s in (Stage.won, Stage.lost, Stage.disqualified, Stage.handed_off)
)


class RouterCache:
    """The router of the latest published version, per process. Every decision asks the
    store for the latest version number (one indexed query), so a publish is in effect
    for the next decision on every worker, without a restart."""

    def __init__(self, default_team: str) -> None:
        self._default_team = default_team
        self._lock = threading.Lock()
        self._cached: tuple[int | None, Router] | None = None

    def current(self, session: Session) -> Router:
        version = config_store.latest_version(session)
        with self._lock:
            cached = self._cached
        if cached is not None and cached[0] == version and version is not None:
            return cached[1]
        if version is None:
            router = Router.build(implicit_config(session, self._default_team), 0)
        else:
            found = config_store.published(session)
            assert found is not None
            version, config = found
            router = Router.build(config, version)
        with self._lock:
            self._cached = (version, router)
        return router


def implicit_config(session: Session, team_name: str) -> RoutingConfig:
    """The configuration in force before any is published: the active reps of the
    default team, in one round-robin pool that is also the fallback."""
    team = rep_store.team_by_name(session, team_name)
    reps = list(
        session.scalars(select(Rep).where(Rep.team_id == team.id).order_by(Rep.id))
        if team is not None
        else []
    )
    return RoutingConfig(
        reps=[
            RepConfig(
                email=r.email,
                name=r.name,
                crm_owner_id=r.crm_owner_id,
                slack_user_id=r.slack_user_id,
                active=r.active,
            )
            for r in reps
        ],
        pools=[
            PoolConfig(
                name=team_name,
                members=[Member(rep=r.email, weight=r.weight) for r in reps],
            )
        ],
        fallback=Assign(pool=team_name),
    )


def open_leads(session: Session) -> dict[str, int]:
    """Open leads per rep email."""
    rows = session.execute(
        select(Rep.email, func.count(Lead.id))
        .join(Lead, Lead.owner_rep_id == Rep.id)
        .where(Lead.stage.not_in(CLOSED_STAGES))
        .group_by(Rep.email)
    )
    return {email: int(count) for email, count in rows}


def decide(
    session: Session,
    router: Router,
    facts: Facts,
    now: datetime,
    *,
    seed: str,
    account_owner: str | None = None,
    account: str | None = None,
    exclude: Collection[str] = (),
    pool: str | None = None,
) -> RoutingDecision:
    """Route one lead and commit the pool's rotation state with it, in the caller's
    transaction. The state is claimed with compare-and-set: when another process moved
    the pool on in between, the decision is taken again from the new state."""
    names = list(router.pools)
    needs_load = any(p.strategy.value == "least_loaded" for p in router.pools.values())
    loads = open_leads(session) if needs_load else {}
    for _attempt in range(CLAIM_ATTEMPTS):
        stored = config_store.pool_states(session, names)
        snapshot = RoutingSnapshot(
            pools={name: state for name, (state, _revision) in stored.items()},
            open_leads=loads,
            account_owner=account_owner,
            account=account,
            away_until=availability.away_until(session, now),
        )
        routed = router.route(facts, snapshot, now, seed=seed, exclude=exclude, pool=pool)
        if routed.pool is None or routed.state is None:
            return _with_owner(session, routed.decision)
        revision = stored[routed.pool][1] if routed.pool in stored else None
        if config_store.save_pool_state(session, routed.pool, routed.state, revision):
            return _with_owner(session, routed.decision)
    raise RuntimeError(f"could not claim a turn in {CLAIM_ATTEMPTS} attempts")


def _with_owner(session: Session, decision: RoutingDecision) -> RoutingDecision:
    """The decision with its rep resolved to a stored rep (the owner of the lead)."""
    if decision.rep is None:
        return decision
    rep = session.scalars(select(Rep).where(Rep.email == decision.rep)).first()
    if rep is None:
        return decision.model_copy(
            update={
                "rep": None,
                "reason": f"{decision.reason}; but {decision.rep} is not a known rep",
            }
        )
    return decision.model_copy(update={"owner": rep_store.owner_of(rep)})
