"""The Lead record as Leadflow writes and reads it: which ``CrmLeadData`` value goes to
which Lead field (standard fields, and the custom fields ``Leadflow_Score__c``,
``Leadflow_Id__c`` and ``Leadflow_Status_Reason__c``), the values Salesforce requires when
the form gave none, and the way back from a record."""

from __future__ import annotations

from typing import Any

from domain.crm import CrmLeadData
from domain.rules import FREEMAIL_DOMAINS

Record = dict[str, Any]
NOT_PROVIDED = "[not provided]"
SCORE_FIELD = "Leadflow_Score__c"
LEADFLOW_ID_FIELD = "Leadflow_Id__c"
REASON_FIELD = "Leadflow_Status_Reason__c"
CUSTOM_FIELDS = (SCORE_FIELD, LEADFLOW_ID_FIELD, REASON_FIELD)
# Lengths of the standard text fields (Salesforce refuses longer values as
# STRING_TOO_LONG; a too-long form value is cut rather than the lead refused).
_TEXT_LIMITS = {
    "FirstName": 40,
    "LastName": 80,
    "Company": 255,
    "Title": 128,
    "Phone": 40,
    "Country": 80,
    "State": 80,
    "Website": 255,
    "Industry": 255,
    "LeadSource": 255,
    "Description": 32000,
    REASON_FIELD: 255,
    "Subject": 255,
}
READ_FIELDS = [
    "Id",
    "Email",
    "FirstName",
    "LastName",
    "Company",
    "Title",
    "Phone",
    "Country",
    "State",
    "Website",
    "Industry",
    "NumberOfEmployees",
    "LeadSource",
    "Description",
    "OwnerId",
    SCORE_FIELD,
    LEADFLOW_ID_FIELD,
]


def text_value(field: str, value: str | None) -> str | None:
    text = (value or "").strip()
    return text[: _TEXT_LIMITS.get(field, len(text))] or None


def lead_fields(lead: CrmLeadData) -> Record:
    """The Lead fields a write sends: those with a value (a blank one is no value)."""
    texts = {
        "FirstName": lead.first_name,
        "LastName": lead.last_name,
        "Company": lead.company,
        "Title": lead.title,
        "Phone": lead.phone,
        "Country": lead.country,
        "State": lead.state,
        "Website": lead.website,
        "Industry": lead.industry,
        "LeadSource": lead.lead_source,
        "Description": lead.description,
        "OwnerId": lead.owner_id,
        LEADFLOW_ID_FIELD: lead.leadflow_id,
    }
    fields: Record = {}
    for name, value in texts.items():
        text = text_value(name, value)
        if text is not None:
            fields[name] = text
    if lead.company_size is not None:
        fields["NumberOfEmployees"] = lead.company_size
    if lead.score is not None:
        fields[SCORE_FIELD] = lead.score
    return fields


def required_defaults(email: str) -> Record:
    """``LastName`` and ``Company`` (which Salesforce requires) for a form that gave
    none: the email's local part, and its domain unless it is a free-mail one."""
    local, _, domain = email.rpartition("@")
    return {
        "LastName": text_value("LastName", local) or NOT_PROVIDED,
        "Company": NOT_PROVIDED if domain in FREEMAIL_DOMAINS or not domain else domain,
    }


def lead_from_record(record: Record) -> CrmLeadData:
    size, score = record.get("NumberOfEmployees"), record.get(SCORE_FIELD)
    return CrmLeadData(
        email=record.get("Email") or "",
        first_name=record.get("FirstName"),
        last_name=record.get("LastName"),
        company=record.get("Company"),
        title=record.get("Title"),
        phone=record.get("Phone"),
        country=record.get("Country"),
        state=record.get("State"),
        website=record.get("Website"),
        industry=record.get("Industry"),
        company_size=int(size) if size is not None else None,
        lead_source=record.get("LeadSource"),
        description=record.get("Description"),
        score=int(score) if score is not None else None,
        owner_id=record.get("OwnerId"),
        leadflow_id=record.get(LEADFLOW_ID_FIELD) or "",
    )
