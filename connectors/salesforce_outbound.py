"""Salesforce Outbound Messages: the SOAP notification a workflow rule or flow sends, read
into vendor-neutral notices, and the ``Ack`` Salesforce waits for.

A notification names the organisation, and carries one or more ``Notification``s, each
with its own ``Id`` (the same on every redelivery) and the ``sObject`` with the fields the
message was set up to send. Salesforce redelivers until it gets ``<Ack>true</Ack>``."""

from __future__ import annotations

from lxml import etree
from pydantic import BaseModel

from domain.crm import CrmNotice

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_NOTIFICATIONS = 100  # Salesforce batches up to 100 notifications in one message
OBJECTS = {"Lead": "lead", "Opportunity": "deal"}

# No DTDs, no entities, no network: the body comes from outside.
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_pis=True
)

ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
).encode()


class OutboundRefused(Exception):
    """The message cannot be read; the text says why."""


class OutboundMessage(BaseModel):
    organization_id: str
    notices: list[CrmNotice]


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def parse(body: bytes) -> OutboundMessage:
    """The organisation and the notices of a Lead or Opportunity message (notifications
    about other objects are skipped)."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as err:
        raise OutboundRefused(f"the body is not XML: {err.msg}") from None
    found = root.find(f".//{{{OUTBOUND_NS}}}notifications")
    if found is None:
        raise OutboundRefused("no <notifications> element in the SOAP body")
    org = found.findtext(f"{{{OUTBOUND_NS}}}OrganizationId")
    if not org:
        raise OutboundRefused("the message names no OrganizationId")
    items = found.findall(f"{{{OUTBOUND_NS}}}Notification")
    if len(items) > MAX_NOTIFICATIONS:
        raise OutboundRefused(f"more than {MAX_NOTIFICATIONS} notifications")
    notices = []
    for index, item in enumerate(items):
        notice_id = item.findtext(f"{{{OUTBOUND_NS}}}Id")
        sobject = item.find(f"{{{OUTBOUND_NS}}}sObject")
        if not notice_id or sobject is None:
            raise OutboundRefused(f"notification {index} has no Id or sObject")
        kind = OBJECTS.get(_type_of(sobject))
        if kind is None:
            continue
        fields: dict[str, str | None] = {}
        for child in sobject:
            name = _local(child.tag)
            if not name:
                continue
            nil = child.get(f"{{{XSI_NS}}}nil") == "true"
            fields[name] = None if nil else (child.text or "")
        record_id = fields.pop("Id", None)
        if not record_id:
            raise OutboundRefused(f"notification {index}: the sObject has no Id")
        notices.append(
            CrmNotice(
                notice_id=notice_id[:200],
                object=kind,
                object_id=record_id[:100],
                fields=fields,
                source=fields.get("LastModifiedById"),
            )
        )
    return OutboundMessage(organization_id=org, notices=notices)


def _type_of(sobject: etree._Element) -> str:
    """``sf:Lead`` → ``Lead`` (the ``xsi:type`` attribute)."""
    declared = sobject.get(f"{{{XSI_NS}}}type") or ""
    return declared.rpartition(":")[2]


def same_org(configured: str, received: str) -> bool:
    """Organisation ids compare on their first 15 characters (the 18-character form adds
    a case-insensitive checksum suffix)."""
    return configured[:15] == received[:15] and len(received) in (15, 18)
