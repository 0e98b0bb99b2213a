"""Engine and session set-up for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, pool_size: int = 10, write: bool = True) -> Engine:
    """An engine tuned for the backend.

    SQLite runs in WAL mode. A *write* engine starts every transaction with
    ``BEGIN IMMEDIATE`` (the write lock is taken up front, so two writers never deadlock
    upgrading a read lock); a read engine uses plain deferred ``BEGIN``, and in WAL mode
    its readers never wait for writers nor block them. PostgreSQL goes through psycopg 3.

    Both hide statement parameters from errors and logs (``hide_parameters``): they are
    leads' contact details, and a database error must not carry them into a log line, an
    exception message or a Temporal failure.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # A file path (not ":memory:", nor a "file:..." URI, which names an existing file).
        if parsed.database and parsed.database != ":memory:" and "uri" not in parsed.query:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.close()

        begin = "BEGIN IMMEDIATE" if write else "BEGIN"

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

        return engine
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


class Database:
    """Engines plus session factories; one per process."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if is_sqlite(url):
            self._read_engine = make_engine(url, pool_size=pool_size, write=False)
            # SQLite has one writer at a time. Queue this process's writers on a lock
            # instead of letting them poll SQLite's busy handler, which sleeps up to
            # 100 ms between tries and so adds latency spikes under load.
            self._write_lock: threading.Lock | None = threading.Lock()
        else:
            self._read_engine = self.engine
            self._write_lock = None
        self._reads = sessionmaker(self._read_engine, expire_on_commit=False)
        # SQLite's read transaction is a snapshot already; PostgreSQL's READ COMMITTED
        # gives each statement its own, so a snapshot asks for REPEATABLE READ.
        self._snapshots = (
            self._reads
            if is_sqlite(url)
            else sessionmaker(
                self._read_engine.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                ),
                expire_on_commit=False,
            )
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write session in one transaction: committed on success, rolled back on
        error."""
        with self._write_lock or nullcontext(), self.sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session that never waits for writers (use for pages, APIs, metrics)."""
        with self._reads() as session:  # closing it rolls the read transaction back
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only session whose statements all see the database as of its first
        one: for a report added up from several queries (the KPIs), which must not count
        a lead written between two of them in one and not the other."""
        with self._snapshots() as session:
            yield session

    def ping(self) -> None:
        with self._read_engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self._read_engine is not self.engine:
            self._read_engine.dispose()
