"""What the CRMs send to Leadflow's webhooks, built the way the vendors build them: a
HubSpot delivery signed with its v3 signature, a Salesforce Outbound Message."""

from __future__ import annotations

import json
import time
from typing import Any
from xml.sax.saxutils import escape

from connectors.hubspot_webhooks import sign

SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"


def hubspot_delivery(
    secret: str, url: str, events: list[dict[str, Any]], *, age_s: float = 0.0
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a HubSpot webhook request to ``url``."""
    body = json.dumps(events).encode()
    timestamp = str(int((time.time() - age_s) * 1000))
    return body, {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": sign(secret, "POST", url, body, timestamp),
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-Version": "v3",
    }


def hubspot_event(
    event_id: int, object_type: str, object_id: str, prop: str, value: str, **extra: Any
) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionId": 1001 if object_type == "contact" else 1002,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": f"{object_type}.propertyChange",
        "attemptNumber": 0,
        "objectId": int(object_id) if object_id.isdigit() else object_id,
        "changeSource": "CRM_UI",
        "propertyName": prop,
        "propertyValue": value,
        **extra,
    }


def salesforce_outbound(org_id: str, *notifications: tuple[str, str, dict[str, str]]) -> bytes:
    """An Outbound Message: each notification is (notification id, sObject type, fields)."""
    items = "".join(
        f"<Notification><Id>{escape(nid)}</Id>"
        f'<sObject xsi:type="sf:{kind}" xmlns:sf="{SOBJECT_NS}">'
        + "".join(f"<sf:{k}>{escape(v)}</sf:{k}>" for k, v in fields.items())
        + "</sObject></Notification>"
        for nid, kind, fields in notifications
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{escape(org_id)}</OrganizationId>"
        "<ActionId>04k5f000000kzZ1AAI</ActionId>"
        '<SessionId xsi:nil="true"/>'
        "<EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0</EnterpriseUrl>"
        "<PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0</PartnerUrl>"
        f"{items}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()
