"""The fake Salesforce org's schema: the objects and fields it has (with the types,
lengths and create/update rules of the Object Reference), record ids with their
key prefixes and 18-character checksum, the errors the REST API answers with, and how
written values are checked and stored."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

Record = dict[str, Any]

PREFIXES = {
    "Lead": "00Q",
    "User": "005",
    "Group": "00G",
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "Task": "00T",
    "Campaign": "701",
    "CampaignMember": "00v",
    "Organization": "00D",
    # Not checked against a real org: any prefix unique within the fake serves.
    "LeadStatus": "01J",
    "OpportunityStage": "01Q",
}
OBJECT_OF_PREFIX = {prefix: name for name, prefix in PREFIXES.items()}
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
ID_RE = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ApiError(Exception):
    """An error answer: HTTP ``status`` and Salesforce's ``errorCode``/``message``/``fields``."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []

    def body(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "errorCode": self.code, "fields": self.fields}]


def to18(id15: str) -> str:
    """The 18-character form of a 15-character id (a checksum of its upper-case letters)."""
    suffix = ""
    for chunk in range(3):
        part = id15[chunk * 5 : chunk * 5 + 5]
        bits = sum(1 << i for i, char in enumerate(part) if "A" <= char <= "Z")
        suffix += _SUFFIX[bits]
    return id15 + suffix


def normal_id(value: str) -> str:
    return to18(value) if len(value) == 15 else value


def new_id(sobject: str, number: int) -> str:
    return to18(f"{PREFIXES[sobject]}Dn{number:010d}")


@dataclass(frozen=True)
class Field:
    type: str  # id string email phone url textarea picklist boolean int double currency
    #            date datetime reference
    length: int | None = None
    create: bool = True
    update: bool = True
    required: bool = False
    refs: tuple[str, ...] = ()


def _ro(kind: str, refs: tuple[str, ...] = ()) -> Field:
    return Field(kind, create=False, update=False, refs=refs)


def _text(length: int, *, required: bool = False) -> Field:
    return Field("string", length, required=required)


def _ref(*refs: str, required: bool = False, update: bool = True) -> Field:
    return Field("reference", 18, required=required, update=update, refs=refs)


_AUDIT = {
    "Id": _ro("id"),
    "IsDeleted": _ro("boolean"),
    "CreatedDate": _ro("datetime"),
    "CreatedById": _ro("reference", ("User",)),
    "LastModifiedDate": _ro("datetime"),
    "LastModifiedById": _ro("reference", ("User",)),
    "SystemModstamp": _ro("datetime"),
}
_OWNER = {"OwnerId": _ref("User")}

OBJECTS: dict[str, dict[str, Field]] = {
    "Lead": {
        **_AUDIT,
        "FirstName": _text(40),
        "LastName": _text(80, required=True),
        "Name": _ro("string"),
        "Company": _text(255, required=True),
        "Email": Field("email", 80),
        "Title": _text(128),
        "Phone": Field("phone", 40),
        "Country": _text(80),
        "State": _text(80),
        "Website": Field("url", 255),
        "Industry": Field("picklist", 255),
        "NumberOfEmployees": Field("int"),
        "LeadSource": Field("picklist", 255),
        "Description": Field("textarea", 32000),
        "Status": Field("picklist", 255),
        "OwnerId": _ref("User", "Group"),
        "IsConverted": _ro("boolean"),
        "ConvertedDate": _ro("date"),
        "ConvertedAccountId": _ro("reference", ("Account",)),
        "ConvertedContactId": _ro("reference", ("Contact",)),
        "ConvertedOpportunityId": _ro("reference", ("Opportunity",)),
        "Leadflow_Score__c": Field("double"),
        "Leadflow_Id__c": _text(64),
        "Leadflow_Status_Reason__c": _text(255),
    },
    "User": {
        **_AUDIT,
        "Username": _ro("string"),
        "Email": _ro("email"),
        "Name": _ro("string"),
        "FirstName": _ro("string"),
        "LastName": _ro("string"),
        "IsActive": _ro("boolean"),
        "UserType": _ro("picklist"),
    },
    "Group": {**_AUDIT, "Name": _ro("string"), "Type": _ro("picklist")},
    "Account": {
        **_AUDIT,
        **_OWNER,
        "Name": _text(255, required=True),
        "Website": Field("url", 255),
        "Industry": Field("picklist", 255),
    },
    "Contact": {
        **_AUDIT,
        **_OWNER,
        "FirstName": _text(40),
        "LastName": _text(80, required=True),
        "Name": _ro("string"),
        "Email": Field("email", 80),
        "AccountId": _ref("Account"),
    },
    "Opportunity": {
        **_AUDIT,
        **_OWNER,
        "Name": _text(120, required=True),
        "StageName": Field("picklist", 255, required=True),
        "CloseDate": Field("date", required=True),
        "Amount": Field("currency"),
        "IsClosed": _ro("boolean"),
        "IsWon": _ro("boolean"),
        "AccountId": _ref("Account"),
        "LeadSource": Field("picklist", 255),
    },
    "LeadStatus": {
        **_AUDIT,
        "MasterLabel": _ro("string"),
        "ApiName": _ro("string"),
        "IsConverted": _ro("boolean"),
        "IsDefault": _ro("boolean"),
        "SortOrder": _ro("int"),
    },
    "OpportunityStage": {
        **_AUDIT,
        "MasterLabel": _ro("string"),
        "ApiName": _ro("string"),
        "IsActive": _ro("boolean"),
        "IsClosed": _ro("boolean"),
        "IsWon": _ro("boolean"),
        "SortOrder": _ro("int"),
    },
    "Campaign": {
        **_AUDIT,
        **_OWNER,
        "Name": _text(80, required=True),
        "IsActive": Field("boolean"),
    },
    "CampaignMember": {
        **_AUDIT,
        "CampaignId": _ref("Campaign", required=True, update=False),
        "LeadId": _ref("Lead", update=False),
        "ContactId": _ref("Contact", update=False),
        "Status": Field("picklist", 40),
    },
    "Task": {
        **_AUDIT,
        **_OWNER,
        "WhoId": _ref("Lead", "Contact"),
        "WhatId": _ref("Account", "Opportunity"),
        "Subject": Field("string", 255),
        "ActivityDate": Field("date"),
        "Description": Field("textarea", 32000),
        "Status": Field("picklist", 40),
        "Priority": Field("picklist", 40),
    },
}
# Opportunity.CurrencyIsoCode exists only in a multi-currency org.
CURRENCY_FIELD = Field("picklist", 3)


def canonical(fields: dict[str, Field], name: str) -> str | None:
    """The field's API name however the caller cased it (SOQL and JSON ignore case)."""
    if name in fields:
        return name
    lowered = name.lower()
    return next((f for f in fields if f.lower() == lowered), None)


def format_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}+0000"
    )


def to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def stored_value(sobject: str, name: str, field: Field, value: Any) -> Any:
    """A written value as the org keeps it; ``ApiError`` as Salesforce words it."""
    if value is None or (
        isinstance(value, str) and value.strip() == "" and field.type != "boolean"
    ):
        return None
    label = name
    kind = field.type
    if kind in ("string", "email", "phone", "url", "textarea", "picklist"):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _cannot_deserialize(value, "String")
        text = str(value)
        if field.length is not None and len(text) > field.length:
            raise ApiError(
                400,
                "STRING_TOO_LONG",
                f"{label}: data value too large: {text[:40]} (max length={field.length})",
                [name],
            )
        if kind == "email" and not _EMAIL.fullmatch(text):
            raise ApiError(
                400, "INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {text}", [name]
            )
        return text
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _cannot_deserialize(value, "boolean")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _cannot_deserialize(value, "int")
    if kind in ("double", "currency"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise _cannot_deserialize(value, "double") from None
    if kind == "date":
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise _cannot_deserialize(value, "java.util.Date") from None
    if kind == "datetime":
        try:
            return datetime.fromisoformat(str(value).replace("+0000", "+00:00"))
        except ValueError:
            raise _cannot_deserialize(value, "java.util.Date") from None
    if kind == "reference":
        text = str(value)
        if not ID_RE.fullmatch(text) or text[:3] not in {PREFIXES[r] for r in field.refs}:
            raise ApiError(
                400, "MALFORMED_ID", f"{label}: id value of incorrect type: {text}", [name]
            )
        return normal_id(text)
    raise AssertionError(f"{sobject}.{name}: unknown type {kind}")


def _cannot_deserialize(value: Any, kind: str) -> ApiError:
    return ApiError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from VALUE_STRING value {value!r}",
    )


def describe(sobject: str, fields: dict[str, Field]) -> Record:
    """The ``sobjects/{name}/describe`` answer, abridged."""
    return {
        "name": sobject,
        "label": sobject,
        "keyPrefix": PREFIXES[sobject],
        "custom": False,
        "queryable": True,
        "retrieveable": True,
        "createable": sobject not in ("User", "Group", "LeadStatus", "OpportunityStage"),
        "updateable": sobject not in ("Group", "LeadStatus", "OpportunityStage"),
        "deletable": sobject not in ("User", "Group", "LeadStatus", "OpportunityStage"),
        "fields": [
            {
                "name": name,
                "label": name,
                "type": field.type,
                "length": field.length or 0,
                "custom": name.endswith("__c"),
                "createable": field.create,
                "updateable": field.update and field.create,
                "nillable": not field.required and field.type != "boolean",
                "referenceTo": list(field.refs),
            }
            for name, field in fields.items()
        ],
    }
