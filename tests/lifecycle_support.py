"""Helpers of the lifecycle scenario tests: a configuration with durations in seconds,
published before the leads arrive, and a client that reports events and waits for
stages through the public API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import yaml
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from domain.config_yaml import load_yaml
from store import config as config_store
from store.db import Database
from store.models import Notification
from store.models_crm import CrmRecord
from tests.conftest import Stack

T = TypeVar("T")

# Three inbound reps, an account-management pool, SLA and nurture in seconds.
CONFIG = """
reps:
  - {email: avery.park@example.com, name: Avery Park}
  - {email: jordan.lee@example.com, name: Jordan Lee}
  - {email: sam.rivera@example.com, name: Sam Rivera}
  - {email: morgan.hale@example.com, name: Morgan Hale}
  - {email: riley.chen@example.com, name: Riley Chen}
pools:
  - name: Inbound
    manager: morgan.hale@example.com
    members:
      - {rep: avery.park@example.com}
      - {rep: jordan.lee@example.com}
      - {rep: sam.rivera@example.com}
    sla:
      remind_after: {remind}
      reassign_after: {reassign}
      escalate_after: {escalate}
      max_reassignments: {max_reassignments}
      business_hours: false
  - name: Account Management
    members:
      - {rep: riley.chen@example.com}
rules: []
fallback: {pool: Inbound}
nurture:
  no_meeting_after: {no_meeting}
  recycle_score: {recycle_score}
  cool_off: {cool_off}
  lost_cool_off: {lost_cool_off}
  stale_after: 1h
handoff:
  pool: Account Management
  onboarding_tasks:
    - {subject: Kick-off call, due_in: 2d}
    - {subject: Welcome pack, due_in: 1d}
"""

SLOW = {
    "remind": "1h",
    "reassign": "2h",
    "escalate": "3h",
    "max_reassignments": 2,
    "no_meeting": "7d",
    "recycle_score": 60,
    "cool_off": "30d",
    "lost_cool_off": "60d",
}


def publish(
    stack: Stack | Database,
    edit: Callable[[dict[str, Any]], None] | None = None,
    **durations: object,
) -> None:
    """Publish the scenario configuration with ``durations`` over the slow defaults;
    ``edit`` changes the document (as plain data) before it is published."""
    values = {**SLOW, **durations}
    text = CONFIG
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    if edit is not None:
        data = yaml.safe_load(text)
        edit(data)
        text = yaml.safe_dump(data, sort_keys=False)
    db = stack.db if isinstance(stack, Stack) else stack
    with db.session() as session:
        config_store.save_draft(session, load_yaml(text), "test", None)
        config_store.publish(session, "test")


def email() -> str:
    return f"lead-{uuid.uuid4().hex[:10]}@acme-{uuid.uuid4().hex[:4]}.example"


async def new_lead(stack: Stack, **fields: object) -> str:
    fields.setdefault("email", email())
    fields.setdefault("first_name", "Pat")
    fields.setdefault("company", "Acme")
    response = await stack.submit(**fields)
    assert response.status_code == 202, response.text
    lead_id: str = response.json()["lead_id"]
    await stack.wait_for(lead_id)
    return lead_id


async def send(stack: Stack, lead_id: str, type_: str, **fields: object) -> httpx.Response:
    return await stack.http.post(
        f"/leads/{lead_id}/events", json={"type": type_, **fields}, headers=stack.auth
    )


async def event(stack: Stack, lead_id: str, type_: str, **fields: object) -> dict[str, Any]:
    response = await send(stack, lead_id, type_, **fields)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def lead(stack: Stack, lead_id: str) -> dict[str, Any]:
    response = await stack.http.get(f"/leads/{lead_id}", headers=stack.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def until(
    stack: Stack, lead_id: str, check: Any, within: float = 20.0, what: str = ""
) -> dict[str, Any]:
    """Poll the lead until ``check(lead)`` holds."""
    deadline = asyncio.get_running_loop().time() + within
    body: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        body = await lead(stack, lead_id)
        if check(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"lead {lead_id} never {what}: {body}")


def types(body: dict[str, Any]) -> list[str]:
    return [e["type"] for e in body["events"]]


def pool(config: dict[str, Any], name: str = "Inbound") -> dict[str, Any]:
    """The pool ``name`` of a configuration document (plain data), to edit."""
    found: dict[str, Any] = next(p for p in config["pools"] if p["name"] == name)
    return found


def inbound_reps(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The reps of the Inbound pool in a configuration document, to edit."""
    members = {m["rep"] for m in pool(config)["members"]}
    return [r for r in config["reps"] if r["email"] in members]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def of_type(body: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    """The lead's timeline events of ``type_``, oldest first."""
    return [e for e in body["events"] if e["type"] == type_]


def crm_record(
    db: Database, lead_id: str, when: Callable[[CrmRecord], bool] | None = None
) -> CrmRecord | None:
    """The local CRM's record of the lead (detached: read its columns only); None when
    there is none, or ``when`` does not hold for it."""
    with db.read() as session:
        found = session.scalars(select(CrmRecord).where(CrmRecord.leadflow_id == lead_id)).first()
        if found is None:
            return None
        session.expunge(found)
    return found if when is None or when(found) else None


def notifications(db: Database, lead_id: str, kind: str | None = None) -> list[Notification]:
    """The lead's notifications (of ``kind``), oldest first (detached)."""
    with db.read() as session:
        query = select(Notification).where(Notification.lead_id == lead_id)
        if kind is not None:
            query = query.where(Notification.kind == kind)
        found = list(session.scalars(query.order_by(Notification.id)))
        for row in found:
            session.expunge(row)
        return found


async def eventually(
    check: Callable[[], T | None], what: str, within: float = 10.0, interval: float = 0.1
) -> T:
    """Poll ``check`` until it returns something (not None, False or an empty collection)."""
    return await eventually_async(lambda: _now(check), what, within, interval)


async def _now(check: Callable[[], T | None]) -> T | None:
    return check()


async def eventually_async(
    check: Callable[[], Awaitable[T | None]], what: str, within: float = 10.0, interval: float = 0.1
) -> T:
    """Poll ``check`` until it answers something (not None, False or an empty collection).

    An empty list answers "nothing yet": a check that lists rows must wait for one.
    """
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await check()
        if not _nothing_yet(found):
            return found  # type: ignore[return-value]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never {what} within {within} s")
        await asyncio.sleep(interval)


def _nothing_yet(found: object) -> bool:
    if found is None or found is False:
        return True
    return isinstance(found, (list, tuple, dict, set, frozenset)) and not found


async def completed(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionStatus | None:
    """The workflow's status once it is no longer running."""
    status = (await handle.describe()).status
    return None if status in (None, WorkflowExecutionStatus.RUNNING) else status
