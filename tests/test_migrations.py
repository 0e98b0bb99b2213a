"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL,
and the newest one can be undone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

# The modules whose tables are on Base.metadata besides store.models': imported for that.
from store import health, models_auth, models_crm, models_kpi  # noqa: F401
from store.db import Database
from store.migrate import alembic_config, upgrade
from store.models import Base
from store.models_crm import CrmRecord


def test_migrations_match_the_models(db_url: str) -> None:
    database = Database(db_url)
    upgrade(database)
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    database.dispose()


def test_the_lifecycle_revision_keeps_crm_records_and_can_be_undone(db_url: str) -> None:
    database = Database(db_url)
    upgrade(database, "0006")
    with database.session() as session:
        session.execute(
            text(
                "INSERT INTO crm_records (id, email, fields, leadflow_id, created_at, updated_at)"
                " VALUES ('LC-1', 'a@acme.example', '{}', 'x', '2026-12-01 00:00:00',"
                " '2026-12-01 00:00:00')"
            )
        )
    upgrade(database)
    with database.read() as session:
        assert session.scalars(select(CrmRecord.status)).all() == ["open"]
    with database.engine.connect() as conn:
        config = alembic_config(database.url)
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
        conn.commit()
    tables = set(inspect(database.engine).get_table_names())
    assert not {"crm_tasks", "crm_conversions"} & tables
    upgrade(database)
    assert {"crm_tasks", "crm_conversions"} <= set(inspect(database.engine).get_table_names())
    database.dispose()
