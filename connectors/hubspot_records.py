"""Leadflow's lead as HubSpot contact properties and back, HubSpot's value vocabularies
(lead statuses, employee bands, association types) and its time formats."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from domain.crm import CrmLeadData, LeadStatus

# hs_lead_status for each Leadflow status (converted is set by conversion only).
LEAD_STATUS: dict[LeadStatus, str] = {
    LeadStatus.open: "NEW",
    LeadStatus.working: "IN_PROGRESS",
    LeadStatus.nurturing: "BAD_TIMING",
    LeadStatus.qualified: "OPEN_DEAL",
    LeadStatus.disqualified: "UNQUALIFIED",
}
CONVERTED_STAGE = "customer"  # lifecyclestage Leadflow's conversion sets

# HubSpot-defined association type ids used when creating records.
TASK_TO_CONTACT = 204
DEAL_TO_CONTACT = 3
DEAL_TO_COMPANY = 341
COMPANY_TO_CONTACT = 280

# The options of the contact property numemployees (a dropdown, not a number).
EMPLOYEE_BANDS: tuple[tuple[int, str], ...] = (
    (5, "1-5"),
    (25, "5-25"),
    (50, "25-50"),
    (100, "50-100"),
    (500, "100-500"),
    (1000, "500-1000"),
)
CONTACT_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "company",
    "jobtitle",
    "phone",
    "country",
    "state",
    "website",
    "industry",
    "numemployees",
    "hubspot_owner_id",
    "hs_lead_status",
    "lifecyclestage",
    "leadflow_id",
    "leadflow_score",
    "leadflow_status_reason",
)


def employee_band(size: int | None) -> str | None:
    if size is None or size <= 0:
        return None
    for most, band in EMPLOYEE_BANDS:
        if size <= most:
            return band
    return "1000+"


def band_floor(band: str | None) -> int | None:
    """The smallest head count of a band (``25-50`` -> 25): what a band says of a size."""
    if not band:
        return None
    digits = band.split("-")[0].rstrip("+")
    return int(digits) if digits.isdigit() else None


def lead_properties(lead: CrmLeadData) -> dict[str, str]:
    """The contact properties Leadflow writes for a lead (unset fields left alone).
    ``lead_source``, ``description`` and ``extra`` have no contact property of their own
    and are not written: one unknown property would refuse the whole write."""
    values = {
        "email": lead.email,
        "firstname": lead.first_name,
        "lastname": lead.last_name,
        "company": lead.company,
        "jobtitle": lead.title,
        "phone": lead.phone,
        "country": lead.country,
        "state": lead.state,
        "website": lead.website,
        "industry": lead.industry,
        "numemployees": employee_band(lead.company_size),
        "hubspot_owner_id": lead.owner_id,
        "leadflow_id": lead.leadflow_id,
        "leadflow_score": None if lead.score is None else str(lead.score),
    }
    return {k: v for k, v in values.items() if v not in (None, "")}


def lead_from(properties: Mapping[str, str | None]) -> CrmLeadData:
    def get(name: str) -> str | None:
        return properties.get(name) or None

    score = get("leadflow_score")
    try:
        score_value = int(float(score)) if score else None
    except ValueError:
        score_value = None
    return CrmLeadData(
        email=get("email") or "",
        first_name=get("firstname"),
        last_name=get("lastname"),
        company=get("company"),
        title=get("jobtitle"),
        phone=get("phone"),
        country=get("country"),
        state=get("state"),
        website=get("website"),
        industry=get("industry"),
        company_size=band_floor(get("numemployees")),
        score=score_value,
        owner_id=get("hubspot_owner_id"),
        leadflow_id=get("leadflow_id") or "",
    )


def noon_utc(day: date) -> str:
    """A date as a HubSpot date-time: noon UTC, the same calendar day from UTC-11 to
    UTC+11 (midnight UTC shows as the day before across the Americas)."""
    return f"{day.isoformat()}T12:00:00.000Z"


def epoch_ms(value: str | None) -> int | None:
    """Epoch milliseconds of a HubSpot date-time (ISO 8601 or epoch millis)."""
    if not value:
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def utc_day(value: str | None) -> date | None:
    ms = epoch_ms(value)
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).date()


def web_domain(url: str | None) -> str | None:
    """``example.com`` from ``https://www.Example.com/path``."""
    if not url:
        return None
    text = url.strip().casefold()
    text = text.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    text = text.removeprefix("www.")
    return text or None


def link(record_id: str, type_id: int) -> dict[str, Any]:
    """An association of a record being created with ``record_id`` (HubSpot-defined
    ``type_id``)."""
    spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
    return {"to": {"id": record_id}, "types": [spec]}


def associated(record: Any, kind: str) -> list[str]:
    """The ids of ``kind`` a record read with ``associations=[kind]`` is associated with."""
    found = (record.associations or {}).get(kind)
    ids = [str(a.id) for a in found.results] if found else []
    return list(dict.fromkeys(ids))
