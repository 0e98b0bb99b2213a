"""The endpoints of the HubSpot fake: CRM objects v3 (contacts, companies, deals, tasks:
read, page, create, update, search, batch read), owners, properties and property groups,
lists v3 with memberships, deal pipelines and associations v4. Each handler takes the
store, the path parameters, the query and the JSON body, and returns (status, body)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams

from tests.fakes.hubspot_schema import ASSOCIATION_TYPES, OBJECT_TYPE_IDS, HubSpotError
from tests.fakes.hubspot_store import Store

Params = dict[str, str]
Handler = Callable[[Store, Params, QueryParams, Any], tuple[int, Any]]
KINDS = "contacts|companies|deals|tasks"


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    scope: Callable[[Params], str]
    write: bool


def _csv(query: QueryParams, name: str) -> list[str] | None:
    values = [v for raw in query.getlist(name) for v in raw.split(",") if v]
    return values or None


def _page(items: list[Any], query: QueryParams, default: int, most: int) -> tuple[list[Any], Any]:
    limit = min(int(query.get("limit") or default), most)
    offset = int(query.get("after") or 0)
    page = items[offset : offset + limit]
    paging = None
    if offset + limit < len(items):
        paging = {"next": {"after": str(offset + limit), "link": "?after="}}
    return page, paging


def _collection(results: list[Any], paging: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"results": results}
    if paging:
        body["paging"] = paging
    return body


def _batch(results: list[Any], errors: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": stamp,
        "completedAt": stamp,
    }
    if errors:
        body |= {"numErrors": len(errors), "errors": errors}
    return (207 if errors else 200), body


def _missing(ids: list[str]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": "Could not get some objects, they may be deleted or not exist.",
        "context": {"ids": ids},
    }


# -- objects -------------------------------------------------------------------------


def list_objects(store: Store, p: Params, q: QueryParams, _: Any) -> tuple[int, Any]:
    with store.lock:
        records = sorted(store.records[p["kind"]].values(), key=lambda r: int(r.id))
        page, paging = _page(records, q, 10, 100)
        results = [store.render(r, _csv(q, "properties"), _csv(q, "associations")) for r in page]
    return 200, _collection(results, paging)


def create_object(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    values = dict(body.get("properties") or {})
    record = store.create(p["kind"], values, list(body.get("associations") or []))
    return 201, store.render(record, only=record.props)


def get_object(store: Store, p: Params, q: QueryParams, _: Any) -> tuple[int, Any]:
    with store.lock:
        record = store.get(p["kind"], p["id"])
        return 200, store.render(record, _csv(q, "properties"), _csv(q, "associations"))


def update_object(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    record, written = store.update(p["kind"], p["id"], dict(body.get("properties") or {}))
    return 200, store.render(record, only=written)


def search_objects(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    return 200, store.search(p["kind"], body if isinstance(body, dict) else {})


def batch_read(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    ids = [str(i.get("id")) for i in body.get("inputs") or []]
    with store.lock:
        found = [store.records[p["kind"]].get(i) for i in ids]
        results = [store.render(r, body.get("properties")) for r in found if r is not None]
    missing = [i for i, r in zip(ids, found, strict=True) if r is None]
    return _batch(results, [_missing(missing)] if missing else [])


# -- owners, pipelines ---------------------------------------------------------------


def list_owners(store: Store, _: Params, q: QueryParams, __: Any) -> tuple[int, Any]:
    archived = (q.get("archived") or "false").lower() == "true"
    email = q.get("email")
    with store.lock:
        owners = [
            o
            for o in store.owners
            if o.archived == archived and (email is None or o.email.lower() == email.lower())
        ]
        page, paging = _page(owners, q, 100, 500)
        return 200, _collection([o.render() for o in page], paging)


def get_pipeline(store: Store, p: Params, _: QueryParams, __: Any) -> tuple[int, Any]:
    pipeline = store.pipelines.get(p["name"])
    if pipeline is None:
        raise HubSpotError(404, f"Unable to find pipeline {p['name']}", "OBJECT_NOT_FOUND")
    return 200, pipeline.render(store.started_ms)


def list_pipelines(store: Store, _: Params, __: QueryParams, ___: Any) -> tuple[int, Any]:
    return 200, {"results": [pl.render(store.started_ms) for pl in store.pipelines.values()]}


# -- properties ----------------------------------------------------------------------


def read_properties(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    names = [str(i.get("name")) for i in body.get("inputs") or []]
    defs = store.props[p["kind"]]
    results = [defs[n].render() for n in names if n in defs]
    missing = [n for n in names if n not in defs]
    return _batch(results, [_missing(missing)] if missing else [])


def get_property(store: Store, p: Params, _: QueryParams, __: Any) -> tuple[int, Any]:
    defn = store.props[p["kind"]].get(p["name"])
    if defn is None:
        raise HubSpotError(
            404, f"Unable to find property {p['name']} for {p['kind']}", "OBJECT_NOT_FOUND"
        )
    return 200, defn.render()


def update_property(store: Store, p: Params, q: QueryParams, body: Any) -> tuple[int, Any]:
    status, _ = get_property(store, p, q, body)
    defn = store.props[p["kind"]][p["name"]]
    defn.label = str(body.get("label") or defn.label)
    return status, defn.render()


def list_properties(store: Store, p: Params, _: QueryParams, __: Any) -> tuple[int, Any]:
    return 200, {"results": [d.render() for d in store.props[p["kind"]].values()]}


def create_property(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    return 201, store.create_property(p["kind"], body).render()


def create_group(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    name, label = str(body.get("name", "")), str(body.get("label", ""))
    return 201, store.create_group(p["kind"], name, label)


def get_group(store: Store, p: Params, _: QueryParams, __: Any) -> tuple[int, Any]:
    label = store.groups[p["kind"]].get(p["name"])
    if label is None:
        raise HubSpotError(404, f"Unable to find group {p['name']}", "OBJECT_NOT_FOUND")
    return 200, {"name": p["name"], "label": label, "displayOrder": -1, "archived": False}


# -- lists ---------------------------------------------------------------------------


def list_by_name(store: Store, p: Params, _: QueryParams, __: Any) -> tuple[int, Any]:
    if p["otid"] != OBJECT_TYPE_IDS["contacts"]:
        raise HubSpotError(404, f"List does not exist with name {p['name']}.", "OBJECT_NOT_FOUND")
    return 200, {"list": store.list_by_name(p["name"]).render()}


def list_by_id(store: Store, p: Params, _: QueryParams, __: Any) -> tuple[int, Any]:
    contact_list = store.lists.get(p["id"])
    if contact_list is None:
        raise HubSpotError(404, f"List {p['id']} does not exist.", "OBJECT_NOT_FOUND")
    return 200, {"list": contact_list.render()}


def create_list(store: Store, _: Params, __: QueryParams, body: Any) -> tuple[int, Any]:
    name = str(body.get("name", ""))
    try:
        store.list_by_name(name)
    except HubSpotError:
        kind = str(body.get("processingType", "MANUAL"))
        return 200, {"list": store.add_list(name, kind).render()}
    raise HubSpotError(400, f"A list named {name} already exists.", "VALIDATION_ERROR")


def add_members(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    return 200, store.change_members(p["id"], [str(i) for i in body or []], add=True)


def remove_members(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    return 200, store.change_members(p["id"], [str(i) for i in body or []], add=False)


# -- associations v4 -----------------------------------------------------------------


def _labelled(kind: str, to_kind: str, to_id: str, types: set[int]) -> dict[str, Any]:
    _, primary = ASSOCIATION_TYPES[(kind, to_kind)]
    return {
        "toObjectId": int(to_id),
        "associationTypes": [
            {
                "category": "HUBSPOT_DEFINED",
                "typeId": t,
                "label": "Primary" if t == primary else None,
            }
            for t in sorted(types)
        ],
    }


def associations_page(store: Store, p: Params, q: QueryParams, _: Any) -> tuple[int, Any]:
    store.get(p["kind"], p["id"])
    found = store.associated(p["kind"], p["id"], p["to_kind"])
    page, paging = _page(found, q, 500, 500)
    results = [_labelled(p["kind"], p["to_kind"], i, t) for i, t in page]
    return 200, _collection(results, paging)


def associate_default(store: Store, p: Params, _: QueryParams, __: Any) -> tuple[int, Any]:
    unlabeled, _primary = ASSOCIATION_TYPES[(p["kind"], p["to_kind"])]
    store.associate(p["kind"], p["id"], p["to_kind"], p["to_id"], unlabeled)
    spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": unlabeled}
    result = {"from": {"id": p["id"]}, "to": {"id": p["to_id"]}, "associationSpec": spec}
    return _batch([result], [])


def associations_batch(store: Store, p: Params, _: QueryParams, body: Any) -> tuple[int, Any]:
    results, missing = [], []
    for item in body.get("inputs") or []:
        rid = str(item.get("id"))
        found = store.associated(p["kind"], rid, p["to_kind"])
        if not found:
            missing.append(rid)
            continue
        to = [_labelled(p["kind"], p["to_kind"], i, t) for i, t in found]
        results.append({"from": {"id": rid}, "to": to})
    errors = [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"No {p['to_kind']} is associated with {p['kind']} {rid}.",
            "context": {"fromObjectId": [rid]},
        }
        for rid in missing
    ]
    return _batch(results, errors)


# -- routing -------------------------------------------------------------------------


def _objects_scope(access: str) -> Callable[[Params], str]:
    def scope(p: Params) -> str:
        # Tasks (engagements) use the contacts scopes in HubSpot's private apps.
        kind = "contacts" if p["kind"] == "tasks" else p["kind"]
        return f"crm.objects.{kind}.{access}"

    return scope


def _fixed(scope: str) -> Callable[[Params], str]:
    return lambda _: scope


def _schemas(access: str) -> Callable[[Params], str]:
    return lambda p: f"crm.schemas.{p['kind']}.{access}"


_READ, _WRITE = _objects_scope("read"), _objects_scope("write")
_SCHEMA_R, _SCHEMA_W = _schemas("read"), _schemas("write")
_OWNERS, _PIPES = _fixed("crm.objects.owners.read"), _fixed("crm.objects.deals.read")
_LISTS_R, _LISTS_W = _fixed("crm.lists.read"), _fixed("crm.lists.write")
_V3, _PROPS, _V4 = "/crm/v3/objects/{kind}", "/crm/v3/properties/{kind}", "/crm/v4/objects/{kind}"
_TABLE: list[tuple[str, str, Handler, Callable[[Params], str], bool]] = [
    ("POST", f"{_V3}/search", search_objects, _READ, False),
    ("POST", f"{_V3}/batch/read", batch_read, _READ, False),
    ("GET", _V3, list_objects, _READ, False),
    ("POST", _V3, create_object, _WRITE, True),
    ("GET", f"{_V3}/{{id}}", get_object, _READ, False),
    ("PATCH", f"{_V3}/{{id}}", update_object, _WRITE, True),
    ("GET", "/crm/v3/owners", list_owners, _OWNERS, False),
    ("GET", "/crm/v3/pipelines/deals", list_pipelines, _PIPES, False),
    ("GET", "/crm/v3/pipelines/deals/{name}", get_pipeline, _PIPES, False),
    ("POST", f"{_PROPS}/batch/read", read_properties, _SCHEMA_R, False),
    ("GET", f"{_PROPS}/groups/{{name}}", get_group, _SCHEMA_R, False),
    ("POST", f"{_PROPS}/groups", create_group, _SCHEMA_W, True),
    ("GET", _PROPS, list_properties, _SCHEMA_R, False),
    ("POST", _PROPS, create_property, _SCHEMA_W, True),
    ("GET", f"{_PROPS}/{{name}}", get_property, _SCHEMA_R, False),
    ("PATCH", f"{_PROPS}/{{name}}", update_property, _SCHEMA_W, True),
    ("GET", "/crm/v3/lists/object-type-id/{otid}/name/{name}", list_by_name, _LISTS_R, False),
    ("POST", "/crm/v3/lists", create_list, _LISTS_W, True),
    ("GET", "/crm/v3/lists/{id}", list_by_id, _LISTS_R, False),
    ("PUT", "/crm/v3/lists/{id}/memberships/add", add_members, _LISTS_W, True),
    ("PUT", "/crm/v3/lists/{id}/memberships/remove", remove_members, _LISTS_W, True),
    ("GET", f"{_V4}/{{id}}/associations/{{to_kind}}", associations_page, _READ, False),
    (
        "PUT",
        f"{_V4}/{{id}}/associations/default/{{to_kind}}/{{to_id}}",
        associate_default,
        _WRITE,
        True,
    ),
    ("POST", "/crm/v4/associations/{kind}/{to_kind}/batch/read", associations_batch, _READ, False),
]
_PARTS = {
    "kind": KINDS,
    "to_kind": KINDS,
    "id": r"\w+",
    "to_id": r"\w+",
    "name": "[^/]+",
    "otid": "[^/]+",
}


def _pattern(template: str) -> re.Pattern[str]:
    """``/crm/v3/objects/{kind}/{id}`` as a regular expression (a trailing / allowed)."""
    body = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>{_PARTS[m[1]]})", template)
    return re.compile(body + "/?$")


ROUTES = [Route(m, _pattern(p), h, s, w) for m, p, h, s, w in _TABLE]


def match(method: str, path: str) -> tuple[Route, Params] | None:
    for route in ROUTES:
        found = route.pattern.match(path)
        if found and route.method == method:
            return route, {k: v for k, v in found.groupdict().items() if v is not None}
    return None
