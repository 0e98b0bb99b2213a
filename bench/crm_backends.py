"""CRM backends bench: speed to lead and peak throughput with each CRM backend (local,
Salesforce, HubSpot), as ratios against the local CRM measured in the same run.

For each backend in turn it serves the vendor's HTTP fake (``tests/fakes/``) in a thread of
this process, seeded with a user for each demo rep (``store.reps.DEMO_REPS``) and the demo's
nurture campaign/list "Leadflow nurture", starts the real stack (``python -m cli dev`` on
free ports in a temporary folder, bench/stack.py) pointed at it with CRM polling off, warms
up with ``--warmup`` leads that are not counted, then

1. steady: ``--leads`` leads at ``--rate`` per second, open loop, through ``POST /leads``;
   speed to lead = ``leads.notified_at`` - the client's clock just before the POST, as in
   bench/speed_to_lead.py (whose load generator this bench reuses);
2. peak: ``--peak-leads`` leads with ``--peak-concurrency`` in flight (sent, not yet
   notified); throughput = leads notified ÷ (last notification - first send);
3. checks every lead: notified, an owner and a ``crm_id``; on the local CRM its record's
   owner is the rep's; on a vendor the fake holds exactly one record with the lead's email,
   that record is the lead's ``crm_id``, and its owner is the user seeded for the rep's
   email. Every lead that fails a check counts in ``failures`` and is listed;

and stops the stack and the fake before the next backend. ``p99_ratio`` and
``throughput_ratio`` are a backend's figure ÷ the local CRM's. Report to stdout, progress to
stderr, the last line of stdout one JSON object; the exit code is 0 whatever the figures,
1 only when the bench itself broke (a stack did not start, no lead was notified).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

# Run as a script (``python bench/crm_backends.py``): make the repository importable.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lead_load import KEEPALIVE_S  # noqa: E402
from bench.measure import Phase, Sample, db_time, others_share, percentile  # noqa: E402
from bench.report import CONTENDED_SHARE, cpu_rows, fmt  # noqa: E402
from bench.speed_to_lead import Bench, Completions  # noqa: E402
from bench.stack import Stack, log  # noqa: E402
from store.reps import DEMO_REPS  # noqa: E402
from tests.fakes.control import CrmFake  # noqa: E402
from tests.fakes.hubspot_api import DEMO_NURTURE_LIST, running_hubspot  # noqa: E402
from tests.fakes.salesforce_api import running_salesforce  # noqa: E402
from workflows.client import make_client  # noqa: E402

BACKENDS = ("local", "salesforce", "hubspot")
CPU_PARTS = ("temporal", "worker", "web", "bench")


# ------------------------------------------------------------------------------ the CRM


def seed_users(fake: CrmFake) -> dict[str, str]:
    """A CRM user for each demo rep, by email (as ``main()`` of each fake does)."""
    return {email: fake.add_user(email, name) for name, email, _ in DEMO_REPS}


@contextlib.contextmanager
def crm_fake(backend: str) -> Iterator[tuple[CrmFake | None, dict[str, str], dict[str, str]]]:
    """The vendor's fake, served in a thread of this process on a free port until the block
    ends: its control, the stack's environment for it, and rep email → CRM user id."""
    if backend == "local":
        yield None, {}, {}
    elif backend == "salesforce":
        with running_salesforce() as sf:
            sf.org.insert("Campaign", {"Name": DEMO_NURTURE_LIST, "IsActive": True}, None)
            env = {
                "LEADFLOW_SALESFORCE_INSTANCE_URL": sf.url,
                "LEADFLOW_SALESFORCE_ACCESS_TOKEN": sf.gate.access_token,
            }
            yield sf, env, seed_users(sf)
    elif backend == "hubspot":
        with running_hubspot(lists=(DEMO_NURTURE_LIST,)) as hs:
            env = {"LEADFLOW_HUBSPOT_BASE_URL": hs.url, "LEADFLOW_HUBSPOT_TOKEN": hs.token}
            yield hs, env, seed_users(hs)
    else:
        raise ValueError(f"unknown CRM backend {backend!r}")


@dataclass
class CrmBench(Bench):
    """The speed-to-lead bench's load generator, checking leads on any CRM backend."""

    fake: CrmFake | None = None
    users: dict[str, str] = field(default_factory=dict)  # rep email → CRM user id

    def _verify_leads(self, phase: Phase) -> None:
        conn = sqlite3.connect(f"file:{self.stack.app_db}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = {
                row[0]: row
                for row in conn.execute(
                    "SELECT l.id, l.email, l.notified_at, l.owner_rep_id, l.crm_id, r.email,"
                    " r.crm_owner_id, c.owner_id FROM leads l"
                    " LEFT JOIN reps r ON r.id = l.owner_rep_id"
                    " LEFT JOIN crm_records c ON c.id = l.crm_id"
                )
            }
        finally:
            conn.close()
        for sample in phase.samples:
            problems = [sample.error] if sample.error else self._problems(sample, rows)
            if problems:
                phase.failures.append(f"{sample.key}: {', '.join(problems)}")

    def _problems(self, sample: Sample, rows: dict[str, tuple[Any, ...]]) -> list[str]:
        row = rows.get(sample.key)
        if row is None:
            return ["no row in leads"]
        _, email, notified, owner, crm_id, rep_email, rep_owner_id, local_owner = row
        sample.done = db_time(notified)  # a notified lead keeps its latency, checks or not
        problems = []
        if notified is None:
            problems.append("owner never notified")
        if owner is None:
            problems.append("no owner")
        if crm_id is None:
            return [*problems, "no crm_id"]
        if self.fake is None:
            if local_owner is None or local_owner != rep_owner_id:
                problems.append(f"local CRM owner {local_owner!r}, not the rep's {rep_owner_id!r}")
            return problems
        records = self.fake.lead_ids(email)
        wanted = self.users.get(rep_email or "")
        if records != [crm_id]:
            problems.append(f"the CRM holds {records} for {email}, not [{crm_id!r}]")
        elif wanted is None:
            problems.append(f"the rep {rep_email!r} has no seeded CRM user")
        elif (got := self.fake.lead_owner(crm_id)) != wanted:
            problems.append(f"CRM owner {got!r}, not {rep_email}'s user {wanted!r}")
        return problems


# ------------------------------------------------------------------------------ one backend


@dataclass
class Outcome:
    backend: str
    warmup: Phase | None
    steady: Phase
    peak: Phase
    crm_calls: int | None  # API calls the fake received during steady + peak
    startup_s: float


def throughput(phase: Phase) -> float:
    """Leads notified ÷ (last notification - first send)."""
    done = [s.done for s in phase.samples if s.done is not None]
    if not done:
        return math.nan
    span = max(done) - min(s.sent for s in phase.samples)
    return len(done) / span if span > 0 else math.nan


async def run_backend(args: argparse.Namespace, backend: str, workdir: Path) -> Outcome:
    with crm_fake(backend) as (fake, env, users):
        folder = workdir / backend
        folder.mkdir()
        env |= {"LEADFLOW_CRM_BACKEND": backend, "LEADFLOW_CRM_POLL_INTERVAL_S": "0"}
        stack = Stack(folder, env)
        where = f" against the fake at {fake.url}" if fake is not None else ""
        log(f"{backend}: starting leadflow dev (web :{stack.web_port}){where}")
        started = time.monotonic()
        stack.start()
        try:
            return await measure(args, backend, stack, fake, users, started)
        except BaseException:
            log(f"{backend}: last lines of the stack log:\n{stack.log_tail()}")
            raise
        finally:
            log(f"{backend}: stopping the stack")
            stack.stop()


async def measure(
    args: argparse.Namespace,
    backend: str,
    stack: Stack,
    fake: CrmFake | None,
    users: dict[str, str],
    started: float,
) -> Outcome:
    limits = httpx.Limits(
        max_connections=200, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE_S
    )
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30.0, limits=limits) as http:
        await stack.wait_ready(http)
        startup_s = time.monotonic() - started
        log(f"{backend}: stack healthy after {startup_s:.1f} s")
        client = await make_client(stack.settings)
        done = Completions()
        watching = asyncio.create_task(done.watch_notified(stack.app_db))
        try:
            bench = CrmBench(stack, http, client, done, "", fake=fake, users=users)
            warm = None
            if args.warmup > 0:
                log(f"{backend}: warming up with {args.warmup} leads")
                warm = await bench.lifecycle(
                    f"{backend} warm-up", args.warmup, rate=None, concurrency=5
                )
                if not warm.completed:
                    raise RuntimeError(
                        f"{backend}: no warm-up lead was notified: {warm.failures[:3]}"
                    )
            calls0 = fake.calls() if fake is not None else 0
            log(f"{backend}: {args.leads} leads at {args.rate:g}/s, open loop")
            steady = await bench.lifecycle(
                f"{backend} {args.rate:g}/s", args.leads, rate=args.rate, concurrency=0
            )
            if not steady.completed:
                raise RuntimeError(f"{backend}: no lead was notified: {steady.failures[:3]}")
            c = args.peak_concurrency
            log(f"{backend}: peak, {args.peak_leads} leads with {c} in flight")
            peak = await bench.lifecycle(
                f"{backend} peak c={c}", args.peak_leads, rate=None, concurrency=c
            )
            calls = fake.calls() - calls0 if fake is not None else None
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    return Outcome(backend, warm, steady, peak, calls, startup_s)


# ------------------------------------------------------------------------------ report


def r(value: float, digits: int = 1) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def figures(o: Outcome, base: Outcome, args: argparse.Namespace) -> dict[str, Any]:
    lat, peak_lat = o.steady.latencies_ms(), o.peak.latencies_ms()
    p99, base_p99 = percentile(lat, 99), percentile(base.steady.latencies_ms(), 99)
    tput, base_tput = throughput(o.peak), throughput(base.peak)
    phases = [p for p in (o.warmup, o.steady, o.peak) if p is not None]
    n = max(1, len(o.steady.completed))
    leads = args.leads + args.peak_leads
    return {
        "p50_ms": r(percentile(lat, 50)),
        "p95_ms": r(percentile(lat, 95)),
        "p99_ms": r(p99),
        "max_ms": r(max(lat) if lat else math.nan),
        "completed": len(o.steady.completed),
        "sustained_per_s": r(o.steady.per_second(), 2),
        "send_lag_max_ms": r(max((s.lag for s in o.steady.samples), default=0.0) * 1000),
        "peak_completed": len(o.peak.completed),
        "throughput_per_s": r(tput, 2),
        "peak_p50_ms": r(percentile(peak_lat, 50)),
        "peak_p99_ms": r(percentile(peak_lat, 99)),
        "p99_ratio": r(p99 / base_p99 if base_p99 else math.nan, 3),
        "throughput_ratio": r(tput / base_tput if base_tput else math.nan, 3),
        "failures": sum(p.failure_count() for p in phases),
        "failures_by_phase": {
            "warmup": o.warmup.failure_count() if o.warmup else 0,
            "steady": o.steady.failure_count(),
            "peak": o.peak.failure_count(),
        },
        "crm_calls_per_lead": r(o.crm_calls / leads, 2) if o.crm_calls is not None else None,
        "startup_s": r(o.startup_s),
        "cpu_ms_per_lead_steady": {k: r(o.steady.cpu.get(k, 0.0) * 1000 / n) for k in CPU_PARTS},
        "others_cpu_max_pct": round(max(others_share(o.steady), others_share(o.peak)) * 100),
    }


def report(args: argparse.Namespace, outcomes: list[Outcome], started: float) -> dict[str, Any]:
    base = outcomes[0]
    per = {o.backend: figures(o, base, args) for o in outcomes}
    out = print
    out("")
    out(
        f"Leadflow CRM backends bench  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
        f"{os.cpu_count()} cores  Python {platform.python_version()}  "
        f"run {time.time() - started:.0f} s"
    )
    out(
        f"steady: {args.leads} leads at {args.rate:g}/s open loop; speed to lead = ms from just "
        "before POST /leads to leads.notified_at"
    )
    out(
        f"peak: {args.peak_leads} leads, {args.peak_concurrency} in flight; "
        "throughput = notified / (last notified - first send)"
    )
    out("ratios: backend / local of this run; the vendor fakes run in the bench process")
    out("")
    header = (
        f"{'backend':<12}{'done':>6}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}{'peak/s':>8}"
        f"{'peak p99':>9}{'p99 ratio':>10}{'tput ratio':>11}{'fail':>6}{'calls/lead':>11}"
    )
    out(header)
    out("-" * len(header))
    for name, f in per.items():
        calls = f["crm_calls_per_lead"]
        out(
            f"{name:<12}{f['completed'] + f['peak_completed']:>6}{fmt(f['p50_ms']):>7}"
            f"{fmt(f['p95_ms']):>7}{fmt(f['p99_ms']):>7}{fmt(f['max_ms']):>7}"
            f"{fmt(f['throughput_per_s'], 1):>8}{fmt(f['peak_p99_ms']):>9}"
            f"{fmt(f['p99_ratio'], 2):>10}{fmt(f['throughput_ratio'], 2):>11}"
            f"{f['failures']:>6}{'-' if calls is None else fmt(calls, 1):>11}"
        )
    out("")
    phases = [p for o in outcomes for p in (o.steady, o.peak)]
    for line in cpu_rows(phases):
        out(line)
    out("(bench = the load generator and, for a vendor, its fake's server thread)")
    contention = max(others_share(p) for p in phases)
    if contention > CONTENDED_SHARE:
        out(f"warning: other tenants used up to {contention:.0%} of the CPU during a phase")
    for o in outcomes:
        if (lag := per[o.backend]["send_lag_max_ms"]) > 100:
            out(f"{o.backend}: the open-loop sender fell up to {lag:.0f} ms behind schedule")
        for phase in [p for p in (o.warmup, o.steady, o.peak) if p is not None]:
            for failure in phase.failures[:5]:
                out(f"failure ({phase.name}): {failure}")
            if len(phase.failures) > 5:
                out(f"failure ({phase.name}): ... and {len(phase.failures) - 5} more")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cores": os.cpu_count() or 1,
        "leads": args.leads,
        "rate": args.rate,
        "peak_leads": args.peak_leads,
        "peak_concurrency": args.peak_concurrency,
        "warmup": args.warmup,
        "backends": per,
        "p99_ratio": {k: v["p99_ratio"] for k, v in per.items() if k != base.backend},
        "throughput_ratio": {k: v["throughput_ratio"] for k, v in per.items() if k != base.backend},
        "failures": sum(v["failures"] for v in per.values()),
        "others_cpu_max_pct": round(contention * 100),
        "contended": contention > CONTENDED_SHARE,
        "elapsed_s": round(time.time() - started, 1),
    }


# ------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=200, help="leads in the steady run")
    parser.add_argument("--rate", type=float, default=10.0, help="leads per second, steady run")
    parser.add_argument("--peak-leads", type=int, default=300, help="leads at peak")
    parser.add_argument("--peak-concurrency", type=int, default=20, help="in flight at peak")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up leads (not counted)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="leadflow-bench-crm-"))
    started = time.time()

    async def guarded() -> list[Outcome]:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return [await run_backend(args, backend, workdir) for backend in BACKENDS]

    try:
        outcomes = asyncio.run(guarded())
        result = report(args, outcomes, started)
    except (Exception, asyncio.CancelledError, KeyboardInterrupt) as err:
        log(f"the bench broke: {type(err).__name__}: {err}")
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        return 1
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
