"""The fake's SOAP partner API messages (SOAP API Developer Guide): reading a ``login``
or ``convertLead`` request, and writing ``loginResponse``, ``convertLeadResponse`` and
faults (``sf:INVALID_LOGIN``, ``sf:INVALID_SESSION_ID``…, HTTP 500)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
FAULT_NS = "urn:fault.partner.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass
class SoapRequest:
    operation: str  # local name of the body's first element: login, convertLead…
    session_id: str | None
    values: dict[str, str] = field(default_factory=dict)  # the operation's leaf values


class SoapError(Exception):
    def __init__(self, code: str, message: str, fault: str = "UnexpectedErrorFault") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fault = fault


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def read(body: bytes) -> SoapRequest:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        raise SoapError("INVALID_XML", f"the request is not XML: {err}") from None
    header = next((c for c in root if _local(c.tag) == "Header"), None)
    soap_body = next((c for c in root if _local(c.tag) == "Body"), None)
    if _local(root.tag) != "Envelope" or soap_body is None or len(soap_body) == 0:
        raise SoapError("INVALID_XML", "not a SOAP envelope with a body")
    session_id = None
    if header is not None:
        for element in header.iter():
            if _local(element.tag) == "sessionId" and element.text:
                session_id = element.text.strip()
    operation = soap_body[0]
    values = {
        _local(element.tag): (element.text or "").strip()
        for element in operation.iter()
        if len(element) == 0 and element is not operation
    }
    return SoapRequest(_local(operation.tag), session_id, values)


def _envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns="{PARTNER}" xmlns:xsi="{XSI}">'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


def fault(error: SoapError) -> bytes:
    return _envelope(
        "<soapenv:Fault>"
        f"<faultcode>sf:{escape(error.code)}</faultcode>"
        f"<faultstring>{escape(error.code)}: {escape(error.message)}</faultstring>"
        f'<detail><sf:{error.fault} xmlns:sf="{FAULT_NS}" xsi:type="sf:{error.fault}">'
        f"<sf:exceptionCode>{escape(error.code)}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(error.message)}</sf:exceptionMessage>"
        f"</sf:{error.fault}></detail></soapenv:Fault>"
    )


def login_response(
    base_url: str, version: str, org_id: str, session_id: str, user_id: str
) -> bytes:
    return _envelope(
        "<loginResponse><result>"
        f"<metadataServerUrl>{escape(base_url)}/services/Soap/m/{version}/{org_id}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{escape(base_url)}/services/Soap/u/{version}/{org_id}</serverUrl>"
        f"<sessionId>{escape(session_id)}</sessionId>"
        f"<userId>{user_id}</userId>"
        f"<userInfo><organizationId>{org_id}</organizationId><userId>{user_id}</userId></userInfo>"
        "</result></loginResponse>"
    )


def convert_response(
    result: dict[str, str | None], errors: list[tuple[str, str, list[str]]]
) -> bytes:
    parts = []
    for name in ("accountId", "contactId"):
        parts.append(
            f"<{name}>{result.get(name) or ''}</{name}>"
            if result.get(name)
            else f'<{name} xsi:nil="true"/>'
        )
    for code, message, fields in errors:
        parts.append(
            "<errors>"
            + "".join(f"<fields>{escape(f)}</fields>" for f in fields)
            + f"<message>{escape(message)}</message>"
            + f"<statusCode>{escape(code)}</statusCode></errors>"
        )
    parts.append(f"<leadId>{result.get('leadId') or ''}</leadId>")
    opportunity = result.get("opportunityId")
    parts.append(
        f"<opportunityId>{opportunity}</opportunityId>"
        if opportunity
        else '<opportunityId xsi:nil="true"/>'
    )
    parts.append(f"<success>{'false' if errors else 'true'}</success>")
    return _envelope(
        f"<convertLeadResponse><result>{''.join(parts)}</result></convertLeadResponse>"
    )
