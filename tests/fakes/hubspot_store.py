"""The HubSpot fake's records, as HubSpot keeps them: CRM objects with string property
values (date-times as epoch milliseconds, rendered as ISO 8601), property definitions and
groups, owners (``id`` ≠ ``userId``; archived ones apart), contact lists, the deal
pipeline and associations (both directions). Every write is validated as HubSpot does:
one unknown property or invalid value refuses the whole request. Thread-safe (one lock)."""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.fakes import hubspot_search
from tests.fakes.hubspot_properties import (
    ALWAYS,
    DEFAULT_READ,
    REQUIRED_ON_CREATE,
    PropDef,
    default_properties,
)
from tests.fakes.hubspot_schema import (
    ASSOCIATION_TYPES,
    OBJECT_TYPE_IDS,
    ContactList,
    HubSpotError,
    Owner,
    Pipeline,
    invalid,
    inverse_type,
    iso,
    not_found,
    parse_time,
    v3_type_name,
    validation_error,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Record:
    id: str
    kind: str
    props: dict[str, str]
    created_ms: int
    updated_ms: int
    # (ms, values) after each write, for a search index that lags behind writes
    versions: list[tuple[int, dict[str, str]]] = field(default_factory=list)


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._ids = itertools.count(1001)
        self._owner_ids = itertools.count(61_000_001)
        self._user_ids = itertools.count(9_100_001)
        self._last_ms = 0
        self.records: dict[str, dict[str, Record]] = {k: {} for k in OBJECT_TYPE_IDS}
        self.props: dict[str, dict[str, PropDef]] = default_properties()
        self.groups: dict[str, dict[str, str]] = {k: {} for k in OBJECT_TYPE_IDS}
        self.owners: list[Owner] = []
        self.lists: dict[str, ContactList] = {}
        self.pipelines = {"default": Pipeline("default", "Sales Pipeline")}
        # (kind, id) -> (other kind, other id) -> association type ids
        self.links: dict[tuple[str, str], dict[tuple[str, str], set[int]]] = {}
        self.created_properties: list[tuple[str, str]] = []
        self.created_groups: list[tuple[str, str]] = []
        self.search_lag_s = 0.0
        self.started_ms = self.now()

    def now(self) -> int:
        """Epoch ms, strictly increasing: every write has its own modification time."""
        with self.lock:
            self._last_ms = max(time.time_ns() // 1_000_000, self._last_ms + 1)
            return self._last_ms

    def next_id(self) -> str:
        return str(next(self._ids))

    # -- records -----------------------------------------------------------------------

    def get(self, kind: str, rid: str) -> Record:
        record = self.records[kind].get(rid)
        if record is None:
            raise not_found()
        return record

    def _validate(self, kind: str, values: dict[str, Any], *, creating: bool) -> dict[str, str]:
        defs = self.props[kind]
        problems: list[dict[str, Any]] = []
        clean: dict[str, str] = {}
        for name, raw in values.items():
            defn = defs.get(name)
            value = "" if raw is None else str(raw)
            if defn is None:
                problems.append(
                    invalid(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            problem = self._check_value(kind, defn, value, values)
            if problem:
                problems.append(invalid(name, *problem))
                continue
            if defn.type in ("datetime", "date") and value:
                value = str(parse_time(value))
            clean[name] = value
        if creating:
            for name in REQUIRED_ON_CREATE.get(kind, ()):
                if not clean.get(name):
                    problems.append(invalid(name, "REQUIRED", f"{name} is required"))
        if problems:
            raise validation_error(problems)
        return clean

    def _check_value(
        self, kind: str, defn: PropDef, value: str, values: dict[str, Any]
    ) -> tuple[str, str] | None:
        if defn.read_only:
            return (
                "READ_ONLY_VALUE",
                f"{defn.name} is a read only property; its value cannot be set.",
            )
        if value == "":
            return None
        if kind == "contacts" and defn.name == "email" and not _EMAIL.match(value):
            return ("INVALID_EMAIL", f"Email address {value} is invalid")
        if defn.name == "hubspot_owner_id":
            if not any(o.id == value and not o.archived for o in self.owners):
                return ("INVALID_OWNER_ID", f"{value} is not a valid owner id")
            return None
        if defn.name == "pipeline" and value not in self.pipelines:
            return ("INVALID_OPTION", f"{value} was not one of the allowed options")
        if defn.name == "dealstage":
            pipeline = self.pipelines.get(str(values.get("pipeline") or "default"))
            if pipeline is None or value not in {s[0] for s in pipeline.stages}:
                return ("INVALID_OPTION", f"{value} was not one of the allowed options")
            return None
        if defn.type == "enumeration" and defn.options and value not in defn.options:
            allowed = ", ".join(defn.options)
            return ("INVALID_OPTION", f"{value} was not one of the allowed options: [{allowed}]")
        if defn.type == "number":
            try:
                Decimal(value)
            except InvalidOperation:
                return ("INVALID_DECIMAL", f"{value} is not a valid number")
        if defn.type in ("datetime", "date") and parse_time(value) is None:
            return ("INVALID_DATE", f"{value} is not a valid date")
        return None

    def create(
        self, kind: str, values: dict[str, Any], associations: list[dict[str, Any]]
    ) -> Record:
        with self.lock:
            clean = self._validate(kind, values, creating=True)
            if kind == "contacts" and clean.get("email"):
                clean["email"] = clean["email"].lower()
                for other in self.records["contacts"].values():
                    if other.props.get("email") == clean["email"]:
                        raise HubSpotError(
                            409, f"Contact already exists. Existing ID: {other.id}", "CONFLICT"
                        )
            targets = [self._association_target(kind, a) for a in associations]
            stamp = self.now()
            rid = self.next_id()
            props = {k: v for k, v in clean.items() if v != ""}
            props |= {"createdate": str(stamp), "hs_object_id": rid}
            record = Record(rid, kind, props, stamp, stamp)
            self._touch(record, stamp)
            self.records[kind][rid] = record
            for to_kind, to_id, type_id in targets:
                self.associate(kind, rid, to_kind, to_id, type_id)
            return record

    def _association_target(self, kind: str, spec: dict[str, Any]) -> tuple[str, str, int]:
        to_id = str((spec.get("to") or {}).get("id", ""))
        for to_kind in self.records:
            if to_id in self.records[to_kind]:
                for type_spec in spec.get("types") or []:
                    type_id = int(type_spec.get("associationTypeId", -1))
                    if type_id in ASSOCIATION_TYPES.get((kind, to_kind), ()):
                        return (to_kind, to_id, type_id)
                raise HubSpotError(
                    400, f"invalid association type for {kind} to {to_kind}", "VALIDATION_ERROR"
                )
        raise HubSpotError(
            400, f"No object found with id {to_id} to associate with", "VALIDATION_ERROR"
        )

    def update(self, kind: str, rid: str, values: dict[str, Any]) -> tuple[Record, dict[str, str]]:
        """Apply a write; the record and the values written."""
        with self.lock:
            record = self.get(kind, rid)
            clean = self._validate(kind, values, creating=False)
            if "email" in clean:
                clean["email"] = clean["email"].lower()
            changed = {k: v for k, v in clean.items() if record.props.get(k, "") != v}
            if changed:
                for name, value in changed.items():
                    if value == "":
                        record.props.pop(name, None)
                    else:
                        record.props[name] = value
                self._touch(record, self.now())
            return record, clean

    def _touch(self, record: Record, stamp: int) -> None:
        record.updated_ms = stamp
        record.props["hs_lastmodifieddate"] = str(stamp)
        if record.kind == "contacts":
            record.props["lastmodifieddate"] = str(stamp)
        record.versions.append((stamp, dict(record.props)))

    def render(
        self,
        record: Record,
        properties: list[str] | None = None,
        associations: list[str] | None = None,
        *,
        only: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A record as HubSpot answers it: the asked properties (null when unset) plus
        the defaults, date-times in ISO 8601; ``only`` for a write's answer."""
        defs = self.props[record.kind]
        if only is not None:
            names = [*only, *ALWAYS[record.kind]]
        else:
            names = [*(properties or DEFAULT_READ[record.kind]), *ALWAYS[record.kind]]
        out: dict[str, str | None] = {}
        for name in names:
            raw = record.props.get(name)
            if name not in defs and name not in record.props:
                continue
            defn = defs.get(name)
            if raw is not None and defn is not None and defn.type in ("datetime", "date"):
                raw = iso(int(raw))
            out[name] = raw
        body: dict[str, Any] = {
            "id": record.id,
            "properties": out,
            "createdAt": iso(record.created_ms),
            "updatedAt": iso(record.updated_ms),
            "archived": False,
        }
        linked: dict[str, Any] = {}
        for to_kind in associations or []:
            results = [
                {"id": to_id, "type": v3_type_name(record.kind, to_kind, t)}
                for to_id, types in self.associated(record.kind, record.id, to_kind)
                for t in sorted(types)
            ]
            if results:
                linked[to_kind] = {"results": results}
        if linked:
            body["associations"] = linked
        return body

    def search_rows(self, kind: str) -> list[hubspot_search.Row]:
        """The records as the search index sees them (``search_lag_s`` behind)."""
        with self.lock:
            if self.search_lag_s <= 0:
                return [(r.id, dict(r.props)) for r in self.records[kind].values()]
            cutoff = self.now() - int(self.search_lag_s * 1000)
            rows = []
            for record in self.records[kind].values():
                seen = [values for stamp, values in record.versions if stamp <= cutoff]
                if seen:
                    rows.append((record.id, dict(seen[-1])))
            return rows

    def search(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        rows = self.search_rows(kind)
        with self.lock:
            page, total, after = hubspot_search.run(rows, body, self.props[kind])
            wanted = body.get("properties") or list(DEFAULT_READ[kind])
            results = []
            for rid, values in page:
                shadow = Record(rid, kind, values, int(values.get("createdate", 0)), 0)
                shadow.updated_ms = int(values.get("hs_lastmodifieddate", 0))
                results.append(self.render(shadow, wanted))
        answer: dict[str, Any] = {"total": total, "results": results}
        if after is not None:
            answer["paging"] = {"next": {"after": after}}
        return answer

    # -- associations ------------------------------------------------------------------

    def associate(self, kind: str, rid: str, to_kind: str, to_id: str, type_id: int) -> None:
        with self.lock:
            self.get(kind, rid)
            self.get(to_kind, to_id)
            unlabeled, _ = ASSOCIATION_TYPES[(kind, to_kind)]
            for t in {type_id, unlabeled}:
                back = inverse_type(kind, to_kind, t)
                self.links.setdefault((kind, rid), {}).setdefault((to_kind, to_id), set()).add(t)
                self.links.setdefault((to_kind, to_id), {}).setdefault((kind, rid), set()).add(back)

    def associated(self, kind: str, rid: str, to_kind: str) -> list[tuple[str, set[int]]]:
        with self.lock:
            found = self.links.get((kind, rid), {})
            return sorted(
                ((other_id, set(types)) for (k, other_id), types in found.items() if k == to_kind),
                key=lambda pair: int(pair[0]),
            )

    # -- owners, lists, properties -----------------------------------------------------

    def add_owner(self, email: str, name: str, *, archived: bool) -> Owner:
        first, _, last = name.partition(" ")
        with self.lock:
            owner = Owner(
                str(next(self._owner_ids)),
                next(self._user_ids),
                email,
                first,
                last,
                archived,
                self.now(),
            )
            self.owners.append(owner)
            return owner

    def list_by_name(self, name: str) -> ContactList:
        with self.lock:
            for contact_list in self.lists.values():
                if contact_list.name.casefold() == name.casefold():
                    return contact_list
        raise HubSpotError(404, f"List does not exist with name {name}.", "OBJECT_NOT_FOUND")

    def add_list(self, name: str, processing_type: str) -> ContactList:
        with self.lock:
            contact_list = ContactList(self.next_id(), name, processing_type, self.now())
            self.lists[contact_list.id] = contact_list
            return contact_list

    def change_members(self, list_id: str, ids: list[str], *, add: bool) -> dict[str, Any]:
        with self.lock:
            contact_list = self.lists.get(list_id)
            if contact_list is None:
                raise HubSpotError(404, f"List {list_id} does not exist.", "OBJECT_NOT_FOUND")
            if contact_list.processing_type == "DYNAMIC":
                raise HubSpotError(
                    400,
                    f"List {list_id} is a DYNAMIC list: its memberships cannot be changed",
                    "VALIDATION_ERROR",
                )
            missing = [i for i in ids if i not in self.records["contacts"]]
            present = [i for i in ids if i in self.records["contacts"]]
            done = [i for i in present if (i not in contact_list.members) == add]
            if add:
                contact_list.members.update(done)
            else:
                contact_list.members.difference_update(done)
            if done:
                contact_list.version += 1
            return {
                "recordsIdsAdded": done if add else [],
                "recordIdsRemoved": [] if add else done,
                "recordIdsMissing": missing,
            }

    def create_property(self, kind: str, spec: dict[str, Any]) -> PropDef:
        with self.lock:
            name = str(spec.get("name", ""))
            if name in self.props[kind]:
                raise HubSpotError(
                    409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS"
                )
            group = str(spec.get("groupName", ""))
            if group not in self.groups[kind] and not any(
                p.group == group for p in self.props[kind].values()
            ):
                raise HubSpotError(
                    400, f"Property group {group} does not exist.", "VALIDATION_ERROR"
                )
            options = tuple(str(o.get("value")) for o in spec.get("options") or [])
            defn = PropDef(
                name=name,
                label=str(spec.get("label", name)),
                type=str(spec.get("type", "string")),
                field_type=str(spec.get("fieldType", "text")),
                group=group,
                options=options,
                custom=True,
                description=str(spec.get("description") or ""),
                created_ms=self.now(),
            )
            self.props[kind][name] = defn
            self.created_properties.append((kind, name))
            return defn

    def create_group(self, kind: str, name: str, label: str) -> dict[str, Any]:
        with self.lock:
            if name in self.groups[kind]:
                raise HubSpotError(
                    409, f"A property group named '{name}' already exists.", "OBJECT_ALREADY_EXISTS"
                )
            self.groups[kind][name] = label
            self.created_groups.append((kind, name))
            return {"name": name, "label": label, "displayOrder": -1, "archived": False}
