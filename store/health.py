"""The readiness probe's write: one row of ``health_probe``, upserted in a transaction of
its own, proves the app database takes writes (not only that it answers a read).

The table lives here rather than in ``store.models`` because it holds no domain data; it
is on the same metadata, so migrations (revision 0003) and autogenerate see it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from store.db import Database
from store.models import Base, utcnow

PROBE_ROW_ID = 1


class HealthProbe(Base):
    """The one row the readiness probe rewrites; ``checked_at`` is its last write."""

    __tablename__ = "health_probe"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    checked_at: Mapped[datetime]


def probe_write(db: Database, timeout_s: float) -> None:
    """Write to the database, or raise what the database raised. On PostgreSQL the
    statement and its lock wait are bounded by ``timeout_s``; on SQLite the caller bounds
    the wait (the write lock is the database's own)."""
    now = utcnow()
    with db.session() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            ms = str(max(1, round(timeout_s * 1000)))
            session.execute(
                text(
                    "SELECT set_config('statement_timeout', :ms, true), "
                    "set_config('lock_timeout', :ms, true)"
                ),
                {"ms": ms},
            )
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(HealthProbe)
            .values(id=PROBE_ROW_ID, checked_at=now)
            .on_conflict_do_update(index_elements=["id"], set_={"checked_at": now})
        )
