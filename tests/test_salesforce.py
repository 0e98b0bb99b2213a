"""The Salesforce connector against the fake org (tests/fakes/salesforce_api.py), through
the real simple-salesforce over HTTP: the traps of Salesforce's API that the connector
must handle."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import AuthError, InvalidRecord, RateLimited, RetryableError
from connectors.salesforce import SalesforceCRM
from connectors.salesforce_errors import VendorError, classify
from domain.crm import CrmChangeKind, CrmLeadData, CrmNotice, CrmTask, DealWon, LeadStatus
from settings import Settings
from tests.fakes.control import CrmFake
from tests.fakes.salesforce_api import CONSUMER_KEY, FakeSalesforce, running_salesforce


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with running_salesforce() as running:
        control: CrmFake = running  # what the shared contract suite relies on
        assert control.url == running.url
        yield running


def _lead(email: str, **fields: object) -> CrmLeadData:
    return CrmLeadData(email=email, leadflow_id=f"lf-{email}", **fields)


def _deal(amount: str = "1200.50") -> DealWon:
    return DealWon(
        name="Acme platform", amount=Decimal(amount), currency="USD", close_date=date(2026, 12, 1)
    )


def test_lead_writes_turn_the_assignment_rule_off(fake: FakeSalesforce) -> None:
    rep = fake.add_user("sam@example.com", "Sam Seller")
    # Without the header, the org's active assignment rule gives the lead to its queue.
    session = fake.gate.access_token
    answer = requests.post(
        f"{fake.url}/services/data/v62.0/sobjects/Lead/",
        json={"LastName": "Probe", "Company": "Probe Inc", "OwnerId": rep},
        headers={"Authorization": f"Bearer {session}"},
        timeout=5,
    )
    assert answer.status_code == 201
    assert fake.lead_owner(answer.json()["id"]) == fake.org.queue_id

    crm = fake.connector()
    ref = crm.upsert_lead(_lead("ann@acme.example", owner_id=rep), "k1")
    assert ref.created and ref.owner_id == rep
    assert fake.lead_owner(ref.crm_id) == rep
    # The rule runs on updates too: the header is sent there as well.
    again = crm.upsert_lead(_lead("ann@acme.example", title="CTO"), "k2")
    assert (again.crm_id, again.created) == (ref.crm_id, False)
    assert fake.lead_owner(ref.crm_id) == rep == again.owner_id
    crm.set_status(ref.crm_id, LeadStatus.working, None)
    assert fake.lead_owner(ref.crm_id) == rep


def test_blank_company_and_last_name_are_filled(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    work = crm.upsert_lead(_lead("Jo.Smith@Initech.example", company="  ", last_name=""), "k")
    stored = fake.lead(work.crm_id)
    assert (stored["LastName"], stored["Company"]) == ("jo.smith", "initech.example")
    assert stored["Email"] == "jo.smith@initech.example"
    free = crm.upsert_lead(_lead("someone@gmail.com"), "k")
    assert fake.lead(free.crm_id)["Company"] == "[not provided]"
    assert work.owner_id == fake.org.integration_user_id  # read back: no owner was given


def test_retry_after_a_lost_503_leaves_one_lead(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    fake.lose_answers(1)  # the insert happens, its answer is a 503
    with pytest.raises(RetryableError):
        crm.upsert_lead(_lead("lost@acme.example"), "k")
    assert len(fake.lead_ids("lost@acme.example")) == 1
    ref = crm.upsert_lead(_lead("lost@acme.example"), "k")
    assert not ref.created
    assert fake.lead_ids("lost@acme.example") == [ref.crm_id]


def test_inactive_user_with_the_same_email_is_flagged_and_never_owns(fake: FakeSalesforce) -> None:
    gone = fake.add_user("pat@example.com", "Pat Old", active=False)
    current = fake.add_user("pat@example.com", "Pat New")
    for number in range(230):  # more than one page of query results
        fake.add_user(f"user{number}@example.com", f"User {number}")
    owners = fake.connector().list_owners()
    assert len(owners) == 234
    pats = {o.id: o.active for o in owners if o.email == "pat@example.com"}
    assert pats == {gone: False, current: True}
    with pytest.raises(InvalidRecord, match="INACTIVE_OWNER_OR_USER"):
        fake.connector().upsert_lead(_lead("x@acme.example", owner_id=gone), "k")


def test_fixed_token_expiry_is_an_auth_error_without_retrying(fake: FakeSalesforce) -> None:
    crm = fake.token_connector()
    crm.ping()
    fake.fail("expired_session")
    before = fake.calls()
    with pytest.raises(AuthError, match="LEADFLOW_SALESFORCE_ACCESS_TOKEN"):
        crm.get_lead("00QDn0000000099AAA")
    assert fake.calls() - before == 1
    with pytest.raises(AuthError, match="expired"):
        crm.ping()  # the token stays dead: no loop, no login attempt
    assert fake.logins == 0


def test_password_login_logs_in_again_once_on_an_expired_session(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    ref = crm.upsert_lead(_lead("renew@acme.example"), "k")
    assert fake.logins == 1
    fake.fail("expired_session")
    assert crm.get_lead(ref.crm_id) is not None
    assert fake.logins == 2
    fake.fail("expired_session", times=2)  # still expired after the new login
    with pytest.raises(AuthError):
        crm.get_lead(ref.crm_id)
    assert fake.logins == 3


def test_poll_mark_rereads_its_second_and_repeats_keep_their_ids(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    first = crm.upsert_lead(_lead("one@acme.example"), "k").crm_id
    second = crm.upsert_lead(_lead("two@acme.example"), "k").crm_id
    moment = datetime(2026, 12, 1, 10, 0, 0, 400000, tzinfo=UTC)
    fake.freeze_clock(moment)
    fake.user_sets_status(first, "contacted")
    fake.freeze_clock(moment + timedelta(milliseconds=500))  # the same second
    fake.user_sets_status(second, "disqualified")
    page = crm.changes_since("2026-12-01T10:00:00Z")
    seen = {(c.crm_id, c.kind) for c in page.changes}
    assert seen == {(first, CrmChangeKind.contacted), (second, CrmChangeKind.disqualified)}
    assert page.mark == "2026-12-01T10:00:00Z"
    again = crm.changes_since(page.mark)
    assert [c.change_id for c in again.changes] == [c.change_id for c in page.changes]
    assert f"salesforce:Lead:{first}:Status=Working - Contacted" in {
        c.change_id for c in page.changes
    }
    assert crm.changes_since("2026-12-01T10:00:01Z").changes == []
    # Leadflow's own writes (the integration user) are not changes.
    fake.freeze_clock(moment + timedelta(seconds=5))
    crm.set_status(first, LeadStatus.qualified, None)
    assert crm.changes_since("2026-12-01T10:00:05Z").changes == []


def test_a_fresh_poll_starts_at_the_servers_clock(fake: FakeSalesforce) -> None:
    page = fake.connector().changes_since(None)
    assert page.changes == []
    mark = datetime.fromisoformat(page.mark)
    assert abs((mark - datetime.now(UTC)).total_seconds()) < 5


def test_conversion_closes_the_opportunity_won_once(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    account = fake.add_account("Acme Corporation", "acme.example", None)
    ref = crm.upsert_lead(_lead("buyer@acme.example", company="Acme Corp"), "k")
    conversion = crm.convert_lead(ref.crm_id, _deal(), "c")
    assert conversion.created and conversion.account_id == account
    opportunity = fake.record("Opportunity", conversion.deal_id)
    assert (opportunity["StageName"], opportunity["IsWon"], opportunity["Amount"]) == (
        "Closed Won",
        True,
        1200.5,
    )
    assert fake.record("Contact", conversion.contact_id)["AccountId"] == account
    assert fake.lead_status(ref.crm_id) == "Closed - Converted"
    again = crm.convert_lead(ref.crm_id, _deal(), "other key")
    assert again.model_dump() == {**conversion.model_dump(), "created": False}
    with pytest.raises(InvalidRecord, match="converted"):
        crm.set_status(ref.crm_id, LeadStatus.working, None)


def test_queue_owned_lead_converts_with_a_user_owner(fake: FakeSalesforce) -> None:
    rep = fake.add_user("sam@example.com", "Sam Seller")
    crm = fake.connector()
    ref = crm.upsert_lead(_lead("q@initech.example", owner_id=fake.org.queue_id), "k")
    conversion = crm.convert_lead(ref.crm_id, _deal().model_copy(update={"owner_id": rep}), "c")
    assert fake.record("Opportunity", conversion.deal_id)["OwnerId"] == rep


def test_request_limit_exceeded_is_rate_limited(fake: FakeSalesforce) -> None:
    fake.fail("429")
    with pytest.raises(RateLimited) as caught:
        fake.connector().upsert_lead(_lead("busy@acme.example"), "k")
    assert caught.value.retry_after == 60
    assert "TotalRequests Limit exceeded" in caught.value.vendor_message


def test_validation_rule_refusal_is_an_invalid_record(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    fake.fail("validation")
    with pytest.raises(InvalidRecord) as caught:
        crm.upsert_lead(_lead("rule@acme.example"), "k")  # the lookup passes, the insert not
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in str(caught.value)
    assert "fake validation rule" in caught.value.vendor_message


def test_quotes_in_values_do_not_break_soql(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    owner = fake.add_user("kim@example.com", "Kim Owner")
    account = fake.add_account("O'Reilly \\ Sons Ltd", None, owner)
    match = crm.find_account(
        email_domain="gmail.com",
        website_domain=None,
        company="O'Reilly \\ Sons",
        free_mail=True,
    )
    assert match is not None and (match.account.crm_id, match.account.owner_id) == (account, owner)
    ref = crm.upsert_lead(_lead("o'brien@acme.example", company="Dan's ' OR Name != '"), "k")
    assert crm.upsert_lead(_lead("O'Brien@acme.example"), "k").crm_id == ref.crm_id
    task = CrmTask(
        crm_id=ref.crm_id, owner_id=None, subject="Call 'em \\ today", due=date(2026, 12, 3)
    )
    assert crm.create_task(task, "t") == crm.create_task(task, "t")
    assert len(fake.task_ids(ref.crm_id)) == 1


def test_accounts_match_by_exact_website_domain(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    fake.add_account("Evil", "acme.example.evil.example", None)
    account = fake.add_account("Acme", "acme.example", None)
    match = crm.find_account(
        email_domain="acme.example", website_domain=None, company=None, free_mail=False
    )
    assert match is not None and (match.account.crm_id, match.by) == (account, "email domain")
    assert (
        crm.find_account(
            email_domain="gmail.com", website_domain=None, company=None, free_mail=True
        )
        is None
    )


def test_http_instance_url_is_served_over_plain_http(fake: FakeSalesforce) -> None:
    assert fake.url.startswith("http://")
    crm = fake.token_connector()
    ref = crm.upsert_lead(_lead("plain@acme.example"), "k")
    assert crm.get_lead(ref.crm_id) is not None
    items = {item.name: item for item in crm.check("Nurture")}
    assert all(item.ok for item in items.values()), items
    assert "access token" in items["authentication"].detail


def test_jwt_bearer_login_is_verified(fake: FakeSalesforce) -> None:
    crm = fake.jwt_connector()
    crm.ping()
    assert fake.logins == 1
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = SalesforceCRM(
        consumer_key=CONSUMER_KEY,
        private_key=other_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        username="leadflow@example.com",
        login_url=fake.url,
    )
    try:
        with pytest.raises(AuthError, match="invalid_grant"):
            forged.ping()
    finally:
        forged.close()
    assert fake.logins == 1


def test_half_configured_settings_name_the_missing_variable() -> None:
    settings = Settings(salesforce_username="me@example.com", salesforce_password="x")
    with pytest.raises(AuthError, match="LEADFLOW_SALESFORCE_SECURITY_TOKEN"):
        SalesforceCRM.from_settings(settings)
    with pytest.raises(AuthError, match="LEADFLOW_SALESFORCE_ACCESS_TOKEN"):
        SalesforceCRM.from_settings(Settings(salesforce_instance_url="https://x.my.salesforce.com"))


def test_webhook_and_poll_give_the_same_change(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    ref = crm.upsert_lead(_lead("deal@acme.example"), "k")
    mark = crm.changes_since(None).mark
    opportunity = fake.user_closes_deal(ref.crm_id, won=True, amount=Decimal("5000"))
    polled = [c for c in crm.changes_since(mark).changes if c.kind is CrmChangeKind.won]
    notice = CrmNotice(
        notice_id="04l1",
        object="deal",
        object_id=opportunity,
        fields={"StageName": "Closed Won", "IsWon": "true", "IsClosed": "true", "Amount": "5000"},
        source=fake.org.rep_user_id,
        occurred_at=polled[0].occurred_at,
    )
    assert crm.interpret(notice) == polled
    assert polled[0].amount == Decimal("5000") and polled[0].currency == "USD"
    own = notice.model_copy(update={"source": fake.org.integration_user_id})
    assert crm.interpret(own) == []
    lead_notice = CrmNotice(
        notice_id="04l2", object="lead", object_id=ref.crm_id, fields={"OwnerId": fake.org.queue_id}
    )
    assert crm.interpret(lead_notice) == []  # a queue is no owner


def test_transient_failures_are_retryable(fake: FakeSalesforce) -> None:
    fake.timeout_s = 0.5
    fake.gate.slow_seconds = 1.0
    crm = fake.connector()
    crm.ping()
    fake.fail("5xx")
    with pytest.raises(RetryableError):
        crm.ping()
    fake.fail("slow")
    with pytest.raises(RetryableError, match="in time"):
        crm.ping()


def test_missing_records_and_campaigns_are_invalid(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    ref = crm.upsert_lead(_lead("n@acme.example"), "k")
    with pytest.raises(InvalidRecord, match="Webinar"):
        crm.set_nurture(ref.crm_id, True, "Webinar")
    crm.set_nurture(ref.crm_id, False, "Nurture")  # not a member: nothing to do
    with pytest.raises(InvalidRecord):
        crm.set_status("00QDn0000009999AAA", LeadStatus.working, None)
    assert crm.get_lead("00QDn0000009999AAA") is None
    with pytest.raises(InvalidRecord):
        crm.create_task(
            CrmTask(crm_id="00QDn0000009999AAA", owner_id=None, subject="x", due=date(2026, 1, 1)),
            "t",
        )


def test_the_fake_refuses_a_quoted_datetime(fake: FakeSalesforce) -> None:
    answer = requests.get(
        f"{fake.url}/services/data/v62.0/query/",
        params={"q": "SELECT Id FROM Lead WHERE LastModifiedDate >= '2026-12-01T10:00:00Z'"},
        headers={"Authorization": f"Bearer {fake.gate.access_token}"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_threads_share_one_new_login_after_expiry(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    ref = crm.upsert_lead(_lead("many@acme.example"), "k")
    fake.expire_sessions()
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda _: crm.get_lead(ref.crm_id), range(16)))
    assert all(lead is not None for lead in found)
    assert fake.logins == 2


def test_conversion_failures_map_onto_the_error_tree(fake: FakeSalesforce) -> None:
    crm = fake.connector()
    ref = crm.upsert_lead(_lead("convert@acme.example"), "k")
    fake.fail_convert("validation")  # convertLead answers success=false
    with pytest.raises(InvalidRecord, match="FIELD_CUSTOM_VALIDATION_EXCEPTION"):
        crm.convert_lead(ref.crm_id, _deal(), "c")
    fake.fail_convert("429")  # a REQUEST_LIMIT_EXCEEDED SOAP fault
    with pytest.raises(RateLimited):
        crm.convert_lead(ref.crm_id, _deal(), "c")
    fake.fail_convert("5xx")  # not even SOAP: a 503 page
    with pytest.raises(RetryableError):
        crm.convert_lead(ref.crm_id, _deal(), "c")
    logins = fake.logins
    fake.fail_convert("expired_session")  # INVALID_SESSION_ID fault: one new login
    assert crm.convert_lead(ref.crm_id, _deal(), "c").created
    assert fake.logins == logins + 1
    with pytest.raises(InvalidRecord, match="no lead"):
        crm.convert_lead("00QDn0000009999AAA", _deal(), "c")


def test_multi_currency_org_keeps_the_deal_currency() -> None:
    with running_salesforce(multi_currency=True) as fake:
        crm = fake.connector()
        ref = crm.upsert_lead(_lead("eur@acme.example"), "k")
        mark = crm.changes_since(None).mark
        deal = _deal("800").model_copy(update={"currency": "eur"})
        conversion = crm.convert_lead(ref.crm_id, deal, "c")
        assert fake.record("Opportunity", conversion.deal_id)["CurrencyIsoCode"] == "EUR"
        fake.user_closes_deal(ref.crm_id, won=True, amount=Decimal("900"))
        won = [c for c in crm.changes_since(mark).changes if c.kind is CrmChangeKind.won]
        assert [(c.amount, c.currency) for c in won] == [(Decimal("900"), "EUR")]


def test_check_says_what_is_missing(fake: FakeSalesforce) -> None:
    del fake.org.schema["Lead"]["Leadflow_Score__c"]
    crm = fake.connector()
    ref = crm.upsert_lead(_lead("unscored@acme.example", score=80), "k")  # still written
    assert fake.lead(ref.crm_id)["Leadflow_Id__c"] == "lf-unscored@acme.example"
    read = crm.get_lead(ref.crm_id)
    assert read is not None and read.score is None
    items = {item.name: item for item in crm.check("Webinar")}
    assert not items["custom fields"].ok and "Leadflow_Score__c" in items["custom fields"].detail
    assert not items["nurture campaign"].ok and "Webinar" in items["nurture campaign"].detail
    assert items["authentication"].ok and "username-password" in items["authentication"].detail
    assert items["API usage"].ok and "of 15000" in items["API usage"].detail
    wrong = SalesforceCRM(
        username="leadflow@example.com", password="nope", security_token="", login_url=fake.url
    )
    try:
        [line] = wrong.check(None)
    finally:
        wrong.close()
    assert (line.name, line.ok) == ("authentication", False)
    assert "INVALID_LOGIN" in line.detail


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "REQUEST_LIMIT_EXCEEDED", RateLimited),
        (403, "INSUFFICIENT_ACCESS", AuthError),
        (401, "INVALID_SESSION_ID", AuthError),
        (400, "UNABLE_TO_LOCK_ROW", RetryableError),
        (400, "STRING_TOO_LONG", InvalidRecord),
        (404, "NOT_FOUND", InvalidRecord),
        (500, "UNKNOWN_EXCEPTION", RetryableError),
        (503, "SERVER_UNAVAILABLE", RetryableError),
    ],
)
def test_salesforce_error_codes_classify(status: int, code: str, expected: type) -> None:
    error = classify(status, [VendorError(code, "words", ("Field__c",))], "act")
    assert type(error) is expected
    assert error.vendor_message == "words"
