"""Speed-to-lead bench: the two lifecycle budgets of DESIGN.md, measured in one run.

It starts the embedded stack exactly as a developer does (``python -m cli dev``: Temporal
dev server on SQLite/WAL, migrations and the demo team, worker and web as their own
processes) on free loopback ports in a temporary data folder, then

1. sends ``--leads`` leads at ``--rate`` per second, open loop, through ``POST /leads``
   over real HTTP, and measures speed to lead: from just before the POST is sent (client
   clock) to ``leads.notified_at`` (written by the worker when the owner is notified; same
   machine, same clock). Each lead must also have an owner, a CRM record and the CRM owner
   set; any that does not is a failure.
2. runs a baseline in-process on the same Temporal server: a workflow with the same three
   activities in a row, each a no-op (bench/noop.py), in a worker built like the real one,
   started at the same rate and count.
3. measures peak throughput of both, ``--peak-leads`` each with ``--peak-concurrency`` in
   flight (sent, not yet notified/completed), in ``--peak-rounds`` rounds run in A-B-B-A
   order, and reports lifecycle ÷ baseline.

To show where the time goes it also splits each steady-run latency into HTTP, intake and
the three activities (from the lead's timeline in the app database) and into Temporal's
own parts (task queues, worker, activities, server; from each workflow's history, see
bench/history.py), and it reads the CPU time of every process of the stack, and of the
machine as a whole, so that load from other tenants of a shared machine shows up in the
report instead of passing for Leadflow's.

A human-readable report goes to stdout, progress to stderr, and the last line of stdout is
one JSON object with every figure. The exit code is 0 whatever the figures say; it is 1
only when the bench itself broke (the stack did not start, or no lead was ever notified).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

# Run as a script (``python bench/speed_to_lead.py``): make the repository importable.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import history  # noqa: E402
from bench.measure import Phase, Results, Sample, cpu_delta, db_time  # noqa: E402
from bench.noop import NoopActivities, NoopWorkflow  # noqa: E402
from bench.report import report  # noqa: E402
from bench.stack import Stack, log  # noqa: E402
from domain.lead import lead_key, workflow_id_for  # noqa: E402
from worker import ACTIVITY_THREADS, SANDBOX  # noqa: E402
from workflows.client import make_client  # noqa: E402

POLL_INTERVAL_S = 0.025
DRAIN_S = 60.0  # how long a sent lead / no-op workflow may take before it counts as failed


# ------------------------------------------------------------------------------ load


def lead_payload(run: str, phase: str, index: int) -> dict[str, Any]:
    sizes = (5, 40, 300, 2500, 12000)
    titles = ("VP Sales", "Head of Marketing", "Engineer", "CEO", "Sales Ops Manager")
    return {
        "email": f"bench-{run}-{phase}-{index}@acme-{index % 37}.com",
        "first_name": f"Bench{index}",
        "last_name": "Lead",
        "company": f"Acme {index % 37}",
        "title": titles[index % len(titles)],
        "company_size": sizes[index % len(sizes)],
        "country": ("US", "DE", "FR", "GB")[index % 4],
        "source": "bench",
        "message": "We would like a demo of your product next week.",
    }


class Completions:
    """When each lead / no-op workflow reached its end point, and waiters for them."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}

    def mark(self, key: str, at: float) -> None:
        """Record ``key`` as done at ``at`` (call on the event loop's thread)."""
        if key in self._seen:
            return
        self._seen[key] = at
        waiter = self._waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(at)

    async def wait(self, key: str, within: float) -> float | None:
        if key in self._seen:
            return self._seen[key]
        future = self._waiters.setdefault(key, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), within)
        except TimeoutError:
            return None

    async def watch_notified(self, db_path: Path) -> None:
        """Poll the app database for notified leads (read-only; in WAL mode a reader never
        blocks the writers). Only feeds closed-loop senders; the figures are computed from
        ``notified_at`` itself, so the polling interval does not enter them."""
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5.0)
        since = ""  # stored timestamps are text that sorts like time
        try:
            while True:
                rows = conn.execute(
                    "SELECT id, notified_at FROM leads WHERE notified_at >= ?", (since,)
                ).fetchall()
                latest = 0.0
                for lead_id, notified_at in rows:
                    at = db_time(notified_at)
                    assert at is not None
                    latest = max(latest, at)
                    self.mark(lead_id, at)
                if latest:
                    # Commits can land out of timestamp order; look back generously.
                    back = datetime.fromtimestamp(latest - 30, UTC)
                    since = max(since, back.strftime("%Y-%m-%d %H:%M:%S.%f"))
                await asyncio.sleep(POLL_INTERVAL_S)
        finally:
            conn.close()


@dataclass
class Bench:
    stack: Stack
    http: httpx.AsyncClient
    client: Client
    done: Completions
    noop_queue: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    # -------------------------------------------------------------- single requests

    async def post_lead(self, phase: str, index: int) -> Sample:
        payload = lead_payload(self.run_id, phase, index)
        lead_id = lead_key(payload["email"], self.stack.lead_id_secret)
        sample = Sample(key=lead_id, sent=time.time())
        try:
            response = await self.http.post("/leads", json=payload)
            sample.accepted = time.time()
            if response.status_code != 202:
                sample.error = f"POST /leads answered {response.status_code}: {response.text}"
            elif response.json().get("lead_id") != lead_id:
                sample.error = f"POST /leads answered another lead id: {response.text}"
        except httpx.HTTPError as err:
            sample.error = f"POST /leads failed: {type(err).__name__}: {err}"
        return sample

    async def start_noop(self, phase: str, index: int) -> Sample:
        key = f"bench-noop-{self.run_id}-{phase}-{index}"
        sample = Sample(key=key, sent=time.time())
        try:
            handle = await self.client.start_workflow(
                NoopWorkflow.run, key, id=key, task_queue=self.noop_queue
            )
            sample.accepted = time.time()
            # Done when the third activity ran, as a lead is done when its owner is
            # notified; the workflow closes one workflow task later (see _closed_times).
            sample.done = await self.done.wait(handle.id, DRAIN_S)
        except Exception as err:
            sample.error = f"no-op workflow failed: {type(err).__name__}: {err}"
        return sample

    # -------------------------------------------------------------- load shapes

    async def open_loop(
        self, count: int, rate: float, one: Callable[[int], Coroutine[Any, Any, Sample]]
    ) -> list[Sample]:
        """Start request i at t0 + i / rate, whether or not earlier ones have finished."""
        tasks: list[asyncio.Task[Sample]] = []
        lags: list[float] = []
        t0 = time.monotonic() + 0.05
        for index in range(count):
            due = t0 + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(max(0.0, time.monotonic() - due))
            tasks.append(asyncio.create_task(one(index)))
        samples = list(await asyncio.gather(*tasks))
        for sample, lag in zip(samples, lags, strict=True):
            sample.lag = lag
        return samples

    async def closed_loop(
        self, count: int, concurrency: int, one: Callable[[int], Coroutine[Any, Any, Sample]]
    ) -> list[Sample]:
        """As fast as possible with at most ``concurrency`` in flight."""
        slots = asyncio.Semaphore(concurrency)

        async def limited(index: int) -> Sample:
            async with slots:
                return await one(index)

        return list(await asyncio.gather(*(limited(i) for i in range(count))))

    # -------------------------------------------------------------- phases

    async def lifecycle(
        self, name: str, count: int, *, rate: float | None, concurrency: int
    ) -> Phase:
        phase_key = tag_of(name)

        async def until_notified(index: int) -> Sample:
            sample = await self.post_lead(phase_key, index)
            if sample.error is None:
                sample.done = await self.done.wait(sample.key, DRAIN_S)
            return sample

        cpu0, wall0 = self.stack.cpu(), time.monotonic()
        if rate is not None:
            samples = await self.open_loop(count, rate, lambda i: self.post_lead(phase_key, i))
            deadline = time.monotonic() + DRAIN_S
            for sample in samples:
                if sample.error is None:
                    left = max(0.0, deadline - time.monotonic())
                    sample.done = await self.done.wait(sample.key, left)
        else:
            samples = await self.closed_loop(count, concurrency, until_notified)
        phase = Phase(name, samples, time.monotonic() - wall0, closed_loop=rate is None)
        phase.cpu = cpu_delta(cpu0, self.stack.cpu())
        await asyncio.to_thread(self._verify_leads, phase)
        return phase

    def _verify_leads(self, phase: Phase) -> None:
        """Owner, CRM record with the owner set, notified; and the stage timings."""
        conn = sqlite3.connect(f"file:{self.stack.app_db}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = {
                row[0]: row
                for row in conn.execute(
                    "SELECT l.id, l.received_at, l.notified_at, l.speed_to_lead_ms,"
                    " l.owner_rep_id, l.crm_id, c.owner_id, r.crm_owner_id"
                    " FROM leads l LEFT JOIN crm_records c ON c.id = l.crm_id"
                    " LEFT JOIN reps r ON r.id = l.owner_rep_id"
                )
            }
            events: dict[str, dict[str, float]] = {}
            for lead_id, type_, occurred_at in conn.execute(
                "SELECT lead_id, type, occurred_at FROM lead_events"
                " WHERE type IN ('assigned', 'crm_synced', 'owner_notified')"
            ):
                at = db_time(occurred_at)
                assert at is not None
                events.setdefault(lead_id, {})[type_] = at
        finally:
            conn.close()

        stages: dict[str, list[float]] = {
            "http in (send → intake)": [],
            "intake → 202 (signal-with-start)": [],
            "intake → assigned": [],
            "assigned → crm synced": [],
            "crm synced → notified": [],
        }
        for sample in phase.samples:
            if sample.error is not None:
                phase.failures.append(f"{sample.key}: {sample.error}")
                continue
            row = rows.get(sample.key)
            if row is None:
                phase.failures.append(f"{sample.key}: no row in leads")
                continue
            _, received, notified, server_ms, owner, crm_id, crm_owner, rep_crm_owner = row
            problems = []
            if notified is None:
                problems.append("owner never notified")
            if owner is None:
                problems.append("no owner")
            if crm_id is None:
                problems.append("no crm_id")
            elif crm_owner is None or crm_owner != rep_crm_owner:
                problems.append(f"CRM owner {crm_owner!r} is not the rep's {rep_crm_owner!r}")
            if problems:
                phase.failures.append(f"{sample.key}: {', '.join(problems)}")
                sample.done = None
                continue
            sample.done = db_time(notified)
            if server_ms is not None:
                phase.server_ms.append(float(server_ms))
            times = events.get(sample.key, {})
            received_at = db_time(received)
            if received_at is None or len(times) < 3:
                continue
            stages["http in (send → intake)"].append((received_at - sample.sent) * 1000)
            if sample.accepted is not None:
                stages["intake → 202 (signal-with-start)"].append(
                    (sample.accepted - received_at) * 1000
                )
            stages["intake → assigned"].append((times["assigned"] - received_at) * 1000)
            stages["assigned → crm synced"].append((times["crm_synced"] - times["assigned"]) * 1000)
            stages["crm synced → notified"].append(
                (times["owner_notified"] - times["crm_synced"]) * 1000
            )
        phase.stages = stages

    async def baseline(
        self,
        name: str,
        count: int,
        *,
        rate: float | None,
        concurrency: int,
        closed_times: bool = False,
    ) -> Phase:
        phase_key = tag_of(name)
        cpu0, wall0 = self.stack.cpu(), time.monotonic()
        if rate is not None:
            samples = await self.open_loop(count, rate, lambda i: self.start_noop(phase_key, i))
        else:
            samples = await self.closed_loop(
                count, concurrency, lambda i: self.start_noop(phase_key, i)
            )
        phase = Phase(name, samples, time.monotonic() - wall0, closed_loop=rate is None)
        phase.cpu = cpu_delta(cpu0, self.stack.cpu())
        phase.failures = [f"{s.key}: {s.error}" for s in samples if s.error is not None]
        phase.failures += [
            f"{s.key}: third activity did not run within {DRAIN_S:.0f} s"
            for s in samples
            if s.error is None and s.done is None
        ]
        if closed_times:
            await self._closed_times(phase)
        return phase

    async def _closed_times(self, phase: Phase) -> None:
        """When each no-op workflow closed, asked after the phase so it costs the measured
        run nothing."""
        slots = asyncio.Semaphore(10)

        async def one(sample: Sample) -> None:
            async with slots:
                with contextlib.suppress(Exception):
                    desc = await self.client.get_workflow_handle(sample.key).describe()
                    if desc.close_time is not None:
                        sample.closed = desc.close_time.timestamp()

        await asyncio.gather(*(one(s) for s in phase.samples if s.error is None))


def tag_of(name: str) -> str:
    """A phase name as it may appear in an email address or workflow id."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# ------------------------------------------------------------------------------ main


async def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    started = time.time()
    log(f"starting leadflow dev in {stack.workdir} (web :{stack.web_port})")
    stack.start()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30.0, limits=limits) as http:
        await stack.wait_ready(http)
        log(f"stack healthy after {time.time() - started:.1f} s: {stack.components}")
        client = await make_client(stack.settings)
        done = Completions()
        loop = asyncio.get_running_loop()

        def third_activity_ran(key: str, at: float) -> None:  # on an activity thread
            loop.call_soon_threadsafe(done.mark, key, at)

        noop = NoopActivities(third_activity_ran)
        queue = f"bench-noop-{uuid.uuid4().hex[:8]}"
        watching = asyncio.create_task(done.watch_notified(stack.app_db))
        try:
            with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
                baseline_worker = Worker(
                    client,
                    task_queue=queue,
                    workflows=[NoopWorkflow],
                    workflow_runner=SANDBOX,
                    activities=[noop.assign, noop.sync, noop.notify],
                    activity_executor=executor,
                    max_concurrent_activities=ACTIVITY_THREADS,
                )
                async with baseline_worker:
                    bench = Bench(stack, http, client, done, queue)
                    results = await run_phases(args, bench)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    return report(args, results, started)


async def run_phases(args: argparse.Namespace, bench: Bench) -> Results:
    warm = args.warmup
    log(f"warming up with {warm} leads and {warm} no-op workflows")
    warm_l = await bench.lifecycle("warmup lifecycle", warm, rate=None, concurrency=5)
    if not warm_l.completed:
        raise RuntimeError("no warm-up lead was notified: " + "; ".join(warm_l.failures[:3]))
    await bench.baseline("warmup baseline", warm, rate=None, concurrency=5)

    log(f"lifecycle: {args.leads} leads at {args.rate:g}/s, open loop")
    steady = await bench.lifecycle(
        f"lifecycle {args.rate:g}/s", args.leads, rate=args.rate, concurrency=0
    )
    if not steady.completed:
        raise RuntimeError("no lead of the steady run was notified")
    log(f"baseline: {args.leads} no-op workflows at {args.rate:g}/s, open loop")
    baseline = await bench.baseline(
        f"no-op {args.rate:g}/s", args.leads, rate=args.rate, concurrency=0, closed_times=True
    )
    log("reading the workflow histories of both steady runs")
    steady.temporal = await history.breakdown(
        bench.client, [workflow_id_for(s.key) for s in steady.completed]
    )
    baseline.temporal = await history.breakdown(bench.client, [s.key for s in baseline.completed])

    # Peak: rounds in A-B-B-A order, so load that other tenants put on the machine in the
    # meantime weighs on both sides alike.
    c, rounds = args.peak_concurrency, max(1, args.peak_rounds)
    per_round = max(c, args.peak_leads // rounds)
    peak_l: list[Phase] = []
    peak_b: list[Phase] = []
    for index in range(rounds):
        for kind in ("lifecycle", "no-op") if index % 2 == 0 else ("no-op", "lifecycle"):
            name = f"{kind} peak c={c} #{index + 1}"
            log(f"peak round {index + 1}/{rounds}: {per_round} {kind}, {c} in flight")
            if kind == "lifecycle":
                peak_l.append(await bench.lifecycle(name, per_round, rate=None, concurrency=c))
            else:
                peak_b.append(await bench.baseline(name, per_round, rate=None, concurrency=c))
    order = [steady, baseline]
    for index in range(rounds):
        pair = [peak_l[index], peak_b[index]]
        order += pair if index % 2 == 0 else pair[::-1]
    return Results(steady, baseline, peak_l, peak_b, order)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=200, help="leads in the steady run")
    parser.add_argument("--rate", type=float, default=10.0, help="leads per second, steady run")
    parser.add_argument(
        "--peak-leads", type=int, default=300, help="leads (and no-op workflows) at peak"
    )
    parser.add_argument(
        "--peak-rounds", type=int, default=2, help="peak runs of each kind, A-B-B-A order"
    )
    parser.add_argument("--peak-concurrency", type=int, default=50, help="in flight at peak")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up leads (not counted)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="leadflow-bench-"))
    stack = Stack(workdir)

    async def guarded() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await run(args, stack)

    try:
        result = asyncio.run(guarded())
    except (Exception, asyncio.CancelledError, KeyboardInterrupt) as err:
        log(f"the bench broke: {type(err).__name__}: {err}")
        tail = stack.log_tail()
        if tail:
            log("last lines of the stack log:\n" + tail)
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        return 1
    finally:
        log("stopping the stack")
        stack.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
