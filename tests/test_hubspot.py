"""The HubSpot connector against the HubSpot fake, through hubspot-api-client over real
HTTP: the traps of HubSpot's API, one by one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from connectors.base import AuthError, InvalidRecord, RateLimited, RetryableError
from connectors.hubspot import HubSpotCRM
from domain.crm import CrmLeadData, CrmNotice, CrmTask, DealWon, LeadStatus
from settings import Settings
from tests.fakes.hubspot_api import FakeHubSpot, running_hubspot


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with running_hubspot() as running:
        yield running


@pytest.fixture
def crm(fake: FakeHubSpot) -> HubSpotCRM:
    return fake.connector()


def lead(
    email: str = "jo@acme-robotics.com", owner: str | None = None, **fields: object
) -> CrmLeadData:
    data = {"first_name": "Jo", "company": "Acme Robotics", "leadflow_id": "lf-1", **fields}
    return CrmLeadData.model_validate({"email": email, "owner_id": owner, **data})


def person_creates_contact(fake: FakeHubSpot, email: str, **values: str) -> str:
    """A contact someone created in HubSpot before Leadflow saw the lead."""
    return fake.store.create("contacts", {"email": email, **values}, []).id


# ------------------------------------------------------------------------------ leads


def test_conflict_409_names_the_contact_to_update(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    existing = person_creates_contact(fake, "jo@acme-robotics.com", hs_lead_status="CONNECTED")
    ref = crm.upsert_lead(lead("Jo@Acme-Robotics.com", title="CTO"), "k1")
    assert (ref.crm_id, ref.created) == (existing, False)
    assert fake.lead_ids("jo@acme-robotics.com") == [existing]
    stored = fake.contact(existing)
    assert stored["jobtitle"] == "CTO" and stored["leadflow_id"] == "lf-1"
    assert stored["hs_lead_status"] == "CONNECTED"  # NEW is for new contacts only


def test_create_applied_then_504_is_a_success_on_retry(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    crm.upsert_lead(lead("warm@acme-robotics.com"), "warm-up")
    fake.fail("5xx", variant="after")
    with pytest.raises(RetryableError):
        crm.upsert_lead(lead(), "k1")
    assert len(fake.lead_ids("jo@acme-robotics.com")) == 1  # the write went through
    again = crm.upsert_lead(lead(), "k1")  # Temporal's retry: HubSpot answers 409
    assert fake.lead_ids("jo@acme-robotics.com") == [again.crm_id]
    assert fake.lead_status(again.crm_id) == "NEW"


def test_upsert_does_not_lean_on_the_lagging_search(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    fake.store.search_lag_s = 30.0  # HubSpot's search index trails writes
    first = crm.upsert_lead(lead(), "k1")
    again = crm.upsert_lead(lead(first_name="Joanna"), "k2")
    assert (again.crm_id, again.created) == (first.crm_id, False)
    assert fake.lead_ids("jo@acme-robotics.com") == [first.crm_id]
    assert fake.calls_to("POST", "/search") == 0


def test_employee_count_is_written_as_the_dropdown_band(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    ref = crm.upsert_lead(lead(company_size=120, score=77), "k")
    assert fake.contact(ref.crm_id)["numemployees"] == "100-500"
    read = crm.get_lead(ref.crm_id)
    assert read is not None and read.company_size == 100 and read.score == 77
    assert crm.get_lead("424242") is None


# ----------------------------------------------------------------------------- owners


def test_owners_are_paged_and_archived_ones_inactive(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    active = [fake.add_user(f"rep{i}@example.com", f"Rep {i}") for i in range(150)]
    archived = fake.add_user("left@example.com", "Left Company", active=False)
    owners = {o.id: o for o in crm.list_owners()}
    assert set(active) <= set(owners) and len(owners) == 150 + 1 + 1  # + the account admin
    assert not owners[archived].active and owners[archived].email == "left@example.com"
    assert all(owners[i].active for i in active)
    assert fake.calls_to("GET", "/crm/v3/owners") == 3  # two pages of 100, then archived


def test_owner_field_takes_the_owner_id_not_the_user_id(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    owner_id = fake.add_user("ada@example.com", "Ada Lovelace")
    user_id = str(next(o.user_id for o in fake.store.owners if o.id == owner_id))
    assert user_id != owner_id
    ref = crm.upsert_lead(lead(owner=owner_id), "k")
    assert ref.owner_id == owner_id and fake.lead_owner(ref.crm_id) == owner_id
    with pytest.raises(InvalidRecord, match="not a valid owner id"):
        crm.upsert_lead(lead("other@acme-robotics.com", owner=user_id), "k2")
    gone = fake.add_user("gone@example.com", "Gone", active=False)
    with pytest.raises(InvalidRecord):
        crm.upsert_lead(lead("third@acme-robotics.com", owner=gone), "k3")


# ------------------------------------------------------------------ custom properties


def test_custom_properties_are_created_once(fake: FakeHubSpot) -> None:
    assert "leadflow_id" not in fake.store.props["contacts"]
    connectors = [fake.connector(), fake.connector()]
    errors: list[BaseException] = []

    def upsert(i: int) -> None:
        try:
            connectors[i % 2].upsert_lead(lead(f"p{i}@acme-robotics.com"), f"k{i}")
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=upsert, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    created = sorted(fake.store.created_properties)
    expected = [
        ("contacts", "leadflow_id"),
        ("contacts", "leadflow_score"),
        ("contacts", "leadflow_status_reason"),
    ]
    assert created == expected
    assert fake.store.created_groups == [("contacts", "leadflow")]


def test_a_deleted_custom_property_is_created_again(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    crm.upsert_lead(lead(score=10), "k")
    del fake.store.props["contacts"]["leadflow_score"]  # an admin deleted it
    with pytest.raises(RetryableError, match="created again"):
        crm.upsert_lead(lead(score=20), "k")
    ref = crm.upsert_lead(lead(score=20), "k")
    assert fake.contact(ref.crm_id)["leadflow_score"] == "20"


# ----------------------------------------------------------------------------- errors


def test_429_is_rate_limited_and_never_retried_by_the_sdk(
    fake: FakeHubSpot, crm: HubSpotCRM
) -> None:
    ref = crm.upsert_lead(lead(), "warm-up")
    for variant, wait in (("retry_after", 1.0), ("headers_only", 10.0)):
        for method in ("POST", "GET"):  # urllib3 would retry a GET's 429 by itself
            before = fake.calls()
            fake.fail("429", variant=variant)
            with pytest.raises(RateLimited) as limited:
                if method == "POST":
                    crm.upsert_lead(lead(), "k")
                else:
                    crm.get_lead(ref.crm_id)
            assert limited.value.retry_after == wait
            assert fake.calls() == before + 1
    before = fake.calls()
    fake.fail("5xx")
    with pytest.raises(RetryableError):
        crm.ping()
    assert fake.calls() == before + 1


def test_validation_error_is_invalid_record_in_words(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    with pytest.raises(InvalidRecord) as refused:
        crm.upsert_lead(lead("not-an-email"), "k")
    assert "email: Email address not-an-email is invalid" in str(refused.value)
    assert refused.value.vendor_message.startswith("Property values were not valid")
    fake.fail("validation")
    with pytest.raises(InvalidRecord, match="Enter only letters"):
        crm.upsert_lead(lead(), "k")


def test_timeouts_and_refused_connections_are_retryable(fake: FakeHubSpot) -> None:
    fake.timeout_s = 0.5  # a short wait here; the other tests keep room for a busy machine
    fake.fail("slow")
    with pytest.raises(RetryableError):
        fake.connector().ping()
    closed = HubSpotCRM(token=fake.token, base_url="http://127.0.0.1:9", timeout_s=0.5)
    with pytest.raises(RetryableError):
        closed.ping()


def test_bad_token_and_missing_scope_are_auth_errors(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    fake.fail("expired_session")
    with pytest.raises(AuthError, match="invalid or revoked"):
        crm.ping()
    assert [i.name for i in crm.check(None)] == ["token"]
    fake.heal()
    fake.revoke_scope("crm.objects.deals.write")
    ref = crm.upsert_lead(lead(), "k")
    deal = DealWon(name="D", amount=Decimal(1), currency="USD", close_date=date(2030, 1, 1))
    with pytest.raises(AuthError, match=r"crm\.objects\.deals\.write"):
        crm.convert_lead(ref.crm_id, deal, "c")
    lines = {i.name: i for i in crm.check("Nurture")}
    assert not lines["scope crm.objects.deals.write"].ok
    assert all(i.ok for n, i in lines.items() if n != "scope crm.objects.deals.write")


def test_settings_build_the_connector() -> None:
    settings = Settings(_env_file=None, crm_backend="hubspot", hubspot_token="pat-na1-x")
    assert HubSpotCRM.from_settings(settings).name == "hubspot"
    with pytest.raises(AuthError):
        HubSpotCRM.from_settings(
            Settings(_env_file=None, crm_backend="hubspot", hubspot_token=None)
        )


# --------------------------------------------------------------- status, lists, tasks


def test_status_maps_to_lead_status_and_reason(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    ref = crm.upsert_lead(lead(), "k")
    crm.set_status(ref.crm_id, LeadStatus.disqualified, "no budget")
    stamp = fake.contact(ref.crm_id)["lastmodifieddate"]
    crm.set_status(ref.crm_id, LeadStatus.disqualified, "no budget")
    values = fake.contact(ref.crm_id)
    assert (values["hs_lead_status"], values["leadflow_status_reason"]) == (
        "UNQUALIFIED",
        "no budget",
    )
    assert values["lastmodifieddate"] == stamp  # the same values again change nothing
    crm.set_status(ref.crm_id, LeadStatus.nurturing, None)
    values = fake.contact(ref.crm_id)
    assert values["hs_lead_status"] == "BAD_TIMING" and "leadflow_status_reason" not in values
    with pytest.raises(InvalidRecord):
        crm.set_status(ref.crm_id, LeadStatus.converted, None)


def test_nurture_list_membership_is_idempotent(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    ref = crm.upsert_lead(lead(), "k")
    for _ in range(2):
        crm.set_nurture(ref.crm_id, True, "Nurture")
    assert fake.in_nurture(ref.crm_id, "Nurture")
    for _ in range(2):
        crm.set_nurture(ref.crm_id, False, "Nurture")
    assert not fake.in_nurture(ref.crm_id, "Nurture")
    with pytest.raises(InvalidRecord, match="'Webinar leads'"):
        crm.set_nurture(ref.crm_id, True, "Webinar leads")
    fake.add_list("Everyone", "DYNAMIC")
    with pytest.raises(InvalidRecord, match="static"):
        crm.set_nurture(ref.crm_id, True, "Everyone")
    with pytest.raises(InvalidRecord):
        crm.set_nurture("424242", True, "Nurture")


def test_task_is_created_once_even_when_the_answer_was_lost(
    fake: FakeHubSpot, crm: HubSpotCRM
) -> None:
    owner = fake.add_user("ada@example.com", "Ada Lovelace")
    ref = crm.upsert_lead(lead(owner=owner), "k")
    task = CrmTask(crm_id=ref.crm_id, owner_id=owner, subject="Call Jo", due=date(2030, 3, 4))
    fake.fail("5xx", variant="after")
    with pytest.raises(RetryableError):
        crm.create_task(task, "task-1")
    [created] = fake.task_ids(ref.crm_id)
    assert crm.create_task(task, "task-1") == created
    assert fake.task_ids(ref.crm_id) == [created]
    values = fake.record("tasks", created)
    assert values["hs_task_status"] == "NOT_STARTED" and values["hubspot_owner_id"] == owner
    later = task.model_copy(update={"due": date(2030, 3, 5)})
    assert crm.create_task(later, "task-2") != created
    with pytest.raises(InvalidRecord):
        crm.create_task(task.model_copy(update={"crm_id": "424242"}), "task-3")


# ------------------------------------------------------------------ accounts, converts


def test_accounts_by_domain_then_by_name(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    owner = fake.add_user("am@example.com", "Account Manager")
    company = fake.add_account("Initech Holdings", "www.initech.example", owner)
    by_domain = crm.find_account(
        email_domain="initech.example", website_domain=None, company=None, free_mail=False
    )
    assert by_domain is not None and (by_domain.account.crm_id, by_domain.by) == (
        company,
        "email domain",
    )
    assert by_domain.account.owner_id == owner
    by_name = crm.find_account(
        email_domain="gmail.com", website_domain=None, company="INITECH", free_mail=True
    )
    assert by_name is not None and by_name.by == "company name"
    assert (
        crm.find_account(
            email_domain="gmail.com", website_domain=None, company="Hooli", free_mail=True
        )
        is None
    )


def test_conversion_creates_company_and_won_deal_once(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    owner = fake.add_user("closer@example.com", "Closer")
    ref = crm.upsert_lead(lead(owner=owner), "k")
    deal = DealWon(
        name="Acme — new", amount=Decimal("1250.50"), currency="eur", close_date=date(2030, 6, 1)
    )
    first = crm.convert_lead(ref.crm_id, deal, "c1")
    assert first.created and first.contact_id == ref.crm_id
    values = fake.record("deals", first.deal_id)
    assert (values["dealstage"], values["pipeline"], values["amount"]) == (
        "closedwon",
        "default",
        "1250.50",
    )
    assert (values["deal_currency_code"], values["hubspot_owner_id"]) == ("EUR", owner)
    assert fake.record("companies", first.account_id)["domain"] == "acme-robotics.com"
    assert fake.deal_ids(ref.crm_id) == [first.deal_id]
    assert [i for i, _ in fake.store.associated("deals", first.deal_id, "companies")] == [
        first.account_id
    ]
    assert fake.contact(ref.crm_id)["lifecyclestage"] == "customer"
    second = crm.convert_lead(ref.crm_id, deal, "c2")
    assert not second.created and (second.deal_id, second.account_id) == (
        first.deal_id,
        first.account_id,
    )
    assert len(fake.store.records["companies"]) == 1
    with pytest.raises(InvalidRecord):
        crm.set_status(ref.crm_id, LeadStatus.working, None)


def test_conversion_joins_the_matching_account(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    company = fake.add_account("Acme Robotics Inc.", "acme-robotics.com", None)
    ref = crm.upsert_lead(lead(), "k")
    fake.fail("5xx", variant="after", where="/objects/deals")  # the deal's answer is lost
    deal = DealWon(name="D", amount=Decimal(5), currency="USD", close_date=date(2030, 1, 1))
    with pytest.raises(RetryableError):
        crm.convert_lead(ref.crm_id, deal, "c")
    done = crm.convert_lead(ref.crm_id, deal, "c")
    assert done.account_id == company and not done.created
    assert len(fake.deal_ids(ref.crm_id)) == 1 and len(fake.store.records["companies"]) == 1


# ------------------------------------------------------------------------- changes


def test_changes_since_sees_status_and_won_deal_once(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    ref = crm.upsert_lead(lead(), "k")
    start = crm.changes_since(None)
    assert start.changes == [] and crm.changes_since(start.mark).changes == []
    fake.user_sets_status(ref.crm_id, "contacted")
    searches = fake.calls_to("POST", "/search")
    first = crm.changes_since(start.mark)
    assert fake.calls_to("POST", "/search") - searches == 2  # one page of contacts, of deals
    deal_id = fake.user_closes_deal(ref.crm_id, won=True, amount=Decimal("900"))
    second = crm.changes_since(first.mark)
    seen = {c.change_id: c for c in [*first.changes, *second.changes]}
    contacted = [c for c in seen.values() if c.kind.value == "contacted"]
    won = [c for c in seen.values() if c.kind.value == "won"]
    assert [c.change_id for c in contacted] == [
        f"hubspot:contact:{ref.crm_id}:hs_lead_status=CONNECTED"
    ]
    assert [(c.change_id, c.crm_id, c.amount, c.currency) for c in won] == [
        (f"hubspot:deal:{deal_id}:dealstage=closedwon", ref.crm_id, Decimal("900"), "USD")
    ]
    assert int(second.mark) >= int(first.mark) >= int(start.mark)


def test_webhook_notices_give_the_same_changes_as_polling(
    fake: FakeHubSpot, crm: HubSpotCRM
) -> None:
    owner = fake.add_user("ada@example.com", "Ada Lovelace")
    ref = crm.upsert_lead(lead(), "k")
    start = crm.changes_since(None)
    fake.user_sets_owner(ref.crm_id, owner)
    deal_id = fake.user_closes_deal(ref.crm_id, won=False, amount=Decimal("10"))
    polled = crm.changes_since(start.mark).changes
    notices = [
        CrmNotice(
            notice_id="1",
            object="lead",
            object_id=ref.crm_id,
            fields={"hubspot_owner_id": owner},
            source="CRM_UI",
        ),
        CrmNotice(
            notice_id="2",
            object="deal",
            object_id=deal_id,
            fields={"dealstage": "closedlost"},
            source="INTEGRATION",
        ),
        CrmNotice(
            notice_id="3",
            object="lead",
            object_id=ref.crm_id,
            fields={"firstname": "Joe"},
            source="weird",
        ),
    ]
    heard = [c for n in notices for c in crm.interpret(n)]
    assert sorted(heard, key=lambda c: c.change_id) == sorted(polled, key=lambda c: c.change_id)
    assert {c.kind.value for c in heard} == {"owner_changed", "lost"}


def test_many_changes_are_read_over_several_polls(fake: FakeHubSpot, crm: HubSpotCRM) -> None:
    crm.upsert_lead(lead(), "k")  # makes sure of the custom properties
    start = crm.changes_since(None)
    ids = [
        person_creates_contact(
            fake, f"c{i}@example.com", leadflow_id=f"lf-{i}", hs_lead_status="CONNECTED"
        )
        for i in range(450)
    ]
    seen: set[str] = set()
    mark = start.mark
    for _ in range(3):
        page = crm.changes_since(mark)
        seen |= {c.crm_id for c in page.changes}
        mark = page.mark
    assert seen == set(ids)
    assert fake.calls_to("POST", "/contacts/search") <= 2 + 3 * 2
