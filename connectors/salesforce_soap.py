"""The two SOAP partner API calls the connector makes: ``login`` (username, password and
security token) and ``convertLead`` (which the REST API does not offer). Envelopes are
built here and answers parsed here; a SOAP fault becomes ``SoapFault``.

Shapes follow the SOAP API Developer Guide: ``LoginResult`` (``serverUrl``,
``sessionId``, ``userId``), ``LeadConvert`` / ``LeadConvertResult`` (``accountId``,
``contactId``, ``opportunityId``, ``success``, ``errors``), and faults carrying
``exceptionCode`` / ``exceptionMessage`` in their detail."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
_HEADERS = {"Content-Type": "text/xml; charset=UTF-8"}


class SoapFault(Exception):
    """A SOAP fault (or an answer that is not SOAP at all): ``code`` is Salesforce's
    ``exceptionCode`` (``INVALID_LOGIN``, ``INVALID_SESSION_ID``…), ``status`` the HTTP
    status it came with."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class LoginResult:
    session_id: str
    server_url: str
    user_id: str


@dataclass(frozen=True)
class ConvertError:
    code: str
    message: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConvertResult:
    success: bool
    account_id: str | None = None
    contact_id: str | None = None
    opportunity_id: str | None = None
    errors: list[ConvertError] = field(default_factory=list)


def soap_headers(action: str) -> dict[str, str]:
    return {**_HEADERS, "SOAPAction": action}


def _envelope(header: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:urn="{PARTNER}">'
        f"<soapenv:Header>{header}</soapenv:Header>"
        f"<soapenv:Body>{body}</soapenv:Body>"
        "</soapenv:Envelope>"
    )


def login_envelope(username: str, password: str) -> str:
    """The ``login`` request; ``password`` is the password followed by the security token."""
    return _envelope(
        "",
        f"<urn:login><urn:username>{escape(username)}</urn:username>"
        f"<urn:password>{escape(password)}</urn:password></urn:login>",
    )


def convert_envelope(
    session_id: str,
    *,
    lead_id: str,
    converted_status: str,
    owner_id: str | None,
    account_id: str | None,
    opportunity_name: str,
) -> str:
    """A ``convertLead`` request for one lead, creating an opportunity, without the
    notification email."""
    parts = []
    if account_id:
        parts.append(f"<urn:accountId>{escape(account_id)}</urn:accountId>")
    parts.append(f"<urn:convertedStatus>{escape(converted_status)}</urn:convertedStatus>")
    parts.append("<urn:doNotCreateOpportunity>false</urn:doNotCreateOpportunity>")
    parts.append(f"<urn:leadId>{escape(lead_id)}</urn:leadId>")
    parts.append(f"<urn:opportunityName>{escape(opportunity_name)}</urn:opportunityName>")
    parts.append("<urn:overwriteLeadSource>false</urn:overwriteLeadSource>")
    if owner_id:
        parts.append(f"<urn:ownerId>{escape(owner_id)}</urn:ownerId>")
    parts.append("<urn:sendNotificationEmail>false</urn:sendNotificationEmail>")
    header = (
        f"<urn:SessionHeader><urn:sessionId>{escape(session_id)}</urn:sessionId>"
        "</urn:SessionHeader>"
    )
    return _envelope(
        header,
        f"<urn:convertLead><urn:leadConverts>{''.join(parts)}</urn:leadConverts></urn:convertLead>",
    )


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element: ET.Element, name: str) -> str | None:
    child = _child(element, name)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _body(status: int, content: bytes) -> ET.Element:
    """The SOAP body's first element; ``SoapFault`` for a fault or a non-SOAP answer."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        text = content.decode("utf-8", "replace").strip()[:300]
        raise SoapFault(f"HTTP_{status}", text or "empty answer", status) from None
    body = _child(root, "Body") if _local(root.tag) == "Envelope" else None
    first = next(iter(body), None) if body is not None else None
    if first is None:
        raise SoapFault(f"HTTP_{status}", "the answer has no SOAP body", status)
    if _local(first.tag) == "Fault":
        raise _fault(first, status)
    if status >= 300:
        raise SoapFault(f"HTTP_{status}", "unexpected SOAP answer", status)
    return first


def _fault(fault: ET.Element, status: int) -> SoapFault:
    code = (_text(fault, "faultcode") or "UNKNOWN_EXCEPTION").rpartition(":")[2]
    message = _text(fault, "faultstring") or ""
    detail = _child(fault, "detail")
    if detail is not None:
        for api_fault in detail:
            code = _text(api_fault, "exceptionCode") or code
            message = _text(api_fault, "exceptionMessage") or message
    return SoapFault(code, message, status)


def parse_login(status: int, content: bytes) -> LoginResult:
    result = _child(_body(status, content), "result")
    if result is None:
        raise SoapFault("UNKNOWN_EXCEPTION", "the login answer has no result", status)
    session_id = _text(result, "sessionId")
    server_url = _text(result, "serverUrl")
    user_id = _text(result, "userId")
    if not (session_id and server_url and user_id):
        raise SoapFault(
            "UNKNOWN_EXCEPTION", "the login answer misses sessionId, serverUrl or userId", status
        )
    return LoginResult(session_id=session_id, server_url=server_url, user_id=user_id)


def parse_convert(status: int, content: bytes) -> ConvertResult:
    result = _child(_body(status, content), "result")
    if result is None:
        raise SoapFault("UNKNOWN_EXCEPTION", "the convertLead answer has no result", status)
    errors = [
        ConvertError(
            code=_text(error, "statusCode") or "UNKNOWN_EXCEPTION",
            message=_text(error, "message") or "",
            fields=tuple(f.text.strip() for f in error if _local(f.tag) == "fields" and f.text),
        )
        for error in result
        if _local(error.tag) == "errors"
    ]
    return ConvertResult(
        success=_text(result, "success") == "true",
        account_id=_text(result, "accountId"),
        contact_id=_text(result, "contactId"),
        opportunity_id=_text(result, "opportunityId"),
        errors=errors,
    )
