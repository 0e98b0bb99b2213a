"""Salesforce's failures mapped onto the connector error tree, in this one place::

    what Salesforce / the transport said                        connectors.base
    ------------------------------------------------------------------------------
    403 REQUEST_LIMIT_EXCEEDED (REST), the same SOAP fault      RateLimited (60 s; 2 s
                                                                for the concurrent limit)
    5xx; UNABLE_TO_LOCK_ROW, SERVER_UNAVAILABLE, QUERY_TIMEOUT;
      requests timeouts and connection errors                   RetryableError
    401 INVALID_SESSION_ID (after the one re-login), 403 other
      codes (INSUFFICIENT_ACCESS, API_DISABLED_FOR_ORG…),
      INVALID_LOGIN and other login refusals                    AuthError
    400 REQUIRED_FIELD_MISSING, FIELD_CUSTOM_VALIDATION_EXCEPTION,
      INVALID_FIELD, MALFORMED_ID, STRING_TOO_LONG…; 404
      NOT_FOUND; 300; a convertLead ``success=false``           InvalidRecord

simple-salesforce raises ``SalesforceError`` subclasses whose ``status`` is the HTTP
status and whose ``content`` is the parsed error list
``[{"message", "errorCode", "fields"}]`` (or the raw text when it was not JSON). Every
mapped error keeps Salesforce's own words in ``vendor_message``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)

from connectors.base import (
    AuthError,
    ConnectorError,
    InvalidRecord,
    PermanentError,
    RateLimited,
    RetryableError,
)
from connectors.salesforce_soap import SoapFault

# Salesforce names no wait for REQUEST_LIMIT_EXCEEDED (the limit is a rolling 24 hours);
# a minute keeps Temporal from hammering an exhausted org while still picking up quickly
# once an admin raises the limit.
RATE_LIMIT_RETRY_AFTER_S = 60.0
CONCURRENT_LIMIT_RETRY_AFTER_S = 2.0
RATE_LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS"})
# Codes that come with a 400 (or a SOAP fault) but mean "try again".
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT", "API_CURRENTLY_DISABLED"}
)
AUTH_CODES = frozenset(
    {
        "INVALID_SESSION_ID",
        "INVALID_LOGIN",
        "INVALID_AUTH_HEADER",
        "LOGIN_MUST_USE_SECURITY_TOKEN",
        "INVALID_OPERATION_WITH_EXPIRED_PASSWORD",
        "PASSWORD_LOCKOUT",
        "API_DISABLED_FOR_ORG",
        "INSUFFICIENT_ACCESS",
        "INSUFFICIENT_ACCESS_OR_READONLY",
        "INVALID_CLIENT",
    }
)


@dataclass(frozen=True)
class VendorError:
    """One entry of Salesforce's error list."""

    code: str
    message: str
    fields: tuple[str, ...] = ()


def errors_of(content: Any) -> list[VendorError]:
    """The error list of a REST error body (a list of ``message``/``errorCode``/``fields``
    objects), or one entry holding the raw text."""
    if isinstance(content, dict):
        content = [content]
    if isinstance(content, list):
        found = []
        for entry in content:
            if not isinstance(entry, dict):
                continue
            fields = entry.get("fields") or ()
            found.append(
                VendorError(
                    code=str(entry.get("errorCode") or entry.get("error") or "UNKNOWN_EXCEPTION"),
                    message=str(entry.get("message") or entry.get("error_description") or ""),
                    fields=tuple(str(f) for f in fields) if isinstance(fields, list) else (),
                )
            )
        if found:
            return found
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return [VendorError(code="UNKNOWN_EXCEPTION", message=str(content or "").strip()[:500])]


def classify(status: int | None, errors: Iterable[VendorError], action: str) -> ConnectorError:
    """The connector error for Salesforce's answer to ``action`` (``"upsert lead"``…)."""
    found = list(errors) or [VendorError(code="UNKNOWN_EXCEPTION", message="")]
    codes = {e.code for e in found}
    words = "; ".join(
        f"{e.code}: {e.message}" + (f" (fields: {', '.join(e.fields)})" if e.fields else "")
        for e in found
    )
    vendor = "; ".join(e.message or e.code for e in found)
    message = f"Salesforce refused to {action}: {words}"
    if codes & RATE_LIMIT_CODES or status == 429:
        # The limit of concurrent long requests clears as they finish: seconds; the
        # org's daily total does not clear soon: a minute between tries.
        concurrent = "concurrent" in vendor.casefold()
        return RateLimited(
            f"Salesforce API limit reached ({action}): {words}",
            vendor_message=vendor,
            retry_after=CONCURRENT_LIMIT_RETRY_AFTER_S if concurrent else RATE_LIMIT_RETRY_AFTER_S,
        )
    if codes & RETRYABLE_CODES or (status is not None and status >= 500):
        return RetryableError(f"Salesforce could not {action} now: {words}", vendor_message=vendor)
    if status in (401, 403) or codes & AUTH_CODES:
        return AuthError(message, vendor_message=vendor)
    return InvalidRecord(message, vendor_message=vendor)


def is_expired_session(exc: BaseException) -> bool:
    """Whether ``exc`` says the session is no longer valid (REST 401, SOAP fault)."""
    if isinstance(exc, SalesforceExpiredSession):
        return True
    return isinstance(exc, SoapFault) and exc.code == "INVALID_SESSION_ID"


def to_connector_error(exc: BaseException, action: str) -> ConnectorError:
    """The connector error for anything a Salesforce call raised."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, SalesforceAuthenticationFailed):
        return AuthError(
            f"Salesforce login refused ({action}): {exc}", vendor_message=exc.auth_message
        )
    if isinstance(exc, SalesforceError):
        return classify(exc.status, errors_of(exc.content), action)
    if isinstance(exc, SoapFault):
        # Every SOAP fault comes with HTTP 500: its exceptionCode says what it is. Only an
        # answer that was no SOAP at all (a proxy's 502/503 page) is judged by its status.
        status = exc.status if exc.code.startswith("HTTP_") else None
        if exc.code == "UNKNOWN_EXCEPTION":
            status = 500
        return classify(status, [VendorError(exc.code, exc.message)], action)
    if isinstance(exc, requests.Timeout):
        return RetryableError(f"Salesforce did not answer in time ({action}): {exc}")
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return RetryableError(f"Salesforce could not be reached ({action}): {exc}")
    if isinstance(exc, requests.exceptions.InvalidJSONError):
        return RetryableError(f"Salesforce's answer could not be read ({action}): {exc}")
    if isinstance(exc, requests.RequestException):
        return PermanentError(f"the request to Salesforce failed ({action}): {exc}")
    return PermanentError(f"Salesforce call failed ({action}): {exc!r}")
