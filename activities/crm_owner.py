"""The CRM user a rep's records are given to, in one place for every CRM write.

The embedded CRM takes the configured ``crm_owner_id`` (the rep's email when none). A
vendor CRM takes only a user ``leadflow reps sync`` saw there and linked to the rep
(``store.crm_users.owner_id_for``); a rep without one is *unlinked*: the record is written
without an owner and the lead is flagged needs attention, never dropped."""

from __future__ import annotations

from dataclasses import dataclass

from domain.lead import Owner
from store import crm_users
from store.db import Database


@dataclass(frozen=True)
class CrmOwnerId:
    """The owner id to write (None: none), and the email of a rep who could not be
    linked to a CRM user."""

    owner_id: str | None
    unlinked: str | None = None


class CrmOwners:
    def __init__(self, db: Database, crm: str) -> None:
        self._db = db
        self._crm = crm

    def of(self, owner: Owner | None) -> CrmOwnerId:
        if owner is None:
            return CrmOwnerId(None)
        if self._crm == "local":
            return CrmOwnerId(owner.crm_owner_id or owner.email)
        with self._db.read() as session:
            found = crm_users.owner_id_for(session, self._crm, owner.email, owner.crm_owner_id)
        return CrmOwnerId(found) if found else CrmOwnerId(None, unlinked=owner.email)
