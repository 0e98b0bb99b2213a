"""The fake Salesforce org's records and the rules a write goes through: field checks
(``salesforce_schema``), required fields, owners that must be active users (or, for a
Lead, a queue), the active lead assignment rule, converted leads that no longer change,
campaign membership, opportunity stages, and lead conversion. Thread-safe: the HTTP app
and a test's control calls share it."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from typing import Any

from tests.fakes.salesforce_schema import (
    CURRENCY_FIELD,
    ID_RE,
    OBJECT_OF_PREFIX,
    OBJECTS,
    ApiError,
    Field,
    Record,
    canonical,
    new_id,
    normal_id,
    stored_value,
    to_json,
)
from tests.fakes.salesforce_soql import parse, run

QUERY_PAGE = 200
INTEGRATION_USERNAME = "leadflow@example.com"
REP_EMAIL = "rita.rep@example.com"
QUEUE_NAME = "Inbound Lead Queue"
NURTURE_CAMPAIGN = "Nurture"
# (label, converted, default): the org's Lead Status picklist.
LEAD_STATUSES = [
    ("Open - Not Contacted", False, True),
    ("Working - Contacted", False, False),
    ("Nurturing", False, False),
    ("Qualified", False, False),
    ("Closed - Converted", True, False),
    ("Closed - Not Converted", False, False),
]
# (label, closed, won): the org's Opportunity Stage picklist, in order.
OPPORTUNITY_STAGES = [
    ("Prospecting", False, False),
    ("Qualification", False, False),
    ("Negotiation/Review", False, False),
    ("Closed Won", True, True),
    ("Closed Lost", True, False),
]


def _name(values: Record) -> str:
    return " ".join(v for v in (values.get("FirstName"), values.get("LastName")) if v)


class SalesforceOrg:
    def __init__(self, *, multi_currency: bool = False) -> None:
        self.lock = threading.RLock()
        self.schema = {name: dict(fields) for name, fields in OBJECTS.items()}
        if multi_currency:
            self.schema["Opportunity"]["CurrencyIsoCode"] = CURRENCY_FIELD
        self.records: dict[str, dict[str, Record]] = {name: {} for name in self.schema}
        self._numbers = itertools.count(1)
        self.frozen: datetime | None = None
        self.org_id = new_id("Organization", 1)
        self.integration_user_id = self.add_user(INTEGRATION_USERNAME, "Leadflow Integration")
        self.rep_user_id = self.add_user(REP_EMAIL, "Rita Rep")
        self.queue_id = self.insert("Group", {"Name": QUEUE_NAME, "Type": "Queue"})
        for order, (label, converted, default) in enumerate(LEAD_STATUSES):
            self.insert(
                "LeadStatus",
                {
                    "MasterLabel": label,
                    "ApiName": label,
                    "IsConverted": converted,
                    "IsDefault": default,
                    "SortOrder": order + 1,
                },
            )
        for order, (label, closed, won) in enumerate(OPPORTUNITY_STAGES):
            self.insert(
                "OpportunityStage",
                {
                    "MasterLabel": label,
                    "ApiName": label,
                    "IsActive": True,
                    "IsClosed": closed,
                    "IsWon": won,
                    "SortOrder": order + 1,
                },
            )
        self.nurture_campaign_id = self.insert(
            "Campaign", {"Name": NURTURE_CAMPAIGN, "IsActive": True}
        )
        self._cursors: dict[str, list[Record]] = {}

    # -- time and ids ------------------------------------------------------------------

    def now(self) -> datetime:
        if self.frozen is not None:
            return self.frozen
        moment = datetime.now(UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def insert(self, sobject: str, values: Record, user_id: str | None = None) -> str:
        """Store a record as is (no checks): seeding and the org's own writes."""
        with self.lock:
            record_id = new_id(sobject, next(self._numbers))
            now, by = self.now(), user_id or getattr(self, "integration_user_id", None)
            self.records[sobject][record_id] = {
                **dict.fromkeys(self.schema[sobject]),
                "IsDeleted": False,
                **values,
                "Id": record_id,
                "CreatedDate": now,
                "CreatedById": by,
                "LastModifiedDate": now,
                "LastModifiedById": by,
                "SystemModstamp": now,
            }
            return record_id

    def touch(self, sobject: str, record_id: str, values: Record, user_id: str) -> None:
        """Change a record as ``user_id`` did (no checks)."""
        with self.lock:
            now = self.now()
            self.records[sobject][record_id].update(
                values, LastModifiedDate=now, LastModifiedById=user_id, SystemModstamp=now
            )

    def add_user(self, email: str, name: str, *, active: bool = True) -> str:
        first, _, last = name.rpartition(" ")
        return self.insert(
            "User",
            {
                "Username": email
                if email == INTEGRATION_USERNAME
                else f"{email}.{next(self._numbers)}",
                "Email": email,
                "Name": name,
                "FirstName": first or None,
                "LastName": last,
                "IsActive": active,
                "UserType": "Standard",
            },
        )

    def find(self, sobject: str, record_id: str) -> Record | None:
        if not ID_RE.fullmatch(record_id):
            return None
        return self.records[sobject].get(normal_id(record_id))

    def object_of(self, record_id: str) -> str | None:
        return OBJECT_OF_PREFIX.get(record_id[:3])

    # -- reading ---------------------------------------------------------------------

    def get(self, sobject: str, record_id: str, fields: list[str] | None) -> Record:
        with self.lock:
            record = self.find(sobject, record_id)
            if record is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            names = list(self.schema[sobject])
            if fields:
                names = []
                for wanted in fields:
                    name = canonical(self.schema[sobject], wanted.strip())
                    if name is None:
                        raise ApiError(
                            400,
                            "INVALID_FIELD",
                            f"No such column '{wanted}' on sobject of type {sobject}",
                        )
                    names.append(name)
            return {name: to_json(record.get(name)) for name in names}

    def query(self, soql: str, version: str) -> Record:
        with self.lock:
            query = parse(soql, self.schema)
            selected = run(query, list(self.records[query.sobject].values()), self.schema)
            rows = [
                {
                    "attributes": {
                        "type": query.sobject,
                        "url": f"/services/data/v{version}/sobjects/{query.sobject}/{r['Id']}",
                    },
                    **{name: to_json(r.get(name)) for name in query.fields},
                }
                for r in selected
            ]
            locator = f"01g{new_id('Lead', next(self._numbers))[3:15]}"
            self._cursors[locator] = rows
            return self.page(locator, 0, version)

    def page(self, locator: str, start: int, version: str) -> Record:
        with self.lock:
            rows = self._cursors.get(locator)
            if rows is None or start > len(rows):
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            answer: Record = {
                "totalSize": len(rows),
                "done": start + QUERY_PAGE >= len(rows),
                "records": rows[start : start + QUERY_PAGE],
            }
            if not answer["done"]:
                answer["nextRecordsUrl"] = (
                    f"/services/data/v{version}/query/{locator}-{start + QUERY_PAGE}"
                )
            return answer

    # -- writing through the API -----------------------------------------------------

    def _checked(self, sobject: str, data: Record, *, creating: bool) -> Record:
        fields = self.schema[sobject]
        values: Record = {}
        for given, value in data.items():
            name = canonical(fields, given)
            if name is None:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{given}' on sobject of type {sobject}",
                    [given],
                )
            field = fields[name]
            if not (field.create if creating else field.update and field.create):
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security settings "
                    "of this field and verify that it is read/write for your profile or "
                    "permission set.",
                    [name],
                )
            values[name] = stored_value(sobject, name, field, value)
            if field.type == "reference" and values[name] is not None:
                self.check_reference(sobject, name, field, values[name])
        return values

    def check_reference(self, sobject: str, name: str, field: Field, value: str) -> None:
        target = self.object_of(value)
        record = self.find(target, value) if target in field.refs and target else None
        if record is None:
            raise ApiError(
                400, "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {value}", [name]
            )
        if target == "User" and not record["IsActive"]:
            raise ApiError(
                400,
                "INACTIVE_OWNER_OR_USER",
                f"operation performed with inactive user [{value}] as owner of {sobject.lower()}",
            )

    def _missing(self, sobject: str, record: Record) -> None:
        missing = [
            n for n, f in self.schema[sobject].items() if f.required and record.get(n) is None
        ]
        if sobject == "CampaignMember" and not (record.get("LeadId") or record.get("ContactId")):
            missing.append("LeadId")
        if missing:
            raise ApiError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )

    def _picklists(self, sobject: str, record: Record) -> None:
        if sobject == "Lead" and record.get("Status") is not None:
            labels = {r["ApiName"] for r in self.records["LeadStatus"].values()}
            if record["Status"] not in labels:
                raise ApiError(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"Lead Status: bad value for restricted picklist field: {record['Status']}",
                    ["Status"],
                )
        if sobject == "Opportunity":
            stage = self.stage(record.get("StageName"))
            if stage is None:
                raise ApiError(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"Stage: bad value for restricted picklist field: {record.get('StageName')}",
                    ["StageName"],
                )
            record["IsClosed"], record["IsWon"] = stage["IsClosed"], stage["IsWon"]

    def stage(self, name: str | None) -> Record | None:
        return next(
            (s for s in self.records["OpportunityStage"].values() if s["ApiName"] == name), None
        )

    def create(self, sobject: str, data: Record, user_id: str, *, auto_assign: bool) -> str:
        with self.lock:
            values = self._checked(sobject, data, creating=True)
            defaults: Record = {}
            if "OwnerId" in self.schema[sobject]:
                defaults["OwnerId"] = user_id
            if sobject == "Lead":
                default = next(r for r in self.records["LeadStatus"].values() if r["IsDefault"])
                defaults.update(Status=default["ApiName"], IsConverted=False)
            if sobject == "Task":
                defaults.update(Status="Not Started", Priority="Normal")
            if sobject == "CampaignMember":
                defaults["Status"] = "Sent"
            if sobject == "Opportunity" and "CurrencyIsoCode" in self.schema[sobject]:
                defaults["CurrencyIsoCode"] = "USD"
            record = {**defaults, **{k: v for k, v in values.items() if v is not None}}
            self._missing(sobject, record)
            self._picklists(sobject, record)
            if sobject in ("Lead", "Contact"):
                record["Name"] = _name(record)
            if sobject == "Lead" and auto_assign:
                record["OwnerId"] = self.queue_id  # the active assignment rule
            if sobject == "CampaignMember":
                self._no_duplicate_member(record)
            return self.insert(sobject, record, user_id)

    def _no_duplicate_member(self, record: Record) -> None:
        for member in self.records["CampaignMember"].values():
            if member["CampaignId"] == record["CampaignId"] and (
                member.get("LeadId") == record.get("LeadId")
                and member.get("ContactId") == record.get("ContactId")
            ):
                raise ApiError(400, "DUPLICATE_VALUE", "Already a campaign member.")

    def update(
        self, sobject: str, record_id: str, data: Record, user_id: str, *, auto_assign: bool
    ) -> None:
        with self.lock:
            record = self.find(sobject, record_id)
            if record is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            values = self._checked(sobject, data, creating=False)
            if sobject == "Lead" and record["IsConverted"]:
                raise ApiError(
                    400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead"
                )
            merged = {**record, **values}
            self._missing(sobject, merged)
            self._picklists(sobject, merged)
            if sobject in ("Lead", "Contact"):
                merged["Name"] = _name(merged)
            if sobject == "Lead" and auto_assign:
                merged["OwnerId"] = self.queue_id
            changed = {k: v for k, v in merged.items() if record.get(k) != v}
            self.touch(sobject, record["Id"], changed, user_id)

    def delete(self, sobject: str, record_id: str) -> None:
        with self.lock:
            record = self.find(sobject, record_id)
            if record is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            del self.records[sobject][record["Id"]]

    def value(self, sobject: str, record_id: str, name: str) -> Any:
        with self.lock:
            record = self.find(sobject, record_id)
            return None if record is None else record.get(name)
