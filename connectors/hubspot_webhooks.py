"""HubSpot webhook deliveries: the v3 signature, and the events as vendor-neutral notices.

The signature (``X-HubSpot-Signature-v3``) is, as HubSpot documents it, the base64 of an
HMAC-SHA256 keyed with the app's client secret over: the HTTP method, the URI HubSpot
called (with a fixed set of percent-encoded characters decoded), the raw body and the
``X-HubSpot-Request-Timestamp`` header (milliseconds). A timestamp more than five minutes
old is refused, so a captured request cannot be replayed later. Only v3 is accepted: v1
and v2 signatures carry no timestamp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from domain.crm import CrmNotice

MAX_AGE_MS = 5 * 60 * 1000
# HubSpot decodes these before signing the URI (and only these).
_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
# The subscriptions Leadflow follows, and the object each is about.
OBJECTS = {"contact.propertyChange": "lead", "deal.propertyChange": "deal"}
MAX_EVENTS = 100  # HubSpot sends at most 100 events per request


class WebhookRefused(Exception):
    """The delivery is not from HubSpot, too old, or not readable; the message says why."""


def signature_uri(uri: str) -> str:
    for encoded, plain in _DECODED.items():
        uri = uri.replace(encoded, plain).replace(encoded.lower(), plain)
    return uri


def sign(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature HubSpot would send for this request."""
    source = method.upper().encode() + signature_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: datetime | None = None,
) -> None:
    """Raise ``WebhookRefused`` unless the request carries a valid, fresh v3 signature."""
    if not signature or not timestamp:
        raise WebhookRefused("X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required")
    try:
        sent_ms = int(timestamp)
    except ValueError:
        raise WebhookRefused("X-HubSpot-Request-Timestamp is not a number") from None
    now_ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    if now_ms - sent_ms > MAX_AGE_MS or sent_ms - now_ms > MAX_AGE_MS:
        raise WebhookRefused("the request timestamp is more than 5 minutes away from now")
    expected = sign(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookRefused("the signature does not match")


def notices(body: bytes) -> list[CrmNotice]:
    """The events of a delivery Leadflow follows, as notices (others are skipped).

    HubSpot says an ``eventId`` alone is not guaranteed unique, so a notice's id joins it
    with the portal, subscription, object, property and time: a repeated delivery of the
    same event has the same id, two different events never share one."""
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused("the body is not JSON") from None
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise WebhookRefused(f"the body must be a list of at most {MAX_EVENTS} events")
    out = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise WebhookRefused(f"event {index} is not an object")
        notice = _notice(event, index)
        if notice is not None:
            out.append(notice)
    return out


def _notice(event: dict[str, Any], index: int) -> CrmNotice | None:
    kind = OBJECTS.get(str(event.get("subscriptionType")))
    name = event.get("propertyName")
    if kind is None or not isinstance(name, str):
        return None
    for field in ("eventId", "objectId", "occurredAt"):
        if not isinstance(event.get(field), int | str) or isinstance(event.get(field), bool):
            raise WebhookRefused(f"event {index}: {field} is missing")
    value = event.get("propertyValue")
    key = ":".join(
        str(event.get(part, ""))
        for part in ("portalId", "subscriptionId", "eventId", "objectId", "propertyName")
    )
    try:
        occurred = datetime.fromtimestamp(int(event["occurredAt"]) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        raise WebhookRefused(f"event {index}: occurredAt is not a time in milliseconds") from None
    return CrmNotice(
        notice_id=f"{key}:{event['occurredAt']}"[:200],
        object=kind,
        object_id=str(event["objectId"])[:100],
        fields={name: None if value is None else str(value)},
        occurred_at=occurred,
        source=str(event.get("changeSource")) if event.get("changeSource") else None,
    )
