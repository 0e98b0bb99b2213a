"""The properties a new HubSpot account has: the default properties of contacts,
companies, deals and tasks, with the enumeration options HubSpot ships, and which of them
answers carry when none are asked for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.fakes.hubspot_schema import SINGULAR, iso


@dataclass
class PropDef:
    name: str
    label: str
    type: str  # string | number | date | datetime | enumeration | bool
    field_type: str  # text | textarea | number | select | date | booleancheckbox ...
    group: str
    options: tuple[str, ...] = ()
    read_only: bool = False
    external: bool = False  # options live elsewhere: owners, pipelines, stages
    custom: bool = False
    description: str = ""
    created_ms: int = 0

    def render(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": [
                {"label": o, "value": o, "displayOrder": i, "hidden": False}
                for i, o in enumerate(self.options)
            ],
            "displayOrder": -1,
            "calculated": False,
            "externalOptions": self.external,
            "hasUniqueValue": False,
            "hidden": False,
            "hubspotDefined": not self.custom,
            "formField": not self.read_only,
            "archived": False,
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.created_ms),
            "modificationMetadata": {
                "archivable": self.custom,
                "readOnlyDefinition": not self.custom,
                "readOnlyValue": self.read_only,
            },
        }


LEAD_STATUSES = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)
LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
EMPLOYEE_BANDS = ("1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+")
CURRENCIES = ("USD", "EUR", "GBP")
TASK_STATUSES = ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")
TASK_PRIORITIES = ("NONE", "LOW", "MEDIUM", "HIGH")
TASK_TYPES = ("TODO", "CALL", "EMAIL", "LINKED_IN", "MEETING")


def _text(name: str, group: str, field_type: str = "text") -> PropDef:
    return PropDef(name, name.replace("_", " ").title(), "string", field_type, group)


def _enum(
    name: str, group: str, options: tuple[str, ...] = (), *, external: bool = False
) -> PropDef:
    return PropDef(
        name,
        name.replace("_", " ").title(),
        "enumeration",
        "select",
        group,
        options,
        external=external,
    )


def _system(kind: str) -> list[PropDef]:
    group = f"{SINGULAR[kind]}information"
    props = [
        PropDef("createdate", "Create Date", "datetime", "date", group, read_only=True),
        PropDef("hs_lastmodifieddate", "Last Modified", "datetime", "date", group, read_only=True),
        PropDef("hs_object_id", "Record ID", "number", "number", group, read_only=True),
        _enum("hubspot_owner_id", group, external=True),
    ]
    if kind == "contacts":
        props.append(
            PropDef(
                "lastmodifieddate", "Last Modified Date", "datetime", "date", group, read_only=True
            )
        )
    return props


def default_properties() -> dict[str, dict[str, PropDef]]:
    """Fresh definitions of every object type's HubSpot-defined properties."""
    c, co, d, t = "contactinformation", "companyinformation", "dealinformation", "task"
    by_kind: dict[str, list[PropDef]] = {
        "contacts": [
            *(_text(n, c) for n in ("email", "firstname", "lastname", "company", "jobtitle")),
            *(_text(n, c) for n in ("phone", "mobilephone", "country", "state", "city")),
            *(_text(n, c) for n in ("zip", "address", "website", "industry")),
            _enum("hs_lead_status", c, LEAD_STATUSES),
            _enum("lifecyclestage", c, LIFECYCLE_STAGES),
            _enum("numemployees", c, EMPLOYEE_BANDS),
        ],
        "companies": [
            *(_text(n, co) for n in ("name", "domain", "website", "phone", "city", "state")),
            *(_text(n, co) for n in ("country", "industry", "description")),
            PropDef("numberofemployees", "Number of Employees", "number", "number", co),
            _enum("lifecyclestage", co, LIFECYCLE_STAGES),
        ],
        "deals": [
            _text("dealname", d),
            _text("description", d, "textarea"),
            PropDef("amount", "Amount", "number", "number", d),
            PropDef("closedate", "Close Date", "datetime", "date", d),
            _enum("pipeline", d, external=True),
            _enum("dealstage", d, external=True),
            _enum("deal_currency_code", d, CURRENCIES),
            _enum("dealtype", d, ("newbusiness", "existingbusiness")),
        ],
        "tasks": [
            _text("hs_task_subject", t),
            _text("hs_task_body", t, "textarea"),
            PropDef("hs_timestamp", "Due Date", "datetime", "date", t),
            _enum("hs_task_status", t, TASK_STATUSES),
            _enum("hs_task_priority", t, TASK_PRIORITIES),
            _enum("hs_task_type", t, TASK_TYPES),
        ],
    }
    return {kind: {p.name: p for p in [*props, *_system(kind)]} for kind, props in by_kind.items()}


# Properties every answer carries (HubSpot's defaults when none are asked for).
ALWAYS = {
    "contacts": ("createdate", "hs_object_id", "lastmodifieddate"),
    "companies": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "tasks": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
}
DEFAULT_READ = {
    "contacts": ("email", "firstname", "lastname"),
    "companies": ("domain", "name"),
    "deals": ("amount", "closedate", "dealname", "dealstage", "pipeline"),
    "tasks": ("hs_task_subject", "hs_timestamp"),
}
REQUIRED_ON_CREATE = {"deals": ("dealname", "dealstage"), "tasks": ("hs_timestamp",)}
