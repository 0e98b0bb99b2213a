"""The embedded local CRM's lifecycle writes on SQLite and PostgreSQL: status, nurture
lists, follow-up tasks and the conversion of a won lead, each safe to repeat."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from connectors.base import InvalidRecord
from connectors.local import LocalCRM
from domain.crm import CrmLeadData, CrmTask, DealWon, LeadStatus
from store.db import Database
from store.models_crm import CrmAccount, CrmConversion, CrmRecord, CrmTaskRow

DEAL = DealWon(
    name="Acme - 50 seats",
    amount=Decimal("48000.50"),
    currency="usd",
    close_date=date(2026, 12, 8),
)


def lead(crm: LocalCRM, email: str = "jane@acme.example", company: str | None = "Acme") -> str:
    ref = crm.upsert_lead(
        CrmLeadData(email=email, company=company, owner_id="local-owner-1", leadflow_id="x"), "k"
    )
    return ref.crm_id


def record(db: Database, crm_id: str) -> CrmRecord:
    with db.read() as session:
        found = session.get(CrmRecord, crm_id)
        assert found is not None
        return found


def count(db: Database, model: type[object]) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_new_leads_are_open_and_status_changes_are_idempotent(db: Database) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    assert (record(db, crm_id).status, record(db, crm_id).status_reason) == ("open", None)
    for _ in range(2):
        crm.set_status(crm_id, LeadStatus.disqualified, "no budget")
    stored = record(db, crm_id)
    assert (stored.status, stored.status_reason) == ("disqualified", "no budget")
    crm.set_status(crm_id, LeadStatus.working, None)
    stored = record(db, crm_id)
    assert (stored.status, stored.status_reason) == ("working", None)


def test_an_upsert_keeps_the_status(db: Database) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    crm.set_status(crm_id, LeadStatus.nurturing, "not now")
    lead(crm)
    assert record(db, crm_id).status == "nurturing"


def test_nurture_membership_is_added_and_removed_once(db: Database) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    crm.set_nurture(crm_id, False, "Inbound nurture")  # not a member: nothing to remove
    for _ in range(2):
        crm.set_nurture(crm_id, True, "Inbound nurture")
    crm.set_nurture(crm_id, True, "Lost deals")
    assert record(db, crm_id).nurture_lists == ["Inbound nurture", "Lost deals"]
    for _ in range(2):
        crm.set_nurture(crm_id, False, "Inbound nurture")
    assert record(db, crm_id).nurture_lists == ["Lost deals"]


def test_concurrent_nurture_changes_of_one_lead_are_all_kept(db: Database) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    names = [f"list {n}" for n in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda name: crm.set_nurture(crm_id, True, name), names))
    assert sorted(record(db, crm_id).nurture_lists or []) == sorted(names)


def test_a_task_is_created_once_per_idempotency_key(db: Database) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    task = CrmTask(
        crm_id=crm_id, owner_id="local-owner-1", subject="Call Jane", due=date(2026, 12, 9)
    )
    first = crm.create_task(task, "lead-x:task:first-contact")
    again = crm.create_task(
        task.model_copy(update={"subject": "Other"}), "lead-x:task:first-contact"
    )
    other = crm.create_task(task, "lead-x:task:follow-up")
    assert first == again != other
    assert first.startswith("LT-")
    assert count(db, CrmTaskRow) == 2
    with db.read() as session:
        row = session.get(CrmTaskRow, first)
        assert row is not None
        assert (row.crm_lead_id, row.subject, row.due) == (crm_id, "Call Jane", date(2026, 12, 9))


def test_concurrent_task_creations_with_one_key_leave_one_task(db: Database) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    task = CrmTask(crm_id=crm_id, owner_id=None, subject="Call", due=date(2026, 12, 9))
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(lambda _: crm.create_task(task, "same"), range(16)))
    assert len(ids) == 1
    assert count(db, CrmTaskRow) == 1


def test_converting_twice_gives_the_first_conversion(db: Database) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    first = crm.convert_lead(crm_id, DEAL, "lead-x:convert")
    again = crm.convert_lead(crm_id, DEAL.model_copy(update={"amount": Decimal(1)}), "other")
    assert first.created and not again.created
    assert again.model_dump(exclude={"created"}) == first.model_dump(exclude={"created"})
    assert record(db, crm_id).status == "converted"
    with db.read() as session:
        conversion = session.scalars(select(CrmConversion)).one()
        account = session.get(CrmAccount, first.account_id)
    assert (conversion.amount, conversion.currency, conversion.owner_id) == (
        "48000.50",
        "USD",
        "local-owner-1",
    )
    assert account is not None
    assert (account.name, account.domain, account.owner_id) == (
        "Acme",
        "acme.example",
        "local-owner-1",
    )
    # The new account is found for the next lead of that company.
    match = crm.find_account(
        email_domain="acme.example", website_domain=None, company=None, free_mail=False
    )
    assert match is not None and match.account.crm_id == first.account_id


def test_a_converted_lead_joins_the_existing_account_of_its_company(db: Database) -> None:
    crm = LocalCRM(db)
    crm.seed_demo_accounts()
    crm_id = lead(crm, "max@globex.example", company="GLOBEX corp.")
    conversion = crm.convert_lead(crm_id, DEAL, "k")
    with db.read() as session:
        account = session.get(CrmAccount, conversion.account_id)
    assert account is not None and account.name == "Globex Corporation"
    assert count(db, CrmAccount) == 2


def test_concurrent_conversions_of_one_lead_leave_one_conversion(db: Database) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: crm.convert_lead(crm_id, DEAL, f"k{n}"), range(16)))
    assert sum(r.created for r in results) == 1
    assert len({(r.account_id, r.contact_id, r.deal_id) for r in results}) == 1
    assert count(db, CrmConversion) == 1
    assert count(db, CrmAccount) == 1


def test_concurrent_conversions_of_one_new_company_share_one_account(db: Database) -> None:
    crm = LocalCRM(db)
    ids = [lead(crm, f"person{n}@initrode.example", company="Initrode") for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda crm_id: crm.convert_lead(crm_id, DEAL, "k"), ids))
    assert all(r.created for r in results)
    assert len({r.account_id for r in results}) == 1
    assert count(db, CrmConversion) == 8


def test_a_converted_lead_keeps_its_status(db: Database) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    with pytest.raises(InvalidRecord, match="by conversion only"):
        crm.set_status(crm_id, LeadStatus.converted, None)
    crm.convert_lead(crm_id, DEAL, "k")
    crm.set_status(crm_id, LeadStatus.converted, None)  # already so: nothing to do
    with pytest.raises(InvalidRecord, match="is converted"):
        crm.set_status(crm_id, LeadStatus.working, None)
    assert record(db, crm_id).status == "converted"


@pytest.mark.parametrize(
    "call",
    [
        lambda crm: crm.set_status("LC-MISSING", LeadStatus.working, None),
        lambda crm: crm.set_nurture("LC-MISSING", True, "Inbound nurture"),
        lambda crm: crm.create_task(
            CrmTask(crm_id="LC-MISSING", owner_id=None, subject="Call", due=date(2026, 1, 1)),
            "k",
        ),
        lambda crm: crm.convert_lead("LC-MISSING", DEAL, "k"),
    ],
    ids=["set_status", "set_nurture", "create_task", "convert_lead"],
)
def test_a_missing_lead_is_an_invalid_record(
    db: Database, call: Callable[[LocalCRM], object]
) -> None:
    with pytest.raises(InvalidRecord, match="no lead 'LC-MISSING'"):
        call(LocalCRM(db))
    assert count(db, CrmTaskRow) == count(db, CrmConversion) == 0


@pytest.mark.parametrize(
    ("deal", "message"),
    [
        (DEAL.model_copy(update={"currency": "dollars"}), "ISO 4217"),
        (DEAL.model_copy(update={"amount": Decimal(-1)}), "amount"),
        (DEAL.model_copy(update={"name": ""}), "deal name"),
    ],
)
def test_a_deal_the_crm_cannot_store_is_an_invalid_record(
    db: Database, deal: DealWon, message: str
) -> None:
    crm = LocalCRM(db)
    crm_id = lead(crm)
    with pytest.raises(InvalidRecord, match=message):
        crm.convert_lead(crm_id, deal, "k")
    assert record(db, crm_id).status == "open"
