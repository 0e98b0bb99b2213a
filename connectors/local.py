"""The embedded local CRM: lead records in the app database, for development and demos.
It behaves like a CRM that dedupes leads by email."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors.base import InvalidRecord
from domain.accounts import Account, AccountMatch, best_match
from domain.crm import CrmLeadData, CrmLeadRef
from store.db import Database
from store.models import CrmAccount, CrmRecord, utcnow

# Accounts of the demo, so that the demo configuration's account-owner rule has owners to
# find: (name, domain, owner's CRM id as in config/demo.yaml).
DEMO_ACCOUNTS = [
    ("Globex Corporation", "globex.example", "local-owner-2"),
    ("Initech", "initech.example", "local-owner-3"),
]


class LocalCRM:
    name = "local"

    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert_lead(self, lead: CrmLeadData, idempotency_key: str) -> CrmLeadRef:  # noqa: ARG002
        # The email is the natural key here, so the idempotency key is not needed.
        return self._upsert(lead, race_retry=True)

    def _upsert(self, lead: CrmLeadData, *, race_retry: bool) -> CrmLeadRef:
        # Keyed by email, so a retry with the same key (or another key for the same
        # person) updates the one record instead of creating a second.
        if not lead.email or "@" not in lead.email:
            raise InvalidRecord(f"invalid email {lead.email!r}")
        fields = lead.model_dump(exclude={"email", "owner_id", "leadflow_id"}, exclude_none=True)
        try:
            with self._db.session() as session:
                record = session.scalars(
                    select(CrmRecord).where(CrmRecord.email == lead.email)
                ).first()
                created = record is None
                if record is None:
                    record = CrmRecord(
                        id=f"LC-{uuid.uuid4().hex[:12].upper()}",
                        email=lead.email,
                        leadflow_id=lead.leadflow_id,
                        fields=fields,
                        owner_id=lead.owner_id,
                    )
                    session.add(record)
                else:
                    record.fields = {**record.fields, **fields}
                    if lead.owner_id is not None:
                        record.owner_id = lead.owner_id
                    record.leadflow_id = lead.leadflow_id
                    record.updated_at = utcnow()
                session.flush()
                return CrmLeadRef(
                    crm=self.name, crm_id=record.id, owner_id=record.owner_id, created=created
                )
        except IntegrityError:
            # A concurrent writer created the same email first (PostgreSQL): once more,
            # which now finds and updates that record.
            if not race_retry:
                raise
            return self._upsert(lead, race_retry=False)

    def get_lead(self, crm_id: str) -> CrmLeadData | None:
        with self._db.session() as session:
            record = session.get(CrmRecord, crm_id)
            if record is None:
                return None
            return CrmLeadData(
                email=record.email,
                owner_id=record.owner_id,
                leadflow_id=record.leadflow_id,
                **record.fields,
            )

    def find_account(
        self,
        *,
        email_domain: str | None,
        website_domain: str | None,
        company: str | None,
        free_mail: bool,
    ) -> AccountMatch | None:
        with self._db.read() as session:
            accounts = [
                Account(crm_id=a.id, name=a.name, domain=a.domain, owner_id=a.owner_id)
                for a in session.scalars(select(CrmAccount))
            ]
        return best_match(
            accounts,
            email_domain=email_domain,
            website_domain=website_domain,
            company=company,
            free_mail=free_mail,
        )

    def upsert_account(self, name: str, domain: str | None, owner_id: str | None) -> Account:
        """Create or update the account of this name (the local CRM's accounts are few
        and named uniquely)."""
        with self._db.session() as session:
            account = session.scalars(select(CrmAccount).where(CrmAccount.name == name)).first()
            if account is None:
                account = CrmAccount(id=f"LA-{uuid.uuid4().hex[:12].upper()}", name=name)
                session.add(account)
            account.domain = domain.casefold() if domain else None
            account.owner_id = owner_id
            session.flush()
            return Account(
                crm_id=account.id, name=account.name, domain=account.domain, owner_id=owner_id
            )

    def ping(self) -> None:
        self._db.ping()

    def seed_demo_accounts(self) -> int:
        """Create the demo accounts when the CRM has none; how many were created."""
        with self._db.read() as session:
            if session.scalars(select(CrmAccount.id).limit(1)).first() is not None:
                return 0
        for name, domain, owner_id in DEMO_ACCOUNTS:
            self.upsert_account(name, domain, owner_id)
        return len(DEMO_ACCOUNTS)
