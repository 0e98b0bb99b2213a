"""How a lead is routed to a rep.

The published configuration (``domain.config``) is compiled once per version into a
``Router``. For each lead the router takes the first enabled rule whose conditions match
(``domain.rules``), or the configuration's fallback; the rule's action names a pool, a
rep, or the existing account owner (then its ``else``). A pool picks a member by its
strategy from a snapshot of its rotation state (``domain.rotation``); when nobody in it
is eligible, the pool's own fallback (a rep or a named queue) takes the lead. Every
decision carries its explanation: the configuration version, the rule and each of its
conditions with the lead's value, each member skipped and why, and the pool's state
before and after.

Pure and deterministic: the same lead, configuration, snapshot and time give the same
decision. The store claims the pool's state atomically and commits the state after.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.config import Assign, PoolConfig, RepConfig, RoutingConfig
from domain.lead import Owner
from domain.rotation import PoolPick, PoolState, Skip, available, pick
from domain.rules import CompiledRules, Facts, Test, territory_test


class RoutingDecision(BaseModel):
    """Who got the lead and why; recorded on the lead's timeline and with the lead.

    ``owner`` is filled in by the store from ``rep`` (the rep's email); ``team`` is the
    pool's name (the field predates pools)."""

    owner: Owner | None
    team: str
    rule: str
    reason: str
    turn: int | None = None
    rep: str | None = None
    queue: str | None = None
    pool: str | None = None
    config_version: int | None = None
    fallback: bool = False
    explanation: dict[str, Any] = Field(default_factory=dict)


class NoEligibleRep(Exception):
    """No active rep with a positive weight is available (kept for older callers)."""


class RoutingSnapshot(BaseModel):
    """What the router reads besides the lead: pools' rotation states, open leads per
    rep (for ``least_loaded``) and the account owner of the lead's company, if any."""

    pools: dict[str, PoolState] = Field(default_factory=dict)
    open_leads: dict[str, int] = Field(default_factory=dict)
    account_owner: str | None = None
    account: str | None = None
    # Reps who said they are away, until when (``store.availability``).
    away_until: dict[str, datetime] = Field(default_factory=dict)


class Routed(BaseModel):
    """A decision and the pool state to commit with it (None: no pool state changed)."""

    decision: RoutingDecision
    pool: str | None = None
    state: PoolState | None = None


@dataclass
class Router:
    """One configuration version, compiled."""

    config: RoutingConfig
    version: int
    rules: CompiledRules
    reps: dict[str, RepConfig]
    pools: dict[str, PoolConfig]
    territory_tests: tuple[tuple[str, Test], ...] = ()

    @classmethod
    def build(cls, config: RoutingConfig, version: int) -> Router:
        return cls(
            config=config,
            version=version,
            rules=CompiledRules.build(config.rules, config.territories),
            reps={r.email: r for r in config.reps},
            pools={p.name: p for p in config.pools},
            territory_tests=tuple((t.name, territory_test(t)) for t in config.territories),
        )

    def territory_of(self, facts: Facts) -> str | None:
        """The first territory of the configuration the lead is in (how the KPIs slice
        leads by territory), or None."""
        return next((name for name, test in self.territory_tests if test(facts)), None)

    @property
    def wants_account_owner(self) -> bool:
        """Whether any rule may assign to the account owner (then the caller looks the
        lead's company up in the CRM before routing)."""
        return any(r.assign.account_owner for r in self.rules.rules)

    def match(self, facts: Facts) -> tuple[str, Assign, list[dict[str, Any]], int]:
        """The rule that takes the lead (or the fallback), its action, its conditions
        explained, and how many rules were tested."""
        position, tested = self.rules.first_match(facts)
        if position is None:
            return "fallback", self.config.fallback, [], tested
        rule = self.rules.rules[position]
        return rule.name, rule.assign, self.rules.explain(position, facts), tested

    def route(
        self,
        facts: Facts,
        snapshot: RoutingSnapshot,
        now: datetime,
        *,
        seed: str,
        exclude: Collection[str] = (),
        pool: str | None = None,
    ) -> Routed:
        """The decision for one lead, never giving it to one of ``exclude`` (rep emails).
        With ``pool``, the lead goes to that pool whatever the rules say (the hand-off
        to account management)."""
        # Routers are shared between threads: the exclusion travels as an argument.
        ex = frozenset(exclude)
        if pool is not None:
            explanation: dict[str, Any] = {"config_version": self.version, "rule": pool}
            return self._to_pool(pool, self.pools[pool], snapshot, now, seed, explanation, ex)
        rule, assign, conditions, tested = self.match(facts)
        explanation = {
            "config_version": self.version,
            "rule": rule,
            "conditions": conditions,
            "rules_tested": tested,
        }
        if ex:
            explanation["excluded"] = sorted(ex)
        if assign.account_owner:
            owner = snapshot.account_owner
            explanation["account"] = {"name": snapshot.account, "owner": owner}
            if (
                owner is not None
                and owner in self.reps
                and self.reps[owner].active
                and owner not in ex
            ):
                return self._to_rep(rule, owner, explanation, "the account's owner", ex)
            assert assign.else_ is not None
            explanation["account"]["fell_through"] = (
                "no matching account"
                if owner is None
                else f"owner {owner} had this lead before"
                if owner in ex
                else f"owner {owner} is not an active rep"
            )
            assign = assign.else_
        if assign.rep is not None:
            return self._to_rep(rule, assign.rep, explanation, "named in the rule", ex)
        assert assign.pool is not None
        return self._to_pool(rule, self.pools[assign.pool], snapshot, now, seed, explanation, ex)

    def _to_rep(
        self,
        rule: str,
        rep: str,
        explanation: dict[str, Any],
        why: str,
        exclude: frozenset[str] = frozenset(),
    ) -> Routed:
        config = self.reps[rep]
        if rep in exclude:
            return Routed(
                decision=RoutingDecision(
                    owner=None,
                    team="",
                    rule=rule,
                    reason=f"rule {rule!r}: {config.name} ({why}) had this lead before",
                    config_version=self.version,
                    explanation=explanation,
                )
            )
        explanation["chosen"] = rep
        return Routed(
            decision=RoutingDecision(
                owner=None,
                team="",
                rule=rule,
                reason=f"rule {rule!r}: {config.name} ({why})",
                rep=rep,
                config_version=self.version,
                explanation=explanation,
            )
        )

    def _to_pool(
        self,
        rule: str,
        pool: PoolConfig,
        snapshot: RoutingSnapshot,
        now: datetime,
        seed: str,
        explanation: dict[str, Any],
        exclude: frozenset[str] = frozenset(),
    ) -> Routed:
        state = snapshot.pools.get(pool.name) or PoolState()
        chosen: PoolPick = pick(
            pool,
            self.reps,
            state,
            now,
            seed=seed,
            open_leads=snapshot.open_leads,
            exclude=exclude,
            away_until=snapshot.away_until,
        )
        explanation["pool"] = {
            "name": pool.name,
            "strategy": pool.strategy.value,
            "skipped": [{"rep": s.rep, "reason": s.reason.value} for s in chosen.skipped],
            "state_before": chosen.before,
            "state_after": chosen.after,
            "tie_break": chosen.tie_break,
            "catch_up": chosen.catch_up,
        }
        if chosen.rep is not None:
            explanation["chosen"] = chosen.rep
            name = self.reps[chosen.rep].name
            return Routed(
                decision=RoutingDecision(
                    owner=None,
                    team=pool.name,
                    rule=rule,
                    reason=f"rule {rule!r}: pool {pool.name!r} ({pool.strategy.value}) "
                    f"chose {name}{_skips(chosen.skipped)}",
                    turn=chosen.state.decisions - 1,
                    rep=chosen.rep,
                    pool=pool.name,
                    config_version=self.version,
                    explanation=explanation,
                ),
                pool=pool.name,
                state=chosen.state,
            )
        return Routed(
            decision=self._pool_fallback(
                rule, pool, now, explanation, chosen.skipped, exclude, snapshot.away_until
            ),
            pool=pool.name,
            state=chosen.state,
        )

    def _pool_fallback(
        self,
        rule: str,
        pool: PoolConfig,
        now: datetime,
        explanation: dict[str, Any],
        skipped: list[Skip],
        exclude: frozenset[str] = frozenset(),
        away_until: dict[str, datetime] | None = None,
    ) -> RoutingDecision:
        """Nobody in the pool could take the lead: its fallback does, and says so."""
        why = f"nobody in pool {pool.name!r} could take it{_skips(skipped)}"
        fallback = pool.fallback
        explanation["fallback"] = fallback.model_dump(mode="json") if fallback else None
        common = {"rule": rule, "team": pool.name, "pool": pool.name, "fallback": True}
        if fallback is not None and fallback.rep is not None:
            rep = self.reps.get(fallback.rep)
            if (
                rep is not None
                and rep.active
                and rep.email not in exclude
                and available(rep, now, away_until) is None
            ):
                explanation["chosen"] = rep.email
                return RoutingDecision(
                    owner=None,
                    reason=f"rule {rule!r}: {why}; the pool's fallback {rep.name} takes it",
                    rep=rep.email,
                    config_version=self.version,
                    explanation=explanation,
                    **common,
                )
        if fallback is not None and fallback.queue is not None:
            return RoutingDecision(
                owner=None,
                reason=f"rule {rule!r}: {why}; queued in {fallback.queue!r}",
                queue=fallback.queue,
                config_version=self.version,
                explanation=explanation,
                **common,
            )
        return RoutingDecision(
            owner=None,
            reason=f"rule {rule!r}: {why}, and the pool has no fallback that can take it",
            config_version=self.version,
            explanation=explanation,
            **common,
        )


def _skips(skipped: list[Skip]) -> str:
    if not skipped:
        return ""
    return "; skipped " + ", ".join(f"{s.rep} ({s.reason.value})" for s in skipped)
