"""The pure parts of CRM connections: HubSpot's v3 signature and events, Salesforce's
Outbound Messages, rep links and CRM changes as lifecycle events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors import hubspot_webhooks as hw
from connectors import salesforce_outbound as so
from domain.crm import CrmChange, CrmChangeKind, CrmOwner
from domain.crm_events import already_reflected, event_for, event_id_for
from domain.crm_links import RepToLink, link_reps
from domain.lead import Stage
from domain.stages import LeadEventType
from tests.fakes.deliveries import salesforce_outbound

SECRET = "client-secret-1234"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp() * 1000))


def test_hubspot_signature_matches_a_hand_computed_one() -> None:
    import base64
    import hashlib
    import hmac

    body = b'[{"eventId":1}]'
    uri = "https://leads.example.com/webhooks/hubspot?x=%3Ay"
    source = b"POST" + b"https://leads.example.com/webhooks/hubspot?x=:y" + body + TS.encode()
    expected = base64.b64encode(hmac.new(SECRET.encode(), source, hashlib.sha256).digest())
    assert hw.sign(SECRET, "POST", uri, body, TS) == expected.decode()
    hw.verify(SECRET, "POST", uri, body, expected.decode(), TS, now=NOW)


@pytest.mark.parametrize(
    ("signature", "timestamp", "message"),
    [
        (None, TS, "required"),
        ("c2lnbmF0dXJl", TS, "does not match"),
        ("x", "yesterday", "not a number"),
        ("x", str(int((NOW - timedelta(minutes=6)).timestamp() * 1000)), "5 minutes"),
        ("x", str(int((NOW + timedelta(minutes=6)).timestamp() * 1000)), "5 minutes"),
    ],
)
def test_hubspot_refuses_unsigned_forged_and_stale(signature, timestamp, message) -> None:
    with pytest.raises(hw.WebhookRefused, match=message):
        hw.verify(
            SECRET, "POST", "https://x/webhooks/hubspot", b"[]", signature, timestamp, now=NOW
        )


def test_a_stale_request_with_a_valid_signature_is_refused() -> None:
    old = str(int((NOW - timedelta(minutes=5, seconds=1)).timestamp() * 1000))
    sig = hw.sign(SECRET, "POST", "https://x/w", b"[]", old)
    with pytest.raises(hw.WebhookRefused, match="5 minutes"):
        hw.verify(SECRET, "POST", "https://x/w", b"[]", sig, old, now=NOW)


def test_hubspot_events_become_notices_with_stable_ids() -> None:
    events = [
        {
            "eventId": 7,
            "subscriptionId": 1,
            "portalId": 99,
            "occurredAt": 1764590400000,
            "subscriptionType": "contact.propertyChange",
            "objectId": 501,
            "propertyName": "hs_lead_status",
            "propertyValue": "CONNECTED",
            "changeSource": "CRM_UI",
        },
        {"eventId": 8, "subscriptionType": "contact.creation", "objectId": 2, "occurredAt": 1},
        {
            "eventId": 9,
            "subscriptionId": 2,
            "portalId": 99,
            "occurredAt": 1764590400000,
            "subscriptionType": "deal.propertyChange",
            "objectId": 801,
            "propertyName": "dealstage",
            "propertyValue": "closedwon",
        },
    ]
    body = json.dumps(events).encode()
    first, second = hw.notices(body), hw.notices(body)
    assert [n.notice_id for n in first] == [n.notice_id for n in second]
    assert [(n.object, n.object_id, n.fields) for n in first] == [
        ("lead", "501", {"hs_lead_status": "CONNECTED"}),
        ("deal", "801", {"dealstage": "closedwon"}),
    ]
    assert first[0].source == "CRM_UI"
    with pytest.raises(hw.WebhookRefused):
        hw.notices(b"{not json")
    with pytest.raises(hw.WebhookRefused, match="eventId"):
        hw.notices(b'[{"subscriptionType": "contact.propertyChange", "propertyName": "x"}]')


def test_salesforce_outbound_message_is_read() -> None:
    body = salesforce_outbound(
        "00D000000000001AAA",
        (
            "04l1",
            "Lead",
            {"Id": "00Q1", "Status": "Working - Contacted", "LastModifiedById": "0055"},
        ),
        ("04l2", "Account", {"Id": "0011"}),
        ("04l3", "Opportunity", {"Id": "0061", "StageName": "Closed Won"}),
    )
    message = so.parse(body)
    assert message.organization_id == "00D000000000001AAA"
    assert [(n.notice_id, n.object, n.object_id) for n in message.notices] == [
        ("04l1", "lead", "00Q1"),
        ("04l3", "deal", "0061"),
    ]
    assert message.notices[0].fields["Status"] == "Working - Contacted"
    assert message.notices[0].source == "0055"
    assert so.same_org("00D000000000001", "00D000000000001AAA")
    assert not so.same_org("00D000000000001", "00D000000000002AAA")
    assert b"<Ack>true</Ack>" in so.ACK


def test_salesforce_outbound_refuses_entities_and_garbage() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;</x>'
    )
    with pytest.raises(so.OutboundRefused):
        so.parse(bomb)
    with pytest.raises(so.OutboundRefused):
        so.parse(b"not xml")
    with pytest.raises(so.OutboundRefused, match="OrganizationId"):
        so.parse(salesforce_outbound("", ("04l1", "Lead", {"Id": "00Q1"})))


def test_reps_link_by_configuration_then_active_email_never_inactive() -> None:
    owners = [
        CrmOwner(id="1", email="Ann@Example.com", name="Ann", active=True),
        CrmOwner(id="2", email="bo@example.com", name="Bo (old)", active=False),
        CrmOwner(id="3", email="cy@example.com", name="Cy", active=True),
        CrmOwner(id="4", email="dee@example.com", name="Dee", active=False),
    ]
    report = link_reps(
        "hubspot",
        [
            RepToLink(email="ann@example.com", name="Ann"),
            RepToLink(email="bo@example.com", name="Bo"),
            RepToLink(email="x@example.com", name="X", configured_owner_id="3"),
            RepToLink(email="dee@example.com", name="Dee", configured_owner_id="4"),
            RepToLink(email="zed@example.com", name="Zed"),
        ],
        owners,
    )
    got = {link.email: (link.owner_id, link.by) for link in report.links}
    assert got == {
        "ann@example.com": ("1", "email"),
        "bo@example.com": (None, None),
        "x@example.com": ("3", "configuration"),
        "dee@example.com": (None, None),
        "zed@example.com": (None, None),
    }
    problems = {link.email: link.problem for link in report.unlinked}
    assert "inactive" in (problems["bo@example.com"] or "")
    assert "no CRM user" in (problems["zed@example.com"] or "")
    assert (report.owners_seen, report.active_owners) == (4, 2)


def change(kind: CrmChangeKind, **extra: object) -> CrmChange:
    return CrmChange(change_id=f"hubspot:contact:1:{kind.value}", crm_id="1", kind=kind, **extra)


def test_crm_changes_become_lifecycle_events() -> None:
    won = event_for(change(CrmChangeKind.won, amount=Decimal("1200.5"), currency="eur"), "hubspot")
    assert (won.type, won.amount, won.currency, won.by) == (
        LeadEventType.won,
        Decimal("1200.50"),
        "EUR",
        "hubspot",
    )
    assert won.event_id == event_id_for(change(CrmChangeKind.won))
    assert won.event_id and len(won.event_id) <= 100 and " " not in won.event_id
    lost = event_for(change(CrmChangeKind.lost), "salesforce")
    assert lost.reason == "lost in salesforce"
    moved = event_for(change(CrmChangeKind.owner_changed, owner_id="77"), "hubspot")
    assert moved.crm_owner_id == "77"
    spaced = CrmChange(
        change_id="salesforce:Lead:00Q1:Status=Working - Contacted",
        crm_id="00Q1",
        kind=CrmChangeKind.contacted,
    )
    assert " " not in (event_for(spaced, "salesforce").event_id or "")


def test_a_change_the_lead_already_reflects_is_not_sent() -> None:
    contacted = change(CrmChangeKind.contacted)
    assert already_reflected(contacted, Stage.meeting_booked, None, None)
    assert not already_reflected(contacted, Stage.assigned, None, None)
    owner = change(CrmChangeKind.owner_changed, owner_id="9")
    assert already_reflected(owner, Stage.contacted, "a@x.com", "a@x.com")
    assert not already_reflected(owner, Stage.contacted, "a@x.com", "b@x.com")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://api.hubapi.com/crm/v3", "scheme, host and port only"),
        ("ftp://api.hubapi.com", "http:// or https://"),
        ("http://127.0.0.1:port", "invalid port"),
    ],
)
def test_crm_urls_are_origins_only(value: str, message: str) -> None:
    from pydantic import ValidationError

    from settings import Settings, configuration_problems

    assert Settings(_env_file=None, hubspot_base_url="http://127.0.0.1:8765/").hubspot_base_url == (
        "http://127.0.0.1:8765"
    )
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, salesforce_login_url=value)
    [line] = configuration_problems(refused.value)
    assert line.startswith("LEADFLOW_SALESFORCE_LOGIN_URL") and message in line
