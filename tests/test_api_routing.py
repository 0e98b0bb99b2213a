"""The routing JSON API under /api/v1, over real HTTP against the real app on each
database backend: the configuration's draft (JSON and YAML, stale revisions refused),
validation, publish, rollback and versions; simulate (published vs draft, and nothing
stored); replay of real leads under the draft (and of any stretch of history under the
configuration that routed it, which changes nothing); a pool's fairness."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Client

from connectors.local import LocalCRM
from domain import routing_review as review
from domain.config_yaml import load_yaml
from domain.lead import LeadSubmission
from domain.rotation import MemberState, PoolState
from domain.routing import Router, RoutingSnapshot
from domain.routing_review import RecordedLead
from domain.rules import facts_of
from store import config as config_store

# The modules whose tables are on Base.metadata besides store.models': imported for that.
from store import health, models_auth, models_crm, models_kpi  # noqa: F401
from store.db import Database
from store.models import Base
from tests.conftest import API_TOKEN, Stack, make_settings, serve, unique_email
from web.app import create_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
TODAY = datetime.now(UTC).date()
AWAY = f"{{from: '{TODAY - timedelta(days=1)}', until: '{TODAY + timedelta(days=1)}'}}"
BASE = f"""
reps:
  - {{email: avery.park@example.com, name: Avery Park, crm_owner_id: local-owner-1}}
  - {{email: jordan.lee@example.com, name: Jordan Lee, crm_owner_id: local-owner-2}}
  - email: sam.rivera@example.com
    name: Sam Rivera
    out_of_office: [{AWAY}]
  - {{email: dana.weiss@example.com, name: Dana Weiss}}
pools:
  - name: Inbound
    members:
      - {{rep: avery.park@example.com}}
      - {{rep: jordan.lee@example.com}}
      - {{rep: sam.rivera@example.com}}
  - name: EMEA AE
    strategy: weighted
    members: [{{rep: dana.weiss@example.com, weight: 2}}]
territories:
  - {{name: DACH, countries: [DE, AT, CH]}}
rules: []
fallback: {{pool: Inbound}}
"""
DACH = BASE.replace(
    "rules: []",
    """rules:
  - name: DACH enterprise
    when:
      all:
        - {field: country, op: in_territory, value: DACH}
        - {field: company_size, op: gte, value: 1000}
    assign: {pool: EMEA AE}""",
)
ACCOUNTS = BASE.replace(
    "rules: []",
    """rules:
  - name: existing customers
    when: {field: free_mail, op: eq, value: false}
    assign: {account_owner: true, else: {pool: Inbound}}""",
)
GERMAN = {"country": "Germany", "company_size": 5000}


@pytest.fixture
async def api(db: Database, client: Client, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The web app alone (no worker), served over HTTP, with the bearer token set."""
    settings = make_settings(data_dir=tmp_path, database_url=db.url, api_token=API_TOKEN)
    async with serve(create_app(settings, db, client, API_TOKEN)) as http:
        http.headers.update(AUTH)
        yield http


async def save(http: httpx.AsyncClient, yaml_text: str, revision: int | None = None) -> Any:
    """Save ``yaml_text`` as the draft (on the current revision unless given)."""
    if revision is None:
        revision = (await http.get("/api/v1/config/draft")).json()["revision"]
    response = await http.put(
        "/api/v1/config/draft",
        content=yaml_text,
        headers={"Content-Type": "application/yaml", "If-Match": f'"{revision}"'},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def publish(http: httpx.AsyncClient, yaml_text: str, note: str = "") -> int:
    await save(http, yaml_text)
    response = await http.post("/api/v1/config/publish", json={"note": note})
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


def fields(response: httpx.Response) -> set[str]:
    return {d["field"] for d in response.json()["detail"]}


def every_row(db: Database) -> dict[str, list[str]]:
    with db.read() as session:
        return {
            table.name: sorted(repr(tuple(row)) for row in session.execute(select(table)))
            for table in Base.metadata.sorted_tables
        }


# ------------------------------------------------------------------------------ access


async def test_every_routing_api_route_needs_the_token_and_documents_it(
    api: httpx.AsyncClient,
) -> None:
    schema = (await api.get("/openapi.json")).json()
    operations = [
        (
            method.upper(),
            path.replace("{name}", "Inbound")
            .replace("{lead_id}", "0" * 24)
            .replace("{approval_id}", "approval-x-1")
            .replace("{notice_failure_id}", "1"),
            op,
        )
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, op in item.items()
    ]
    # Configuration, routing and needs attention (with a CRM notice's retry): 13;
    # approvals: 3; KPIs: 1.
    assert len(operations) == 17, [o[:2] for o in operations]
    wrong = {"Authorization": "Bearer wrong-token-0123456789-abcdefgh"}
    async with httpx.AsyncClient(base_url=str(api.base_url)) as anonymous:
        for method, path, op in operations:
            assert op.get("security") == [{"HTTPBearer": []}], (method, path)
            for headers in ({}, wrong):
                response = await anonymous.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, response.text)


# ------------------------------------------------------------------------------ the draft


async def test_a_draft_of_the_wrong_shape_is_refused_naming_each_field(
    api: httpx.AsyncClient,
) -> None:
    bad = {
        "reps": [{"email": "not-an-address", "name": "X", "colour": "red"}],
        "pools": [{"name": "P", "strategy": "lottery"}],
    }
    response = await api.put("/api/v1/config/draft", json={"revision": 0, "config": bad})
    assert response.status_code == 422, response.text
    assert fields(response) == {
        "config.reps[0].email",
        "config.reps[0].colour",
        "config.pools[0].strategy",
        "config.fallback",
    }
    response = await api.put("/api/v1/config/draft", json={"config": {}, "revison": 1})
    assert response.status_code == 422 and fields(response) == {"revision", "revison"}

    yaml_bad = BASE.replace("strategy: weighted", "strategy: lottery")
    response = await api.put(
        "/api/v1/config/draft",
        content=yaml_bad,
        headers={"Content-Type": "application/yaml", "If-Match": '"0"'},
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == "pools[1].strategy"
    assert yaml_bad.splitlines()[problem["line"] - 1].strip() == "strategy: lottery"
    # JSON cannot store it: refused, not saved as something else.
    not_a_number = DACH.replace("value: 1000", "value: .nan")
    response = await api.put(
        "/api/v1/config/draft",
        content=not_a_number,
        headers={"Content-Type": "application/yaml", "If-Match": '"0"'},
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == "rules[0].when.all[1].value" and problem["line"] is not None
    assert (await api.get("/api/v1/config/draft")).json()["revision"] == 0, "nothing saved"


async def test_yaml_aliases_that_blow_a_document_up_are_refused_at_once(
    api: httpx.AsyncClient,
) -> None:
    # Six levels of ten aliases each: a million conditions from a few hundred bytes.
    levels = ["x:", "  - &w0 {field: score, op: gt, value: 1}"]
    levels += [f"  - &w{i} {{all: [{', '.join([f'*w{i - 1}'] * 10)}]}}" for i in range(1, 6)]
    bomb = "\n".join(
        [*levels, "rules:", "  - {name: r, when: *w5, assign: {pool: P}}", "fallback: {pool: P}"]
    )
    for path, method in (("/api/v1/config/draft", "PUT"), ("/api/v1/config/validate", "POST")):
        response = await api.request(
            method,
            path,
            content=bomb,
            headers={"Content-Type": "application/yaml", "If-Match": '"0"'},
            timeout=5,
        )
        problems = response.json().get("detail") or response.json()["problems"]
        assert any("aliases expand" in p["message"] for p in problems), response.text


async def test_a_stale_draft_revision_is_refused_and_no_edit_is_lost(
    api: httpx.AsyncClient,
) -> None:
    first = await api.get("/api/v1/config/draft")
    assert first.status_code == 200 and first.json()["revision"] == 0
    assert first.headers["etag"] == '"0"'
    config = first.json()["config"]  # the configuration in force: the default team
    assert [p["name"] for p in config["pools"]] == ["Inbound"]

    mine = await api.put("/api/v1/config/draft", json={"revision": 0, "config": config})
    assert mine.status_code == 200 and mine.json() == {"revision": 1, "problems": []}
    theirs = {**config, "fallback": {"rep": "avery.park@example.com"}}
    stale = await api.put("/api/v1/config/draft", json={"revision": 0, "config": theirs})
    assert stale.status_code == 409, stale.text
    [detail] = stale.json()["detail"]
    assert detail["field"] == "revision" and "revision 1" in detail["message"]
    draft = (await api.get("/api/v1/config/draft")).json()
    assert draft["revision"] == 1 and draft["config"]["fallback"]["pool"] == "Inbound"
    assert draft["updated_by"] == "api"

    stale_yaml = await api.put(
        "/api/v1/config/draft",
        content=BASE,
        headers={"Content-Type": "text/yaml", "If-Match": '"0"'},
    )
    assert stale_yaml.status_code == 409 and fields(stale_yaml) == {"If-Match"}
    no_revision = await api.put(
        "/api/v1/config/draft", content=BASE, headers={"Content-Type": "application/yaml"}
    )
    assert no_revision.status_code == 428 and fields(no_revision) == {"If-Match"}
    assert (await save(api, BASE, revision=1))["revision"] == 2

    as_yaml = await api.get("/api/v1/config/draft", headers={"Accept": "application/yaml"})
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert as_yaml.headers["etag"] == '"2"' and "name: EMEA AE" in as_yaml.text


async def test_a_draft_with_problems_is_saved_but_not_published(api: httpx.AsyncClient) -> None:
    broken = BASE.replace("fallback: {pool: Inbound}", "fallback: {pool: Outbound}")
    saved = await save(api, broken)
    [problem] = saved["problems"]
    assert problem["location"] == "fallback.pool" and "Outbound" in problem["message"]
    assert broken.splitlines()[problem["line"] - 1].startswith("fallback:")

    checked = (await api.post("/api/v1/config/validate")).json()
    assert checked["valid"] is False
    assert [p["location"] for p in checked["problems"]] == ["fallback.pool"]
    assert checked["problems"][0]["line"] is not None
    other = await api.post("/api/v1/config/validate", json={"config": {"fallback": {}}})
    assert other.json()["valid"] is False
    yaml_ok = await api.post(
        "/api/v1/config/validate", content=BASE, headers={"Content-Type": "application/yaml"}
    )
    assert yaml_ok.json() == {"valid": True, "problems": []}

    refused = await api.post("/api/v1/config/publish", json={"note": "try"})
    assert refused.status_code == 422, refused.text
    [detail] = refused.json()["detail"]
    assert detail["field"] == "fallback.pool" and detail["line"] >= 1
    assert (await api.get("/api/v1/config")).status_code == 404


async def test_publish_rollback_and_versions(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/v1/config")
    assert missing.status_code == 404 and "published" in missing.json()["detail"]
    assert await publish(api, BASE, note="first") == 1
    assert await publish(api, DACH, note="DACH to the AEs") == 2
    current = (await api.get("/api/v1/config")).json()
    assert current["version"] == 2
    assert [r["name"] for r in current["config"]["rules"]] == ["DACH enterprise"]

    versions = (await api.get("/api/v1/config/versions")).json()
    assert [(v["version"], v["published_by"], v["note"]) for v in versions] == [
        (2, "api", "DACH to the AEs"),
        (1, "api", "first"),
    ]
    assert "+  - name: DACH enterprise" in versions[0]["diff"]
    assert versions[1]["diff"].startswith("--- no version")
    assert [v["version"] for v in (await api.get("/api/v1/config/versions?limit=1")).json()] == [2]

    rolled = await api.post("/api/v1/config/rollback", json={"version": 1})
    assert rolled.status_code == 200 and rolled.json() == {"version": 3}
    current = (await api.get("/api/v1/config")).json()
    assert current["version"] == 3 and current["config"]["rules"] == []
    assert (await api.get("/api/v1/config/draft")).json()["config"]["rules"] == []

    unknown = await api.post("/api/v1/config/rollback", json={"version": 99})
    assert unknown.status_code == 404 and fields(unknown) == {"version"}
    for body in ({"version": 0}, {"version": "one"}, {}, {"version": 2**40}):
        bad = await api.post("/api/v1/config/rollback", json=body)
        assert bad.status_code == 422 and fields(bad) == {"version"}, (body, bad.text)
    long_note = await api.post("/api/v1/config/publish", json={"note": "x" * 5000})
    assert long_note.status_code == 422 and fields(long_note) == {"note"}


# ------------------------------------------------------------------------------ simulate


async def test_simulate_answers_differently_under_the_draft_for_a_lead_its_rule_catches(
    api: httpx.AsyncClient,
) -> None:
    await publish(api, BASE)
    await save(api, DACH)
    lead = {"email": unique_email("sim"), **GERMAN}
    published = await api.post("/api/v1/simulate", json={"lead": lead})
    assert published.status_code == 200, published.text
    now = published.json()
    assert (now["rule"], now["pool"], now["config_version"]) == ("fallback", "Inbound", 1)
    assert now["rep"]["email"] in {"avery.park@example.com", "jordan.lee@example.com"}

    drafted = (await api.post("/api/v1/simulate", json={"lead": lead, "config": "draft"})).json()
    assert (drafted["rule"], drafted["pool"]) == ("DACH enterprise", "EMEA AE")
    assert drafted["rep"] == {"name": "Dana Weiss", "email": "dana.weiss@example.com"}
    assert drafted["draft_revision"] == 2 and drafted["config_version"] is None
    assert [c["matched"] for c in drafted["explanation"]["conditions"]] == [True, True]

    small = {"lead": {**lead, "company_size": 20}, "config": "draft"}
    assert (await api.post("/api/v1/simulate", json=small)).json()["rule"] == "fallback"

    # Sam is away: skipped, and says so.
    skipped = now["explanation"]["pool"]["skipped"]
    assert skipped == [{"rep": "sam.rivera@example.com", "reason": "away"}]


async def test_simulate_refuses_bad_input_naming_the_field(api: httpx.AsyncClient) -> None:
    cases = [
        ({"lead": {"email": "jane@", "company_size": "lots"}}, {"lead.email", "lead.company_size"}),
        ({"lead": {"email": "a@b.example", "first_name": "A\x01"}}, {"lead.first_name"}),
        ({"lead": {"email": "a@b.example", "shoe_size": 9}}, {"lead.shoe_size"}),
        ({"lead": {"email": "a@b.example"}, "config": "latest"}, {"config"}),
        ({"lead": {"email": "a@b.example"}, "at": "2026-01-01T10:00:00"}, {"at"}),
        ({"lead": {"email": "a@b.example"}, "at": "9999-01-01T10:00:00Z"}, {"at"}),
        ({}, {"lead"}),
    ]
    for body, expected in cases:
        response = await api.post("/api/v1/simulate", json=body)
        assert response.status_code == 422, (body, response.text)
        assert fields(response) == expected, (body, response.text)
    await save(api, BASE.replace("fallback: {pool: Inbound}", "fallback: {pool: Nowhere}"))
    broken = await api.post(
        "/api/v1/simulate", json={"lead": {"email": "a@b.example"}, "config": "draft"}
    )
    assert broken.status_code == 422 and fields(broken) == {"config", "fallback.pool"}


async def test_simulate_changes_no_rotation_state_nor_any_table(
    api: httpx.AsyncClient, db: Database
) -> None:
    await publish(api, BASE)
    await save(api, ACCOUNTS)
    LocalCRM(db).upsert_account("Globex", "globex.example", "local-owner-2")
    stored = PoolState(
        members={
            "avery.park@example.com": MemberState(credit=-1.0),
            "jordan.lee@example.com": MemberState(credit=1.0),
            "sam.rivera@example.com": MemberState(credit=0.0),
        },
        decisions=7,
    )
    with db.session() as session:
        config_store.save_pool_state(session, "Inbound", stored, None)
    before = every_row(db)

    answers = []
    for config in ("published", "draft", "published"):
        lead = {"email": "kim@globex.example", "company": "Globex"}
        response = await api.post("/api/v1/simulate", json={"lead": lead, "config": config})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert every_row(db) == before, "a simulation wrote to the database"

    first, account, again = answers
    assert first["rep"]["email"] == "jordan.lee@example.com"  # the most credit
    assert first["explanation"]["pool"]["state_before"]["avery.park@example.com"] == -1.0
    assert again["rep"] == first["rep"], "the rotation moved on"
    assert (account["rule"], account["rep"]["email"]) == (
        "existing customers",
        "jordan.lee@example.com",
    )
    assert account["explanation"]["account"]["owner"] == "jordan.lee@example.com"


# ------------------------------------------------------------------------------ real leads


def test_replaying_leads_under_the_configuration_that_routed_them_changes_nothing() -> None:
    config = load_yaml(
        BASE.replace(
            "members: [{rep: dana.weiss@example.com, weight: 2}]",
            "members: [{rep: dana.weiss@example.com, weight: 2},"
            " {rep: avery.park@example.com, weight: 1}]",
        )
    )
    config = config.model_copy(update={"rules": load_yaml(DACH).rules})
    router = Router.build(config, 1)
    states: dict[str, PoolState] = {}
    records = []
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    for i in range(60):
        lead = LeadSubmission(email=f"l{i}@co{i}.example", **(GERMAN if i % 3 else {}))
        facts = facts_of(lead, 0, "cold")
        at, lead_id = start + timedelta(minutes=i), f"lead{i:03d}"
        routed = router.route(facts, RoutingSnapshot(pools=states), at, seed=lead_id)
        if routed.pool is not None and routed.state is not None:
            states[routed.pool] = routed.state
        decision = routed.decision.model_dump(mode="json")
        records.append(RecordedLead(lead_id, at, decision, facts))

    # From any point of the history: the rotation starts from what the decisions recorded.
    for offset in range(len(records)):
        replayed = review.replay(router, records[offset:], {})
        assert replayed.changed == 0, offset
        assert all(t.before == t.after for t in replayed.totals)


async def route_leads(stack: Stack, *leads: dict[str, Any]) -> list[dict[str, Any]]:
    """Submit each lead and wait for it to be routed, one after the other."""
    out = []
    for fields_ in leads:
        response = await stack.submit(email=unique_email("rt"), **fields_)
        assert response.status_code == 202, response.text
        out.append(await stack.wait_for(response.json()["lead_id"]))
    return out


async def test_replay_shows_who_would_get_the_last_real_leads_under_the_draft(
    stack: Stack,
) -> None:
    http = stack.http
    http.headers.update(AUTH)
    await publish(http, BASE)
    routed = await route_leads(stack, {}, {"country": "US"}, GERMAN, GERMAN)
    assert all(lead["routing"]["pool"] == "Inbound" for lead in routed)
    await save(http, DACH)
    before = every_row(stack.db)

    response = await http.post("/api/v1/replay", json={"limit": 10})
    assert response.status_code == 200, response.text
    replay = response.json()
    assert every_row(stack.db) == before, "a replay wrote to the database"
    assert [lead["lead_id"] for lead in replay["leads"]] == [lead["lead_id"] for lead in routed]
    for lead, was in zip(replay["leads"], routed, strict=True):
        assert lead["actual"]["rep"]["email"] == was["owner"]["email"]
        assert lead["actual"]["config_version"] == 1
    # The draft's Inbound rotation starts where the real one stood: the first two leads
    # go to the same reps; the German ones move to the EMEA AE pool.
    assert [lead["changed"] for lead in replay["leads"]] == [False, False, True, True]
    assert [lead["draft"]["rule"] for lead in replay["leads"][2:]] == ["DACH enterprise"] * 2
    assert {lead["draft"]["rep"]["email"] for lead in replay["leads"][2:]} == {
        "dana.weiss@example.com"
    }
    assert replay["changed"] == 2
    totals = {(t["rep"] or {}).get("email"): (t["before"], t["after"]) for t in replay["totals"]}
    real = Counter(lead["owner"]["email"] for lead in routed)
    assert {rep: counts[0] for rep, counts in totals.items() if counts[0]} == real
    assert totals["dana.weiss@example.com"] == (0, 2)

    latest = (await http.post("/api/v1/replay", json={"limit": 1})).json()["leads"]
    assert [lead["lead_id"] for lead in latest] == [routed[-1]["lead_id"]]
    for limit in (0, 10_001, "all"):
        bad = await http.post("/api/v1/replay", json={"limit": limit})
        assert bad.status_code == 422 and fields(bad) == {"limit"}, bad.text


async def test_fairness_counts_shares_drift_and_skips_of_real_decisions(stack: Stack) -> None:
    http = stack.http
    http.headers.update(AUTH)
    await publish(http, DACH)
    routed = await route_leads(stack, {}, {}, {}, {}, GERMAN)
    owners = Counter(lead["owner"]["email"] for lead in routed[:4])
    assert owners == {"avery.park@example.com": 2, "jordan.lee@example.com": 2}

    response = await http.get("/api/v1/pools/Inbound/fairness", params={"days": 7})
    assert response.status_code == 200, response.text
    fairness = response.json()
    assert (fairness["decisions"], fairness["rotated"], fairness["fallback"]) == (4, 4, 0)
    members = {m["rep"]: m for m in fairness["members"]}
    avery, sam = members["avery.park@example.com"], members["sam.rivera@example.com"]
    assert (avery["weight"], avery["expected_share"], avery["actual_count"]) == (1, 0.3333, 2)
    assert avery["actual_share"] == 0.5 and avery["drift_points"] == 16.67
    assert (sam["actual_count"], sam["drift_points"]) == (0, -33.33)
    assert sam["skipped"] == {
        "inactive": 0,
        "zero_weight": 0,
        "away": 4,
        "outside_hours": 0,
        "capped": 0,
        "had_it": 0,
    }
    emea = (await http.get("/api/v1/pools/EMEA AE/fairness")).json()
    assert emea["decisions"] == 1 and emea["members"][0]["actual_share"] == 1.0

    unknown = await http.get("/api/v1/pools/Outbound/fairness")
    assert unknown.status_code == 404 and fields(unknown) == {"name"}
    for days in (0, 367, "week"):
        bad = await http.get("/api/v1/pools/Inbound/fairness", params={"days": days})
        assert bad.status_code == 422 and fields(bad) == {"days"}, bad.text
