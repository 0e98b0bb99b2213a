"""The app database on SQLite and PostgreSQL: migrations, seeding, the round-robin turn
counter under concurrency, the local CRM and the inbox."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import inspect, select

from bots.notifier import Message, OfflineNotifier
from connectors.local import LocalCRM
from domain.crm import CrmLeadData
from store import reps as rep_store
from store.db import Database
from store.migrate import upgrade
from store.models import CrmRecord, Notification


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


def test_concurrent_turns_are_unique_and_gapless(db: Database) -> None:
    with db.session() as session:
        team = rep_store.team_by_name(session, "Inbound")
        assert team is not None
        team_id = team.id

    def take(_: int) -> int:
        with db.session() as session:
            return rep_store.take_turn(session, team_id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        turns = list(pool.map(take, range(200)))
    assert sorted(turns) == list(range(200))


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
