"""Leadflow as real OS processes talking real HTTP: workers and whole stacks killed with
SIGKILL mid-flow and restarted, clean stops, refusals to start, and Temporal outages.

Every lead that got a 202 must end up routed, in the CRM and its owner notified exactly
once, whatever was killed in between."""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.pool import NullPool
from temporalio.client import Client

from cli import temporal_dev_command
from store import reps as rep_store
from store.db import Database
from store.migrate import upgrade
from store.models import Lead, LeadEvent, Notification, PoolStateRow, Rep
from store.models_crm import CrmRecord
from tests.conftest import API_TOKEN, terminate_open_workflows
from tests.processes import (
    STARTUP_S,
    DevStack,
    Proc,
    Processes,
    free_port,
    free_ports,
    kill_tree,
    leadflow_env,
    occupied_port,
    poll,
    port_free_now,
    tail,
    wait_gone,
    wait_http_ok,
)

pytestmark = pytest.mark.slow

# Activities of a worker that was SIGKILLed are retried once their start-to-close timeout
# expires; the default (30 s) would make every test here wait that long.
ACTIVITY_TIMEOUT_S = 4
# A workflow task that a killed worker held, or that waits on its sticky queue, moves to
# a live worker after Temporal's 10 s timeouts; recovery takes ~15 s on two cores.
RECOVERY_S = 35.0
# How long Temporal stays down in the outage test: the worker's pollers and the web app's
# client fail many times over in it.
OUTAGE_S = 8.0
EXACTLY_ONCE_EVENTS = ("captured", "scored", "assigned", "crm_synced", "owner_notified")


# ------------------------------------------------------------------------- fixtures


@pytest.fixture
async def session_queue(client: Client, task_queue: str) -> AsyncIterator[str]:
    """A fresh task queue on the session Temporal server; its lead workflows (which stay
    open for days) are terminated afterwards."""
    yield task_queue
    await terminate_open_workflows(client, task_queue)


@contextlib.contextmanager
def reading(url: str) -> Iterator[Engine]:
    """A plain read engine: unlike ``store.db`` it takes no write lock on SQLite, so polling
    does not slow down the processes under test."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


# ------------------------------------------------------------------------- helpers


@dataclass
class Accepted:
    lead_id: str
    email: str


def new_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@proc-{uuid.uuid4().hex[:4]}.example.com"


def submit(http: httpx.Client, email: str) -> tuple[str, httpx.Response | Exception]:
    try:
        return email, http.post("/leads", json={"email": email, "company": "Acme", "title": "VP"})
    except httpx.HTTPError as err:
        return email, err


def submit_all(http: httpx.Client, emails: list[str]) -> tuple[list[Accepted], list[str]]:
    """POST every email concurrently; the leads that got a 202, and what the others got."""
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda e: submit(http, e), emails))
    accepted: list[Accepted] = []
    refused: list[str] = []
    for email, outcome in results:
        if isinstance(outcome, httpx.Response) and outcome.status_code == 202:
            accepted.append(Accepted(outcome.json()["lead_id"], email))
        elif isinstance(outcome, httpx.Response):
            refused.append(f"{email}: {outcome.status_code} {outcome.text[:200]}")
        else:
            refused.append(f"{email}: {outcome!r}")
    return accepted, refused


def notified_count(engine: Engine, lead_ids: set[str] | None = None) -> int:
    query = select(func.count()).select_from(Notification)
    if lead_ids is not None:
        query = query.where(Notification.lead_id.in_(lead_ids))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def wait_all_notified(
    engine: Engine, leads: list[Accepted], within: float, watch: list[Proc]
) -> None:
    ids = {a.lead_id for a in leads}

    def state() -> str:
        with contextlib.suppress(Exception):
            return f"{notified_count(engine, ids)} of {len(ids)} accepted leads notified"
        return "database not readable"

    poll(
        lambda: notified_count(engine, ids) >= len(ids),
        within,
        "not every accepted lead was notified",
        interval=0.1,
        watch=watch,
        details=state,
    )


def assert_each_lead_exactly_once(engine: Engine, leads: list[Accepted], logs: str) -> None:
    """Every accepted lead: one CRM record, one notification, each step on its timeline
    once, an owner; no lead the test did not submit; round-robin spread within 1 with
    exactly one turn taken per lead."""
    ids = {a.lead_id for a in leads}
    emails = {a.email for a in leads}
    with engine.connect() as conn:
        crm = Counter(
            dict(
                conn.execute(select(CrmRecord.email, func.count()).group_by(CrmRecord.email)).all()
            )
        )
        note_rows = conn.execute(
            select(Notification.lead_id, func.count()).group_by(Notification.lead_id)
        ).all()
        notes = Counter({str(lead_id): int(n) for lead_id, n in note_rows})
        events = conn.execute(
            select(LeadEvent.lead_id, LeadEvent.type, func.count()).group_by(
                LeadEvent.lead_id, LeadEvent.type
            )
        ).all()
        rows = conn.execute(select(Lead.id, Lead.owner_rep_id, Lead.notified_at)).all()
        turns = sum(
            state["decisions"] for state in conn.execute(select(PoolStateRow.state)).scalars()
        )
        reps = conn.execute(select(func.count()).select_from(Rep)).scalar_one()

    problems: list[str] = []
    if set(crm) != emails or any(n != 1 for n in crm.values()):
        dup = {e: n for e, n in crm.items() if n != 1}
        problems.append(
            f"CRM records: {len(crm)} emails for {len(emails)} leads, "
            f"missing {sorted(emails - set(crm))[:5]}, unexpected "
            f"{sorted(set(crm) - emails)[:5]}, duplicated {dup}"
        )
    repeated = {k: n for k, n in notes.items() if n != 1}
    if set(notes) != ids or repeated:
        problems.append(
            f"notifications: missing {sorted(ids - set(notes))[:5]}, unexpected "
            f"{sorted(set(notes) - ids)[:5]}, repeated {repeated}"
        )
    per_type = {t: Counter[str]() for t in EXACTLY_ONCE_EVENTS}
    for lead_id, type_, count in events:
        if type_ in per_type:
            per_type[type_][lead_id] += count
    for type_, counter in per_type.items():
        wrong = {i: counter[i] for i in ids if counter[i] != 1}
        if wrong or set(counter) - ids:
            problems.append(f"{type_!r} events not exactly once per lead: {wrong}")
    by_id = {r.id: r for r in rows}
    if set(by_id) != ids:
        problems.append(
            f"leads table: missing {sorted(ids - set(by_id))[:5]}, "
            f"unexpected {sorted(set(by_id) - ids)[:5]}"
        )
    unowned = [i for i, r in by_id.items() if r.owner_rep_id is None or r.notified_at is None]
    if unowned:
        problems.append(f"leads without owner or notification time: {unowned[:5]}")
    spread = Counter(r.owner_rep_id for r in rows)
    if len(leads) >= reps and (
        len(spread) != reps or max(spread.values()) - min(spread.values()) > 1
    ):
        problems.append(f"round-robin spread over {reps} reps is off: {dict(spread)}")
    if turns != len(leads):
        problems.append(f"{turns} round-robin turns taken for {len(leads)} leads")
    assert not problems, "\n".join(problems) + "\n" + logs


# ------------------------------------------------------------------------- 1. worker crash


def start_worker_and_web(
    procs: Processes, env: dict[str, str], web_port: int
) -> tuple[Proc, Proc, str]:
    """``leadflow worker`` and ``leadflow web`` as processes, once the web app is healthy."""
    worker = procs.cli("worker", "worker", env)
    web = procs.cli("web", "web", env)
    base = f"http://127.0.0.1:{web_port}"
    wait_http_ok(f"{base}/healthz", STARTUP_S, watch=[web, worker])
    return worker, web, base


def test_worker_killed_mid_flow_loses_and_duplicates_nothing(
    procs: Processes,
    db: Database,
    temporal_target: str,
    session_queue: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    env = leadflow_env(
        temporal_address=temporal_target,
        temporal_task_queue=session_queue,
        database_url=db.url,
        data_dir=tmp_path,
        web_port=port,
        api_token=API_TOKEN,
        activity_timeout_s=ACTIVITY_TIMEOUT_S,
    )
    worker, web, base = start_worker_and_web(procs, env, port)

    emails = [new_email(f"kill{i}") for i in range(30)]
    with (
        reading(db.url) as engine,
        httpx.Client(base_url=base, timeout=30) as http,
        ThreadPoolExecutor(max_workers=1) as background,
    ):
        burst = background.submit(submit_all, http, emails)
        # SIGKILL the worker as soon as the first few owners have been notified: the
        # others are somewhere between accepted, assigned, in the CRM and notified.
        poll(
            lambda: notified_count(engine) >= 3,
            RECOVERY_S,
            "no lead was notified before the kill",
            interval=0.01,
            watch=[worker, web],
        )
        kill_tree(worker)
        done_at_kill = notified_count(engine)
        accepted, refused = burst.result()
        assert not refused, f"the web app refused leads: {refused}\n{procs.tails()}"
        assert done_at_kill < len(accepted), (
            f"all {len(accepted)} leads were done before the kill; nothing was mid-flow"
        )

        restarted = procs.cli("worker", "worker", env)  # appends to the same log
        wait_all_notified(engine, accepted, RECOVERY_S, watch=[restarted, web])
        # Let any duplicate that a broken retry would produce land before counting.
        time.sleep(0.5)
        assert_each_lead_exactly_once(engine, accepted, procs.tails())


# ------------------------------------------------------------------------- 2. stack crash


@pytest.fixture
def dev_stack(procs: Processes, tmp_path: Path) -> DevStack:
    return DevStack.create(procs, tmp_path / "data", activity_timeout_s=ACTIVITY_TIMEOUT_S)


def test_whole_stack_killed_and_restarted_finishes_every_accepted_lead(
    dev_stack: DevStack,
) -> None:
    stack = dev_stack
    dev = stack.start()
    token = stack.token()
    auth = {"Authorization": f"Bearer {token}"}

    with reading(stack.db_url) as engine, httpx.Client(base_url=stack.base, timeout=30) as http:
        # Some leads finish before the crash ...
        early, refused = submit_all(http, [new_email(f"early{i}") for i in range(4)])
        assert not refused, refused
        wait_all_notified(engine, early, RECOVERY_S, watch=[dev])
        with engine.connect() as conn:
            reps_before = conn.execute(select(Rep.id, Rep.email).order_by(Rep.id)).all()
            owners_before = dict(conn.execute(select(Lead.id, Lead.owner_rep_id)).all())
        assert len(reps_before) == 3

        # ... others are accepted while the worker is frozen, so that at the crash some are
        # only in Temporal and some are part-way through their activities.
        worker = stack.child(dev, "worker")
        worker.suspend()
        try:
            late, refused = submit_all(http, [new_email(f"late{i}") for i in range(16)])
        finally:
            worker.resume()
        assert not refused, refused
        late_ids = {a.lead_id for a in late}
        poll(
            lambda: notified_count(engine, late_ids) >= 1,
            RECOVERY_S,
            "the resumed worker notified nobody",
            interval=0.01,
            watch=[dev],
        )

        # The crash: the dev process and every process under it, all at once.
        tree = kill_tree(dev)
        done_at_kill = notified_count(engine, late_ids)
        assert len(tree) >= 4, f"expected dev + temporal + worker + web, killed {tree}"
        assert done_at_kill < len(late), "every late lead was done before the crash"
        poll(
            lambda: port_free_now(stack.web_port) and port_free_now(stack.temporal_port),
            10,
            "ports still held after the crash",
        )

        dev = stack.start("dev-restarted")
        assert stack.token() == token
        wait_all_notified(engine, early + late, RECOVERY_S, watch=[dev])
        time.sleep(0.5)
        assert_each_lead_exactly_once(engine, early + late, stack.procs.tails())

        with engine.connect() as conn:
            assert conn.execute(select(Rep.id, Rep.email).order_by(Rep.id)).all() == reps_before
            owners_after = dict(conn.execute(select(Lead.id, Lead.owner_rep_id)).all())
        assert {a.lead_id: owners_after[a.lead_id] for a in early} == {
            a.lead_id: owners_before[a.lead_id] for a in early
        }
        for lead in early + late[:3]:
            response = http.get(f"/leads/{lead.lead_id}", headers=auth)
            assert response.status_code == 200, response.text
            assert response.json()["owner"] is not None

    # Children of a dev process that dies get SIGTERM (PR_SET_PDEATHSIG) and stop.
    children = dev.children()
    assert len(children) >= 3, children
    dev.popen.send_signal(signal.SIGKILL)
    dev.popen.wait(5)
    alive = wait_gone(children, 15)
    assert not alive, f"children outlived a killed leadflow dev: {alive}\n{stack.procs.tails()}"


# ------------------------------------------------------------------------- 3. busy ports


def test_dev_refuses_busy_port_naming_the_setting(procs: Processes, tmp_path: Path) -> None:
    with occupied_port() as busy:
        runs: dict[str, tuple[Proc, Path]] = {}
        names = ("web_port", "temporal_port", "temporal_ui_port")
        for setting in names:
            ports = dict(zip(names, free_ports(3), strict=True))
            ports[setting] = busy
            data_dir = tmp_path / setting
            env = leadflow_env(data_dir=data_dir, **ports)
            runs[f"LEADFLOW_{setting.upper()}"] = (
                procs.cli(f"dev-{setting}", "dev", env),
                data_dir,
            )
        for name, (dev, data_dir) in runs.items():
            code = dev.wait(20)
            out = tail(dev.log)
            assert code != 0, out
            assert name in out and f"port {busy}" in out, out
            assert not (data_dir / "temporal.log").exists(), "Temporal was started anyway"


# ------------------------------------------------------------------------- 4. unreachable


def test_worker_and_web_exit_nonzero_when_temporal_unreachable(
    procs: Processes, tmp_path: Path, temporal_target: str
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    no_temporal = {"temporal_address": closed, "api_token": API_TOKEN}
    no_database = {
        "temporal_address": temporal_target,
        "database_url": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x",
        "api_token": API_TOKEN,
    }
    expected = {
        "temporal": ["Temporal", closed, "LEADFLOW_TEMPORAL_ADDRESS"],
        "database": ["database", "LEADFLOW_DATABASE_URL"],
    }
    started = time.monotonic()
    runs: list[tuple[Proc, list[str]]] = []
    for what, settings in (("temporal", no_temporal), ("database", no_database)):
        for command in ("worker", "web"):
            env = leadflow_env(
                data_dir=tmp_path / f"{command}-{what}", web_port=free_port(), **settings
            )
            runs.append((procs.cli(f"{command}-no-{what}", command, env), expected[what]))
    for proc, needles in runs:
        code = proc.wait(30)
        out = tail(proc.log)
        # 1, not a crash: no traceback, no interpreter abort (134) on the way out.
        assert code == 1, f"{proc.name} exited with {code}\n{out}"
        assert "Traceback" not in out and "Fatal Python error" not in out, out
        missing = [n for n in needles if n not in out]
        assert not missing, f"{proc.name}: message does not name {missing}\n{out}"
    # Four Python processes started at once on two cores: each alone takes ~1.5 s.
    assert time.monotonic() - started < 20


# ------------------------------------------------------------------------- 5. clean stop


def test_dev_stops_cleanly_on_sigterm(dev_stack: DevStack) -> None:
    dev = dev_stack.start()
    children = dev.children()
    commands = [" ".join(p.cmdline()) for p in children]
    for part in ("temporal", "cli worker", "cli web"):
        assert any(part in c for c in commands), f"no {part!r} child: {commands}"

    dev.popen.send_signal(signal.SIGTERM)
    code = dev.wait(15)
    assert code == 0, dev.tail()
    alive = wait_gone(children, 2)
    assert not alive, f"left behind: {alive}\n{dev.tail()}"
    assert "Leadflow stopped." in tail(dev.log)
    assert port_free_now(dev_stack.web_port) and port_free_now(dev_stack.temporal_port)


# ------------------------------------------------------------------------- 6. Temporal outage


@dataclass
class OwnTemporal:
    procs: Processes
    port: int
    ui_port: int
    db_file: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Proc:
        proc = self.procs.spawn(
            "temporal",
            temporal_dev_command(self.port, self.ui_port, self.db_file, ui=False),
            leadflow_env(),
        )
        poll(
            lambda: not port_free_now(self.port),
            STARTUP_S,
            "Temporal did not listen",
            watch=[proc],
        )
        return proc


def test_worker_reconnects_after_temporal_restart(
    procs: Processes, sqlite_url: str, tmp_path: Path
) -> None:
    database = Database(sqlite_url)
    upgrade(database)
    with database.session() as session:
        rep_store.seed_demo(session)
    database.dispose()

    port, ui_port, web_port = free_ports(3)
    temporal = OwnTemporal(procs, port, ui_port, tmp_path / "temporal.db")
    server = temporal.start()
    env = leadflow_env(
        temporal_address=temporal.address,
        database_url=sqlite_url,
        data_dir=tmp_path,
        web_port=web_port,
        api_token=API_TOKEN,
        activity_timeout_s=ACTIVITY_TIMEOUT_S,
    )
    worker, web, base = start_worker_and_web(procs, env, web_port)

    with reading(sqlite_url) as engine, httpx.Client(base_url=base, timeout=30) as http:
        before, refused = submit_all(http, [new_email("before")])
        assert not refused, refused
        wait_all_notified(engine, before, RECOVERY_S, watch=[worker, web])

        kill_tree(server)
        down_since = time.monotonic()
        # While Temporal is down the intake refuses (the lead is not durable) ...
        during = new_email("during")
        asked = time.monotonic()
        _, outcome = submit(http, during)
        waited = time.monotonic() - asked
        assert isinstance(outcome, httpx.Response), outcome
        assert outcome.status_code == 503, outcome.text
        # The client's default retry budget (10 s) holds the answer back that long; any
        # longer and form posts start timing out in proxies instead of getting the 503.
        assert waited < 15, f"the 503 took {waited:.1f} s"
        assert outcome.headers.get("retry-after")
        health = http.get("/healthz")
        assert health.status_code == 503 and health.json()["temporal"] != "ok", health.text
        # ... and neither process gives up, however long it stays down.
        poll(
            lambda: time.monotonic() - down_since > OUTAGE_S,
            OUTAGE_S + 5,
            "a process gave up while Temporal was down",
            interval=0.2,
            watch=[worker, web],
        )

        temporal.start()

        def accepted_again() -> list[Accepted] | None:
            accepted, _ = submit_all(http, [during])
            return accepted or None

        # The form user retries after the 503, and a new lead comes in.
        after = poll(
            accepted_again,
            RECOVERY_S,
            "POST /leads never answered 202 again",
            interval=0.5,
            watch=[worker, web],
        )
        fresh, refused = submit_all(http, [new_email("after")])
        assert not refused, refused
        wait_all_notified(engine, before + after + fresh, RECOVERY_S, watch=[worker, web])
        assert http.get("/healthz").status_code == 200
        assert_each_lead_exactly_once(engine, before + after + fresh, procs.tails())
