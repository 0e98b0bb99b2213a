"""HubSpot's errors mapped onto Leadflow's error tree, in one place.

HubSpot answers an error with ``{"status": "error", "message", "category",
"correlationId", ...}``; hubspot-api-client raises it as the ``ApiException`` of the
sub-package that made the call (each has its own class, all with ``status``, ``body``
and ``headers``), and lets urllib3's errors (timeouts, refused connections) through::

    urllib3 error, timeout, connection refused  -> RetryableError
    429 (Retry-After, or the X-HubSpot-RateLimit-* headers)  -> RateLimited
    5xx, status 0 (TLS)                         -> RetryableError
    401                                         -> AuthError (token invalid or revoked)
    403 (MISSING_SCOPES names the scope)        -> AuthError
    "Contact already exists. Existing ID: N"    -> ContactExists (an InvalidRecord)
    400 VALIDATION_ERROR, 409, other 4xx        -> InvalidRecord
    404                                         -> InvalidRecord
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3

from connectors.base import (
    AuthError,
    ConnectorError,
    InvalidRecord,
    PermanentError,
    RateLimited,
    RetryableError,
)

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
_NOT_VALID = "Property values were not valid: "


class ContactExists(InvalidRecord):
    """HubSpot refused to create a contact whose email another contact has."""

    def __init__(self, message: str, *, vendor_message: str, existing_id: str) -> None:
        super().__init__(message, vendor_message=vendor_message)
        self.existing_id = existing_id


@dataclass(frozen=True)
class VendorError:
    """What HubSpot said, read from an SDK exception."""

    status: int
    message: str
    category: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def is_vendor_error(err: BaseException) -> bool:
    """An SDK ``ApiException`` (of any sub-package) or a transport error."""
    if isinstance(err, urllib3.exceptions.HTTPError | OSError):
        return True
    return any(
        c.__name__ == "ApiException" and c.__module__.startswith("hubspot.")
        for c in type(err).__mro__
    )


def read(err: BaseException) -> VendorError:
    raw = getattr(err, "body", None)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or text.strip() or getattr(err, "reason", "") or "")
    return VendorError(
        status=int(getattr(err, "status", 0) or 0),
        message=message,
        category=str(body.get("category") or body.get("errorType") or ""),
        body=body,
        headers=getattr(err, "headers", None) or {},
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or an HTTP date), else
    HubSpot's window (``X-HubSpot-RateLimit-Interval-Milliseconds``) when its
    ``X-HubSpot-RateLimit-Remaining`` is spent, else one second when the secondly
    limit is; None when HubSpot does not say."""
    value = _header(headers, "Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    remaining = _header(headers, "X-HubSpot-RateLimit-Remaining")
    interval = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
    try:
        if remaining is not None and interval and int(remaining) <= 0:
            return int(interval) / 1000
        if _header(headers, "X-HubSpot-RateLimit-Secondly-Remaining") == "0":
            return 1.0
    except ValueError:
        return None
    return None


def missing_scope(error: VendorError) -> str | None:
    """The scope a 403 says is missing, when it names one."""
    for detail in error.body.get("errors") or []:
        context = detail.get("context") if isinstance(detail, dict) else None
        if isinstance(context, dict):
            for key in ("requiredGranularScopes", "requiredScopes"):
                scopes = context.get(key)
                if isinstance(scopes, list) and scopes:
                    return " or ".join(str(s) for s in scopes)
    return None


def _problems(message: str) -> list[dict[str, Any]]:
    if not message.startswith(_NOT_VALID):
        return []
    try:
        problems = json.loads(message[len(_NOT_VALID) :])
    except ValueError:
        return []
    if not isinstance(problems, list):
        return []
    return [p for p in problems if isinstance(p, dict) and p.get("name")]


def invalid_properties(message: str) -> dict[str, str]:
    """Property name -> HubSpot's error code (``PROPERTY_DOESNT_EXIST``,
    ``INVALID_OPTION``…) from a ``Property values were not valid: [...]`` message."""
    return {str(p["name"]): str(p.get("error", "")) for p in _problems(message)}


def readable(message: str) -> str:
    """A validation message in words: ``firstname: Enter only letters; ...`` from
    HubSpot's ``Property values were not valid: [{...}]``."""
    parts = [f"{p['name']}: {p.get('message')}" for p in _problems(message)]
    return "; ".join(parts) or message


def classify(err: BaseException) -> ConnectorError:
    """The error-tree exception for any error a HubSpot call raised."""
    if isinstance(err, urllib3.exceptions.HTTPError | OSError):
        return RetryableError(f"HubSpot could not be reached: {err}", vendor_message=str(err))
    error = read(err)
    said = error.message
    existing = _EXISTING_ID.search(said)
    if existing and 400 <= error.status < 500:
        return ContactExists(
            f"a HubSpot contact with this email exists: {existing.group(1)}",
            vendor_message=said,
            existing_id=existing.group(1),
        )
    if error.status == 429:
        wait = retry_after(error.headers)
        return RateLimited(f"HubSpot rate limit: {said}", vendor_message=said, retry_after=wait)
    if error.status == 0 or error.status >= 500:
        return RetryableError(f"HubSpot failed ({error.status}): {said}", vendor_message=said)
    if error.status == 401:
        return AuthError("the private app token is invalid or revoked", vendor_message=said)
    if error.status == 403:
        scope = missing_scope(error)
        if scope or error.category == "MISSING_SCOPES":
            what = f"the scope {scope}" if scope else "a scope this call needs"
            return AuthError(f"the HubSpot private app lacks {what}", vendor_message=said)
        return AuthError(f"HubSpot refused access: {said}", vendor_message=said)
    if error.status == 404:
        return InvalidRecord(f"HubSpot has no such record: {said}", vendor_message=said)
    if 400 <= error.status < 500:
        return InvalidRecord(f"HubSpot refused the record: {readable(said)}", vendor_message=said)
    return PermanentError(f"HubSpot answered {error.status}: {said}", vendor_message=said)
