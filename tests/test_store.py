"""The app database on SQLite and PostgreSQL: migrations, seeding, routing decisions under
concurrency, the local CRM (leads and accounts) and the inbox."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import inspect, select

from bots.notifier import Message, OfflineNotifier
from connectors.local import LocalCRM
from domain.crm import CrmLeadData
from domain.lead import LeadSubmission
from domain.rules import facts_of
from store import reps as rep_store
from store import routing as routing_store
from store.db import Database
from store.migrate import upgrade
from store.models import Notification
from store.models_crm import CrmRecord


def test_migrations_create_every_table_and_rerun_harmlessly(db_url: str) -> None:
    database = Database(db_url)
    upgrade(database)
    upgrade(database)
    tables = set(inspect(database.engine).get_table_names())
    assert {
        "teams",
        "reps",
        "leads",
        "lead_events",
        "crm_records",
        "notifications",
        "alembic_version",
    } <= tables
    database.dispose()


def test_demo_seed_only_fills_an_empty_database(db: Database) -> None:
    with db.session() as session:
        assert rep_store.seed_demo(session) is False
        reps = rep_store.list_reps(session)
        assert len(reps) == 3
        assert all(r.team is not None and r.team.name == "Inbound" for r in reps)


def test_concurrent_decisions_claim_distinct_turns(db: Database) -> None:
    """Decisions taken at the same instant by many threads never share a turn: the pool's
    rotation state is claimed with compare-and-set and a loser decides again."""
    cache = routing_store.RouterCache("Inbound")

    def decide(n: int) -> tuple[int | None, str | None]:
        facts = facts_of(LeadSubmission(email=f"lead{n}@acme.com"), 10, "cold")
        with db.session() as session:
            decision = routing_store.decide(
                session, cache.current(session), facts, datetime.now(UTC), seed=str(n)
            )
        return decision.turn, decision.rep

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(decide, range(200)))
    assert sorted(turn for turn, _ in results if turn is not None) == list(range(200))
    counts = Counter(rep for _, rep in results)
    assert len(counts) == 3 and max(counts.values()) - min(counts.values()) <= 1


def test_local_crm_upsert_is_keyed_by_email(db: Database) -> None:
    crm = LocalCRM(db)
    first = crm.upsert_lead(
        CrmLeadData(email="a@acme.com", company="Acme", owner_id="o1", leadflow_id="x"), "k1"
    )
    again = crm.upsert_lead(
        CrmLeadData(email="a@acme.com", title="CTO", owner_id="o2", leadflow_id="x"), "k2"
    )
    assert first.created and not again.created
    assert again.crm_id == first.crm_id
    stored = crm.get_lead(first.crm_id)
    assert stored is not None
    assert (stored.company, stored.title, stored.owner_id) == ("Acme", "CTO", "o2")
    with db.session() as session:
        assert len(session.scalars(select(CrmRecord)).all()) == 1


def test_concurrent_crm_upserts_of_one_email_leave_one_record(db: Database) -> None:
    crm = LocalCRM(db)
    data = CrmLeadData(email="race@acme.com", leadflow_id="x")
    with ThreadPoolExecutor(max_workers=8) as pool:
        refs = list(pool.map(lambda i: crm.upsert_lead(data, f"k{i}"), range(16)))
    assert len({r.crm_id for r in refs}) == 1
    assert sum(r.created for r in refs) == 1


def test_offline_notifier_delivers_once_per_key(db: Database) -> None:
    notifier = OfflineNotifier(db)
    with db.session() as session:
        rep = rep_store.list_reps(session)[0]
        owner = rep_store.owner_of(rep)
    message = Message(kind="new_lead", text="hello", blocks=[], lead_id="abc")
    ids = {notifier.notify(owner, message, "same-key") for _ in range(3)}
    assert len(ids) == 1
    with db.session() as session:
        assert len(session.scalars(select(Notification)).all()) == 1


def test_local_crm_finds_accounts_by_domain_then_fuzzy_name(db: Database) -> None:
    crm = LocalCRM(db)
    crm.upsert_account("Globex Corporation", "globex.example", "local-owner-2")
    crm.upsert_account("Initech", None, "local-owner-3")

    def find(**lead: object) -> tuple[str, str] | None:
        args = {"email_domain": None, "website_domain": None, "company": None, "free_mail": False}
        match = crm.find_account(**{**args, **lead})  # type: ignore[arg-type]
        return (match.account.name, match.by) if match else None

    assert find(email_domain="globex.example") == ("Globex Corporation", "email domain")
    assert find(website_domain="globex.example") == ("Globex Corporation", "website domain")
    assert find(company="GLOBEX corp.") == ("Globex Corporation", "company name")
    assert find(company="Initech, Inc.") == ("Initech", "company name")
    assert find(company="Initrode") is None
    # A free-mail address says nothing about the company.
    assert find(email_domain="globex.example", free_mail=True) is None
