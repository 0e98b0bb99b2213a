"""Reps and teams as stored (the configuration document is their source; see
``store.config``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.lead import Owner
from store.models import Rep, Team
from store.models_crm import CrmUser

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


def email_for_crm_owner(session: Session, owner_id: str, crm: str | None = None) -> str | None:
    """The email of the rep a CRM owner id (or email) belongs to: configured with that
    id, having that email, or linked to that user of ``crm`` by ``leadflow reps sync``."""
    rep = session.scalars(
        select(Rep).where((Rep.crm_owner_id == owner_id) | (Rep.email == owner_id.casefold()))
    ).first()
    if rep is not None:
        return rep.email
    if crm is None:
        return None
    user = session.get(CrmUser, (crm, owner_id))
    if user is None or not user.active:
        return None
    return session.scalars(select(Rep.email).where(Rep.email == user.email)).first()


def active_rep_by_email(session: Session, email: str) -> Rep | None:
    """The active rep with this email (any case), or None."""
    rep = session.scalars(select(Rep).where(Rep.email == email.strip().lower())).first()
    return rep if rep is not None and rep.active else None


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
