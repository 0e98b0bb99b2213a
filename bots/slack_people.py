"""Who clicked: a Slack user as Leadflow knows them (a rep by Slack user id, else by the
email Slack has for them), and whether they may act on a lead: only its owner, the
manager of the pool that routed it, or an admin of the admin app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.lead import normalize_email
from domain.users import Role
from store import config as config_store
from store import users as user_store
from store.db import Database
from store.models import Lead, Rep


@dataclass(frozen=True)
class Actor:
    slack_id: str
    email: str | None
    name: str


@dataclass(frozen=True)
class Permission:
    allowed: bool
    owner_name: str | None  # who the lead belongs to, for a refusal
    stage: str | None
    found: bool = True


def rep_by_slack_id(db: Database, slack_id: str) -> Actor | None:
    with db.read() as session:
        rep = session.scalars(select(Rep).where(Rep.slack_user_id == slack_id)).first()
        return Actor(slack_id, rep.email, rep.name) if rep is not None else None


def actor_from_profile(slack_id: str, user: dict[str, Any]) -> Actor:
    """An actor from Slack's ``users.info`` answer (the email needs ``users:read.email``)."""
    profile = user.get("profile") or {}
    email = profile.get("email")
    name = profile.get("real_name") or user.get("real_name") or user.get("name") or slack_id
    return Actor(slack_id, normalize_email(email) if email else None, str(name))


def permission(db: Database, lead_id: str, actor: Actor) -> Permission:
    with db.read() as session:
        lead = session.get(Lead, lead_id)
        if lead is None:
            return Permission(False, None, None, found=False)
        owner = lead.owner
        owner_name = owner.name if owner is not None else None
        if actor.email is None:
            return Permission(False, owner_name, lead.stage)
        if owner is not None and owner.email == actor.email:
            return Permission(True, owner_name, lead.stage)
        allowed = _manages(session, lead, actor.email) or _is_admin(session, actor.email)
        return Permission(allowed, owner_name, lead.stage)


def _manages(session: Session, lead: Lead, email: str) -> bool:
    decision: dict[str, Any] = (lead.routing or {}).get("decision") or {}
    pool_name = decision.get("pool")
    found = config_store.published(session)
    if not pool_name or found is None:
        return False
    pool = next((p for p in found[1].pools if p.name == pool_name), None)
    return pool is not None and pool.manager == email


def _is_admin(session: Session, email: str) -> bool:
    user = user_store.user_by_email(session, email)
    return user is not None and user.active and Role(user.role) is Role.admin


def rep_timezone(session: Session, email: str) -> ZoneInfo:
    """A rep's time zone in the published configuration (UTC when not found)."""
    found = config_store.published(session)
    if found is not None:
        for rep in found[1].reps:
            if rep.email == email:
                return ZoneInfo(rep.timezone)
    return ZoneInfo("UTC")
