"""Reps, teams and the round-robin turn counter."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.lead import Owner
from domain.routing import RepCandidate
from store.models import Rep, Team

DEMO_TEAM = "Inbound"
DEMO_REPS = [
    ("Avery Park", "avery.park@example.com", "U0DEMOAVERY"),
    ("Jordan Lee", "jordan.lee@example.com", "U0DEMOJORDAN"),
    ("Sam Rivera", "sam.rivera@example.com", "U0DEMOSAM"),
]


def owner_of(rep: Rep) -> Owner:
    return Owner(
        rep_id=rep.id,
        name=rep.name,
        email=rep.email,
        crm_owner_id=rep.crm_owner_id,
        slack_user_id=rep.slack_user_id,
    )


def team_by_name(session: Session, name: str) -> Team | None:
    return session.scalars(select(Team).where(Team.name == name)).first()


def candidates(session: Session, team_id: int) -> list[RepCandidate]:
    """Active reps of a team with a positive weight, in id order."""
    reps = session.scalars(
        select(Rep)
        .where(Rep.team_id == team_id, Rep.active.is_(True), Rep.weight > 0)
        .order_by(Rep.id)
    )
    return [RepCandidate(owner=owner_of(r), weight=r.weight) for r in reps]


def take_turn(session: Session, team_id: int) -> int:
    """Claim the team's next round-robin turn. Atomic on SQLite (the transaction holds the
    write lock) and on PostgreSQL (the UPDATE locks the row until commit)."""
    new_value = session.execute(
        update(Team)
        .where(Team.id == team_id)
        .values(next_turn=Team.next_turn + 1)
        .returning(Team.next_turn)
    ).scalar_one()
    return int(new_value) - 1


def get_rep(session: Session, rep_id: int) -> Rep | None:
    return session.get(Rep, rep_id)


def list_reps(session: Session) -> list[Rep]:
    return list(session.scalars(select(Rep).order_by(Rep.id)))


def seed_demo(session: Session, team_name: str = DEMO_TEAM) -> bool:
    """Create a demo team and three reps when there are no reps at all. Returns whether
    anything was created."""
    if session.scalars(select(Rep.id).limit(1)).first() is not None:
        return False
    team = team_by_name(session, team_name)
    if team is None:
        team = Team(name=team_name)
        session.add(team)
        session.flush()
    for index, (name, email, slack_id) in enumerate(DEMO_REPS, start=1):
        session.add(
            Rep(
                name=name,
                email=email,
                crm_owner_id=f"local-owner-{index}",
                slack_user_id=slack_id,
                team_id=team.id,
            )
        )
    return True
