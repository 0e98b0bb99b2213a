"""Alembic environment: runs migrations on the connection or URL handed in by
``store.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

# The modules whose tables are on Base.metadata besides store.models': imported for that.
from store import health, models_auth, models_crm, models_kpi  # noqa: F401
from store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from store.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "", pool_size=1)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


run()
