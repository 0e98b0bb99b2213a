"""Linking reps to the CRM's users: pure, so that ``leadflow reps sync``, the worker's
start and the tests decide the same way.

A rep is linked to the CRM user the configuration names (``crm_owner_id``) when that user
is active, else to the active user with the rep's email (any case). An inactive user or
an archived owner is never linked, even when the email matches: records would be given
to someone who cannot work them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel

from domain.crm import CrmOwner


class RepToLink(BaseModel):
    email: str
    name: str
    configured_owner_id: str | None = None


class RepLink(BaseModel):
    """How one rep is linked; ``owner_id`` None: not linked, ``problem`` says why."""

    email: str
    name: str
    owner_id: str | None = None
    owner_name: str | None = None
    by: Literal["configuration", "email"] | None = None
    problem: str | None = None


class LinkReport(BaseModel):
    crm: str
    owners_seen: int
    active_owners: int
    links: list[RepLink]

    @property
    def linked(self) -> list[RepLink]:
        return [link for link in self.links if link.owner_id is not None]

    @property
    def unlinked(self) -> list[RepLink]:
        return [link for link in self.links if link.owner_id is None]


def link_reps(crm: str, reps: Iterable[RepToLink], owners: Iterable[CrmOwner]) -> LinkReport:
    """Each rep's link to a user of ``crm`` (see the module docstring)."""
    everyone = list(owners)
    by_id = {o.id: o for o in everyone}
    active_by_email: dict[str, CrmOwner] = {}
    inactive_emails: set[str] = set()
    for owner in everyone:
        email = owner.email.strip().casefold()
        if owner.active:
            active_by_email.setdefault(email, owner)
        else:
            inactive_emails.add(email)
    links = []
    for rep in reps:
        email = rep.email.strip().casefold()
        configured = by_id.get(rep.configured_owner_id) if rep.configured_owner_id else None
        link = RepLink(email=rep.email, name=rep.name)
        if configured is not None and configured.active:
            link.owner_id, link.owner_name, link.by = (
                configured.id,
                configured.name,
                "configuration",
            )
        elif email in active_by_email:
            owner = active_by_email[email]
            link.owner_id, link.owner_name, link.by = owner.id, owner.name, "email"
        elif configured is not None:
            link.problem = (
                f"the CRM user {configured.id} named by crm_owner_id is inactive, and no "
                "active CRM user has this email"
            )
        elif email in inactive_emails:
            link.problem = "the CRM user with this email is inactive (or archived)"
        else:
            link.problem = "no CRM user has this email"
        links.append(link)
    return LinkReport(
        crm=crm,
        owners_seen=len(everyone),
        active_owners=sum(1 for o in everyone if o.active),
        links=links,
    )
