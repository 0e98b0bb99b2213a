"""Routing on the real path: a configuration imported and published with the CLI while
the stack runs decides the next lead; rollback restores the previous routing; two worker
processes routing at once on PostgreSQL never share a turn."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from connectors.local import LocalCRM
from domain.config_yaml import load_yaml
from store import config as config_store
from store.db import Database
from store.models import Lead, Rep
from tests.conftest import API_TOKEN, Stack, unique_email
from tests.processes import CLI, Processes, free_port, leadflow_env
from tests.test_processes import (
    ACTIVITY_TIMEOUT_S,
    RECOVERY_S,
    new_email,
    reading,
    start_worker_and_web,
    submit_all,
    wait_all_notified,
)

BASE = """
reps:
  - {email: avery.park@example.com, name: Avery Park}
  - {email: jordan.lee@example.com, name: Jordan Lee}
  - {email: sam.rivera@example.com, name: Sam Rivera}
  - {email: dana.weiss@example.com, name: Dana Weiss, timezone: Europe/Berlin}
pools:
  - name: Inbound
    members:
      - {rep: avery.park@example.com}
      - {rep: jordan.lee@example.com}
      - {rep: sam.rivera@example.com}
  - name: EMEA AE
    strategy: weighted
    members: [{rep: dana.weiss@example.com, weight: 2}]
territories:
  - {name: DACH, countries: [DE, AT, CH]}
rules: []
fallback: {pool: Inbound}
"""
WITH_DACH_RULE = BASE.replace(
    "rules: []",
    """rules:
  - name: DACH enterprise
    when:
      all:
        - {field: country, op: in_territory, value: DACH}
        - {field: company_size, op: gte, value: 1000}
    assign: {pool: EMEA AE}""",
)


def config_cli(procs: Processes, stack: Stack, name: str, *args: str) -> str:
    env = leadflow_env(database_url=stack.db.url, data_dir=stack.settings.data_dir)
    proc = procs.spawn(name, [*CLI, "config", *args], env)
    code = proc.wait(60)
    output = proc.log.read_text()
    assert code == 0, output
    return output


async def routed(stack: Stack, **lead: object) -> dict[str, object]:
    lead.setdefault("email", unique_email("dach"))
    lead_id = (await stack.submit(**lead)).json()["lead_id"]
    body = await stack.wait_for(lead_id)
    assert body["routing"] is not None, body
    return body


async def test_publish_takes_effect_for_the_next_lead_and_rollback_restores(
    stack: Stack, procs: Processes, tmp_path: Path
) -> None:
    base, dach = tmp_path / "base.yaml", tmp_path / "dach.yaml"
    base.write_text(BASE)
    dach.write_text(WITH_DACH_RULE)
    config_cli(procs, stack, "import-base", "import", str(base), "--publish")
    lead = await routed(stack, country="Germany", company_size=5000)
    assert lead["routing"]["rule"] == "fallback"  # type: ignore[index]

    config_cli(procs, stack, "import-dach", "import", str(dach), "--publish")
    lead = await routed(stack, country="Germany", company_size=5000)
    routing = lead["routing"]
    assert routing["rule"] == "DACH enterprise", routing  # type: ignore[index]
    assert routing["pool"] == "EMEA AE" and routing["config_version"] == 2  # type: ignore[index]
    assert lead["owner"]["email"] == "dana.weiss@example.com"  # type: ignore[index]
    conditions = routing["explanation"]["conditions"]  # type: ignore[index]
    assert [c["matched"] for c in conditions] == [True, True]
    small = await routed(stack, country="DE", company_size=10)
    assert small["routing"]["rule"] == "fallback"  # type: ignore[index]

    config_cli(procs, stack, "rollback", "rollback", "1")
    lead = await routed(stack, country="Germany", company_size=5000)
    assert lead["routing"]["rule"] == "fallback"  # type: ignore[index]
    assert lead["routing"]["config_version"] == 3  # type: ignore[index]


# Enough for both workers to route at the same moments many times over.
ROTATION_LEADS = 90


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_workers_routing_at_once_keep_strict_rotation(
    procs: Processes,
    db: Database,
    temporal_target: str,
    task_queue: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    env = leadflow_env(
        temporal_address=temporal_target,
        temporal_task_queue=task_queue,
        database_url=db.url,
        data_dir=tmp_path,
        web_port=port,
        api_token=API_TOKEN,
        activity_timeout_s=ACTIVITY_TIMEOUT_S,
    )
    first, web, base = start_worker_and_web(procs, env, port)
    second = procs.cli("worker-2", "worker", env)
    emails = [new_email(f"rot{i}") for i in range(ROTATION_LEADS)]
    with reading(db.url) as engine, httpx.Client(base_url=base, timeout=60) as http:
        accepted, refused = submit_all(http, emails)
        assert not refused, refused
        wait_all_notified(engine, accepted, RECOVERY_S * 2, watch=[web, second])
        with engine.connect() as conn:
            rows = conn.execute(select(Lead.owner_rep_id, Lead.routing)).all()
            reps = conn.execute(select(Rep.id)).all()
    owners = Counter(owner for owner, _ in rows)
    assert len(owners) == len(reps) == 3
    assert max(owners.values()) - min(owners.values()) <= 1, owners
    turns = sorted(
        (json.loads(r) if isinstance(r, str) else r)["decision"]["turn"] for _, r in rows
    )
    assert turns == list(range(ROTATION_LEADS)), "two decisions took the same turn"
    # Both workers took part: each logs the leads it routed.
    for worker in (first, second):
        assert "routed" in worker.log.read_text(), f"{worker.name} routed no lead"


ACCOUNTS = BASE.replace(
    "rules: []",
    """rules:
  - name: Existing accounts
    when: {field: company, op: not_empty}
    assign:
      account_owner: true
      else: {pool: Inbound}""",
).replace(
    "{email: jordan.lee@example.com, name: Jordan Lee}",
    "{email: jordan.lee@example.com, name: Jordan Lee, crm_owner_id: local-owner-2}",
)


async def test_a_lead_of_a_known_account_goes_to_the_accounts_owner(stack: Stack) -> None:
    LocalCRM(stack.db).upsert_account("Globex Corporation", "globex.example", "local-owner-2")
    with stack.db.session() as session:
        config_store.save_draft(session, load_yaml(ACCOUNTS), "test", None)
        config_store.publish(session, "test")
    by_domain = await routed(stack, email=f"{uuid.uuid4().hex[:8]}@globex.example", company="X")
    assert by_domain["owner"]["email"] == "jordan.lee@example.com"  # type: ignore[index]
    account = by_domain["routing"]["explanation"]["account"]  # type: ignore[index]
    assert account["owner"] == "jordan.lee@example.com" and "email domain" in account["name"]
    by_name = await routed(stack, company="GLOBEX corp.")
    assert by_name["owner"]["email"] == "jordan.lee@example.com"  # type: ignore[index]
    stranger = await routed(stack, company="Initrode")
    explanation = stranger["routing"]["explanation"]  # type: ignore[index]
    assert explanation["account"]["fell_through"] == "no matching account"
    assert stranger["routing"]["pool"] == "Inbound"  # type: ignore[index]
