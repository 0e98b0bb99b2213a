"""The embedded local CRM: lead records in the app database, for development and demos.
It behaves like a CRM that dedupes leads by email."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors.base import InvalidRecord
from domain.crm import CrmLeadData, CrmLeadRef
from store.db import Database
from store.models import CrmRecord, utcnow


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

    def ping(self) -> None:
        self._db.ping()
