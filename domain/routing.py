"""How a lead is routed to a rep.

The default strategy is weighted round-robin over the active reps of one team: a rep of
weight 2 gets two turns per cycle, spread across the cycle rather than back to back; weight
0 gets none. The turn counter lives in the store so that concurrent decisions never share a
turn; this module only maps a turn number to a rep.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from domain.lead import Owner


class RepCandidate(BaseModel):
    """A rep as the router sees it."""

    owner: Owner
    weight: int = 1


class RoutingDecision(BaseModel):
    """Who got the lead and why; recorded on the lead's timeline."""

    owner: Owner | None
    team: str
    rule: str
    reason: str
    turn: int | None = None


class NoEligibleRep(Exception):
    """No active rep with a positive weight is available."""


def round_robin_slots(reps: Sequence[RepCandidate]) -> list[RepCandidate]:
    """One cycle of turns, each rep appearing ``weight`` times, evenly interleaved.
    Order is stable: by position in the cycle, then by rep id."""
    slots: list[tuple[float, int, RepCandidate]] = []
    for rep in reps:
        for k in range(max(0, rep.weight)):
            slots.append(((k + 0.5) / rep.weight, rep.owner.rep_id, rep))
    slots.sort(key=lambda s: (s[0], s[1]))
    return [s[2] for s in slots]


def pick_round_robin(reps: Sequence[RepCandidate], turn: int, team: str) -> RoutingDecision:
    """The rep whose turn number ``turn`` is, as a decision with its reason."""
    slots = round_robin_slots(reps)
    if not slots:
        raise NoEligibleRep(f"team {team!r} has no active rep with a positive weight")
    rep = slots[turn % len(slots)]
    return RoutingDecision(
        owner=rep.owner,
        team=team,
        rule="default round-robin",
        reason=(
            f"round-robin turn {turn} of team {team!r}: "
            f"{len(slots)} turn(s) per cycle over {len({s.owner.rep_id for s in slots})} rep(s)"
        ),
        turn=turn,
    )
