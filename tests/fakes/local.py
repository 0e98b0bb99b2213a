"""The embedded CRM behind the same control surface as the vendor fakes, so the contract
suite runs the same tests against it. Nobody but Leadflow writes to the embedded CRM,
and it has no network to fail: the ``user_*`` and ``fail`` methods say so."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import pytest
from sqlalchemy import select

from connectors.base import CRM
from connectors.local import LocalCRM
from store.db import Database
from store.models import Rep
from store.models_crm import CrmConversion, CrmRecord, CrmTaskRow


class LocalFake:
    url = ""

    def __init__(self, db: Database) -> None:
        self._db = db

    def connector(self) -> CRM:
        return LocalCRM(self._db)

    def add_user(self, email: str, name: str, *, active: bool = True) -> str:
        owner_id = f"local-{email}"
        with self._db.session() as session:
            session.add(Rep(name=name, email=email.lower(), crm_owner_id=owner_id, active=active))
        return owner_id

    def add_account(self, name: str, domain: str | None, owner_id: str | None) -> str:
        return LocalCRM(self._db).upsert_account(name, domain, owner_id).crm_id

    def lead_ids(self, email: str) -> list[str]:
        with self._db.read() as session:
            return list(
                session.scalars(select(CrmRecord.id).where(CrmRecord.email == email.lower()))
            )

    def lead_owner(self, crm_id: str) -> str | None:
        with self._db.read() as session:
            record = session.get(CrmRecord, crm_id)
            return record.owner_id if record else None

    def lead_status(self, crm_id: str) -> str | None:
        with self._db.read() as session:
            record = session.get(CrmRecord, crm_id)
            return record.status if record else None

    def in_nurture(self, crm_id: str, list_name: str) -> bool:
        with self._db.read() as session:
            record = session.get(CrmRecord, crm_id)
            return record is not None and list_name in (record.nurture_lists or [])

    def task_ids(self, crm_id: str) -> list[str]:
        with self._db.read() as session:
            return list(
                session.scalars(select(CrmTaskRow.id).where(CrmTaskRow.crm_lead_id == crm_id))
            )

    def deal_ids(self, crm_id: str) -> list[str]:
        with self._db.read() as session:
            return list(
                session.scalars(
                    select(CrmConversion.deal_id).where(CrmConversion.crm_lead_id == crm_id)
                )
            )

    def user_sets_status(self, crm_id: str, kind: Literal["contacted", "disqualified"]) -> None:
        pytest.skip("nobody but Leadflow writes to the embedded CRM")

    def user_sets_owner(self, crm_id: str, owner_id: str) -> None:
        pytest.skip("nobody but Leadflow writes to the embedded CRM")

    def user_closes_deal(self, crm_id: str, *, won: bool, amount: Decimal) -> str:
        pytest.skip("nobody but Leadflow writes to the embedded CRM")

    def fail(self, kind: str, *, times: int = 1, ratio: float | None = None) -> None:
        pytest.skip("the embedded CRM has no network to fail")

    def heal(self) -> None:
        return None

    def calls(self) -> int:
        return 0
