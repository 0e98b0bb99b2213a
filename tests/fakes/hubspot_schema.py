"""The shapes of the HubSpot fake: HubSpot's error body, the time formats (epoch
milliseconds inside, ISO 8601 in answers, as HubSpot does), the HubSpot-defined
association types, the default deal pipeline, owners (``id`` ≠ ``userId``) and contact
lists."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

OBJECT_TYPES = ("contacts", "companies", "deals", "tasks")
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "tasks": "0-27"}
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "tasks": "task"}


class HubSpotError(Exception):
    """An error answer in HubSpot's shape: ``{"status": "error", "message", "category",
    "correlationId", ...}``."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
        }
        body.update(self.extra)
        if self.category:
            body["category"] = self.category
        return body


def not_found(message: str = "Object not found.  objectId are usually numeric.") -> HubSpotError:
    return HubSpotError(404, message, "OBJECT_NOT_FOUND")


def validation_error(results: list[dict[str, Any]]) -> HubSpotError:
    """HubSpot's answer to a write with invalid property values: the per-property
    results are JSON inside the message."""
    return HubSpotError(
        400, f"Property values were not valid: {json.dumps(results)}", "VALIDATION_ERROR"
    )


def invalid(name: str, error: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }


# -- time ----------------------------------------------------------------------------


def iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_time(value: str) -> int | None:
    """Epoch milliseconds from what HubSpot accepts for a date-time: epoch millis, an
    ISO 8601 date-time or a date (midnight UTC)."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


# -- associations --------------------------------------------------------------------

# HubSpot-defined association type ids, per direction: (from, to) -> (unlabeled, primary)
ASSOCIATION_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "contacts"): (3, None),
    ("contacts", "deals"): (4, None),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
    ("tasks", "contacts"): (204, None),
    ("contacts", "tasks"): (203, None),
    ("tasks", "companies"): (192, None),
    ("companies", "tasks"): (191, None),
    ("tasks", "deals"): (216, None),
    ("deals", "tasks"): (215, None),
}


def inverse_type(from_kind: str, to_kind: str, type_id: int) -> int:
    _, primary = ASSOCIATION_TYPES[(from_kind, to_kind)]
    back_unlabeled, back_primary = ASSOCIATION_TYPES[(to_kind, from_kind)]
    if type_id == primary and back_primary is not None:
        return back_primary
    return back_unlabeled


def v3_type_name(from_kind: str, to_kind: str, type_id: int) -> str:
    """The ``type`` of an association in a v3 answer (``contact_to_company``…)."""
    name = f"{SINGULAR[from_kind]}_to_{SINGULAR[to_kind]}"
    _, primary = ASSOCIATION_TYPES[(from_kind, to_kind)]
    return name if primary is None or type_id == primary else f"{name}_unlabeled"


# -- pipelines -----------------------------------------------------------------------

DEAL_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", 0.2, False),
    ("qualifiedtobuy", "Qualified To Buy", 0.4, False),
    ("presentationscheduled", "Presentation Scheduled", 0.6, False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
    ("contractsent", "Contract Sent", 0.9, False),
    ("closedwon", "Closed Won", 1.0, True),
    ("closedlost", "Closed Lost", 0.0, True),
)


@dataclass
class Pipeline:
    id: str
    label: str
    stages: list[tuple[str, str, float, bool]] = field(default_factory=lambda: list(DEAL_STAGES))

    def render(self, created_ms: int) -> dict[str, Any]:
        stamp = iso(created_ms)
        return {
            "id": self.id,
            "label": self.label,
            "displayOrder": 0,
            "archived": False,
            "createdAt": stamp,
            "updatedAt": stamp,
            "stages": [
                {
                    "id": sid,
                    "label": label,
                    "displayOrder": i,
                    "metadata": {"isClosed": str(closed).lower(), "probability": str(prob)},
                    "archived": False,
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                }
                for i, (sid, label, prob, closed) in enumerate(self.stages)
            ],
        }


# -- owners and lists ----------------------------------------------------------------


@dataclass
class Owner:
    id: str
    user_id: int
    email: str
    first_name: str
    last_name: str
    archived: bool
    created_ms: int

    def render(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userId": self.user_id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "archived": self.archived,
            "type": "PERSON",
            "teams": [],
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.created_ms),
        }


@dataclass
class ContactList:
    id: str
    name: str
    processing_type: str  # MANUAL | SNAPSHOT | DYNAMIC
    created_ms: int
    members: set[str] = field(default_factory=set)
    version: int = 1

    def render(self) -> dict[str, Any]:
        return {
            "listId": self.id,
            "name": self.name,
            "processingType": self.processing_type,
            "processingStatus": "COMPLETE",
            "objectTypeId": OBJECT_TYPE_IDS["contacts"],
            "listVersion": self.version,
            "size": len(self.members),
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.created_ms),
        }
