"""One contract, three CRMs: the embedded CRM, and the Salesforce and HubSpot connectors
driving their vendors' own client libraries over HTTP against the fakes. The same calls
must leave each CRM in the same state, and repeated calls must change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import CRM, InvalidRecord, RateLimited, RetryableError
from domain.crm import CheckItem, CrmLeadData, CrmTask, DealWon, LeadStatus
from store import reps as rep_store
from store.db import Database
from store.migrate import upgrade
from tests.conftest import unique_email
from tests.fakes.control import CrmFake
from tests.fakes.local import LocalFake

VENDORS = ["salesforce", "hubspot"]


@pytest.fixture(params=["local", *VENDORS])
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CrmFake]:
    if request.param == "local":
        database = Database(f"sqlite:///{tmp_path / 'crm.db'}")
        upgrade(database)
        with database.session() as session:
            rep_store.seed_demo(session)
        yield LocalFake(database)
        database.dispose()
    elif request.param == "salesforce":
        from tests.fakes.salesforce_api import running_salesforce

        with running_salesforce() as running:
            yield running
    else:
        from tests.fakes.hubspot_api import running_hubspot

        with running_hubspot() as running:
            yield running


@pytest.fixture
def crm(fake: CrmFake) -> CRM:
    return fake.connector()


def lead(email: str, owner_id: str | None, **fields: object) -> CrmLeadData:
    data: dict[str, object] = {
        "first_name": "Jane",
        "last_name": "Doe",
        "company": "Acme Robotics",
        "title": "VP Sales",
        **fields,
    }
    return CrmLeadData.model_validate(
        {"email": email, "owner_id": owner_id, "leadflow_id": "lf-" + email.split("@")[0], **data}
    )


def test_upsert_is_idempotent_and_keyed_by_email(fake: CrmFake, crm: CRM) -> None:
    owner = fake.add_user("owner.one@example.com", "Owner One")
    email = unique_email()
    first = crm.upsert_lead(lead(email, owner), "k1")
    again = crm.upsert_lead(lead(email, owner), "k1")
    other_key = crm.upsert_lead(lead(email.upper(), owner, title="CEO"), "k2")
    assert first.created and not again.created and not other_key.created
    assert first.crm_id == again.crm_id == other_key.crm_id
    assert fake.lead_ids(email) == [first.crm_id]
    assert fake.lead_owner(first.crm_id) == owner
    stored = crm.get_lead(first.crm_id)
    assert stored is not None and stored.email == email and stored.owner_id == owner


def test_missing_fields_are_filled_not_refused(fake: CrmFake, crm: CRM) -> None:
    email = unique_email()
    ref = crm.upsert_lead(CrmLeadData(email=email, leadflow_id="lf-x"), "k")
    assert fake.lead_ids(email) == [ref.crm_id]


def test_status_and_nurture_list_are_idempotent(fake: CrmFake, crm: CRM) -> None:
    ref = crm.upsert_lead(lead(unique_email(), None), "k")
    crm.set_status(ref.crm_id, LeadStatus.disqualified, "no budget")
    crm.set_status(ref.crm_id, LeadStatus.disqualified, "no budget")
    disqualified = fake.lead_status(ref.crm_id)
    assert disqualified is not None
    crm.set_status(ref.crm_id, LeadStatus.working, None)
    assert fake.lead_status(ref.crm_id) not in (None, disqualified)
    for _ in range(2):
        crm.set_nurture(ref.crm_id, True, "Nurture")
    assert fake.in_nurture(ref.crm_id, "Nurture")
    for _ in range(2):
        crm.set_nurture(ref.crm_id, False, "Nurture")
    assert not fake.in_nurture(ref.crm_id, "Nurture")


def test_tasks_are_created_once_per_key(fake: CrmFake, crm: CRM) -> None:
    owner = fake.add_user("task.owner@example.com", "Task Owner")
    ref = crm.upsert_lead(lead(unique_email(), owner), "k")
    task = CrmTask(crm_id=ref.crm_id, owner_id=owner, subject="Kick-off call", due=date(2027, 1, 5))
    first = crm.create_task(task, "task-1")
    assert crm.create_task(task, "task-1") == first
    assert fake.task_ids(ref.crm_id) == [first]


def test_a_lead_converts_once(fake: CrmFake, crm: CRM) -> None:
    owner = fake.add_user("closer@example.com", "Closer")
    ref = crm.upsert_lead(lead(unique_email(), owner), "k")
    deal = DealWon(
        name="Acme Robotics — new customer",
        amount=Decimal("12500.00"),
        currency="EUR",
        close_date=date(2026, 12, 1),
        owner_id=owner,
    )
    first = crm.convert_lead(ref.crm_id, deal, "convert-1")
    second = crm.convert_lead(ref.crm_id, deal, "convert-2")
    assert first.created and not second.created
    assert (first.account_id, first.contact_id, first.deal_id) == (
        second.account_id,
        second.contact_id,
        second.deal_id,
    )
    assert fake.deal_ids(ref.crm_id) == [first.deal_id]
    with pytest.raises(InvalidRecord):
        crm.set_status(ref.crm_id, LeadStatus.working, None)


def test_unknown_records_are_invalid(crm: CRM) -> None:
    missing = "00Q000000000000AAA" if crm.name == "salesforce" else "999999999"
    with pytest.raises(InvalidRecord):
        crm.set_status(missing, LeadStatus.working, None)


def test_accounts_are_found_by_domain_then_name(fake: CrmFake, crm: CRM) -> None:
    owner = fake.add_user("am@example.com", "Account Owner")
    fake.add_account("Globex Corporation", "globex-contract.example", owner)
    by_domain = crm.find_account(
        email_domain="globex-contract.example",
        website_domain=None,
        company=None,
        free_mail=False,
    )
    assert by_domain is not None and by_domain.account.owner_id == owner
    by_name = crm.find_account(
        email_domain="gmail.com", website_domain=None, company="Globex Corp.", free_mail=True
    )
    assert by_name is not None and by_name.by == "company name"
    assert (
        crm.find_account(
            email_domain="gmail.com", website_domain=None, company="Umbrella", free_mail=True
        )
        is None
    )


def test_owners_list_active_and_inactive(fake: CrmFake, crm: CRM) -> None:
    active = fake.add_user("still.here@example.com", "Still Here")
    gone = fake.add_user("gone@example.com", "Gone", active=False)
    owners = {o.id: o for o in crm.list_owners()}
    assert owners[active].active and owners[active].email == "still.here@example.com"
    assert not owners[gone].active


def test_check_reports_lines(crm: CRM) -> None:
    items = crm.check("Nurture")
    assert items and all(isinstance(i, CheckItem) for i in items)
    assert all(i.ok for i in items), [i for i in items if not i.ok]


# ------------------------------------------------------------ changes made in the CRM


def test_changes_made_in_the_crm_are_seen_once(fake: CrmFake, crm: CRM) -> None:
    owner = fake.add_user("first.owner@example.com", "First")
    other = fake.add_user("second.owner@example.com", "Second")
    ref = crm.upsert_lead(lead(unique_email(), owner), "k")
    start = crm.changes_since(None)
    assert start.changes == []
    fake.user_sets_status(ref.crm_id, "contacted")
    fake.user_sets_owner(ref.crm_id, other)
    first = crm.changes_since(start.mark)
    kinds = {(c.crm_id, c.kind.value, c.owner_id) for c in first.changes}
    assert (ref.crm_id, "contacted", None) in kinds
    assert (ref.crm_id, "owner_changed", other) in kinds
    again = crm.changes_since(first.mark)
    first_ids = {c.change_id for c in first.changes}
    assert {c.change_id for c in again.changes} <= first_ids  # repeats carry the same ids


def test_deal_closed_in_the_crm_is_a_change(fake: CrmFake, crm: CRM) -> None:
    owner = fake.add_user("dealer@example.com", "Dealer")
    ref = crm.upsert_lead(lead(unique_email(), owner), "k")
    start = crm.changes_since(None)
    fake.user_closes_deal(ref.crm_id, won=True, amount=Decimal("900"))
    won = [c for c in crm.changes_since(start.mark).changes if c.kind.value == "won"]
    assert [(c.crm_id, c.amount) for c in won] == [(ref.crm_id, Decimal("900"))]


# ------------------------------------------------------------------------- faults


def test_transient_faults_are_retryable(fake: CrmFake, crm: CRM) -> None:
    fake.fail("5xx")
    with pytest.raises(RetryableError):
        crm.upsert_lead(lead(unique_email(), None), "k")
    fake.fail("429")
    with pytest.raises(RateLimited) as limited:
        crm.upsert_lead(lead(unique_email(), None), "k")
    assert limited.value.retry_after is not None and limited.value.retry_after > 0


def test_validation_errors_are_permanent_with_the_vendor_message(fake: CrmFake, crm: CRM) -> None:
    fake.fail("validation")
    with pytest.raises(InvalidRecord) as refused:
        crm.upsert_lead(lead(unique_email(), None), "k")
    assert refused.value.vendor_message


def test_a_record_has_a_page_where_the_crm_has_pages(fake: CrmFake, crm: CRM) -> None:
    ref = crm.upsert_lead(lead(unique_email(), None), "k")
    url = crm.record_url(ref.crm_id)
    if crm.name == "salesforce":
        assert url is not None and url.endswith(f"/lightning/r/Lead/{ref.crm_id}/view")
    else:  # the embedded CRM has none; HubSpot needs LEADFLOW_HUBSPOT_PORTAL_ID
        assert url is None
