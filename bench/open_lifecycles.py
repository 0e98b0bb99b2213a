"""Open-lifecycles bench: the worker's memory with 10,000 lead workflows open at once.

DESIGN.md "Budgets": **worker memory under 300 MB RSS with 10,000 open lead workflows**.
After routing and notifying its owner, a lead's workflow stays open, waiting on its timers
(speed-to-lead SLA, no meeting, stale, nurture cool-off...) and on the events people
report, for weeks; so on a real install thousands are open at any time.

It starts the embedded stack as a developer runs it (``python -m cli dev``, bench/stack.py)
on free ports in a temporary folder, measures the worker process's RSS while idle (the
baseline of this run), then sends ``--leads`` (10,000) distinct leads through
``POST /leads``, open loop at ``--rate`` per second (held back while more than
``--max-backlog`` sent leads wait to be notified, so that the intake never runs ahead of
the worker without bound; the rate achieved is measured and printed), waits until every
lead is assigned and its owner notified, lets the stack settle, and measures again: the
worker's RSS (psutil), its high-water mark (VmHWM), the Temporal dev server's RSS, the
size of Temporal's SQLite files and of the app database, and how many LeadLifecycle
workflows Temporal counts as running. The RSS is sampled all along, so the report shows
how it grows with the number of open lifecycles. The budget applies to 10,000 leads;
``--leads N`` runs smaller for a quick look.

The Python SDK keeps at most ``max_cached_workflows`` workflow runs in the worker's memory
(the "sticky" cache; an evicted run is replayed from its history when its next task
comes); worker.py does not set it, so the SDK's default applies. The report names it.

A human-readable report goes to stdout, progress to stderr, and the last line of stdout is
one JSON object. The exit code is 0 whatever the figures say; 1 only when the bench itself
broke (the stack did not start, or no lead was notified).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lead_load import (  # noqa: E402
    KEEPALIVE_S,
    CpuWindow,
    Intake,
    file_sizes,
    load_average,
    log_problems,
    notified_count,
    peak_rss_bytes,
    read_db,
    rss_bytes,
    send_leads,
    tree_rss_bytes,
    worker_pid,
)
from bench.measure import percentile  # noqa: E402
from bench.stack import Stack, log  # noqa: E402
from workflows.client import make_client  # noqa: E402

RSS_BUDGET_MB = 300.0
BUDGET_LEADS = 10_000
MB = 1024 * 1024
# Every pool's SLA during the run (unless --demo-sla): no SLA timer fires while the leads
# come in, though every lifecycle still waits on them.
STRETCHED_SLA = {"remind_after": "1d", "reassign_after": "2d", "escalate_after": "3d"}
# Timeline entries the lifecycle writes by itself (timers that fired) or on a failure.
SELF_EVENTS = (
    "sla_reminded",
    "sla_escalated",
    "reassigned",
    "stale_reminded",
    "nurture_started",
    "recycled",
    "step_failed",
    "lifecycle_closed",
)


def workflow_cache_size() -> tuple[int, str]:
    """``max_cached_workflows`` of the real worker, and where the figure comes from."""
    import worker as worker_module

    source = inspect.getsource(worker_module.build_worker)
    default = inspect.signature(Worker.__init__).parameters["max_cached_workflows"].default
    if "max_cached_workflows" in source:
        return -1, "set in worker.build_worker (see worker.py)"
    return int(default), "the temporalio SDK's default; worker.py does not set it"


@dataclass
class Sample:
    at: float  # seconds since the leads started
    sent: int
    notified: int
    worker_rss: int
    temporal_rss: int
    worker_pid: int | None


@dataclass
class Sampler:
    stack: Stack
    every_s: float
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    sent: int = 0
    base_notified: int = 0

    def take(self) -> Sample:
        pid = worker_pid(self.stack)
        temporal = self.stack.components.get("temporal")
        sample = Sample(
            at=time.monotonic() - self.started,
            sent=self.sent,
            notified=notified_count(self.stack.app_db) - self.base_notified,
            worker_rss=rss_bytes(pid) if pid else 0,
            temporal_rss=tree_rss_bytes(temporal) if temporal else 0,
            worker_pid=pid,
        )
        self.samples.append(sample)
        return sample

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.take)
            await asyncio.sleep(self.every_s)


async def stretch_slas(http: httpx.AsyncClient, stack: Stack, sla: dict[str, str]) -> int:
    """Publish the configuration in force with every pool's speed-to-lead SLA set to
    ``sla`` (through the admin API, as an admin would); the new version's number."""
    auth = {"Authorization": f"Bearer {stack.token}"}
    response = await http.get("/api/v1/config/draft", headers=auth)
    response.raise_for_status()
    draft = response.json()
    for pool in draft["config"].get("pools", []):
        pool["sla"] = {**(pool.get("sla") or {}), **sla}
    response = await http.put(
        "/api/v1/config/draft",
        headers=auth,
        json={"revision": draft["revision"], "config": draft["config"]},
    )
    response.raise_for_status()
    if response.json().get("problems"):
        raise RuntimeError(f"the stretched SLAs were refused: {response.text[:300]}")
    response = await http.post(
        "/api/v1/config/publish", headers=auth, json={"note": "bench: SLAs after the run"}
    )
    response.raise_for_status()
    return int(response.json()["version"])


async def steady_rss(pid: int, count: int = 5, gap_s: float = 2.0) -> list[int]:
    out = []
    for i in range(count):
        if i:
            await asyncio.sleep(gap_s)
        out.append(rss_bytes(pid))
    return out


async def probe_events(
    http: httpx.AsyncClient, stack: Stack, run_id: str, groups: dict[str, list[str]]
) -> dict[str, dict[str, Any]]:
    """One ``engagement`` event to each lead of each group, one at a time (alternating
    between the groups), timed from the POST to its 202: an event to a lifecycle in the
    worker's cache against one to a lifecycle the worker must first rebuild from its
    history."""
    auth = {"Authorization": f"Bearer {stack.token}"}
    timings: dict[str, list[float]] = {name: [] for name in groups}
    failures: dict[str, int] = dict.fromkeys(groups, 0)
    for index in range(max((len(ids) for ids in groups.values()), default=0)):
        for name, ids in groups.items():
            if index >= len(ids):
                continue
            body = {
                "type": "engagement",
                "kind": "email_opened",
                "event_id": f"probe-{run_id}-{name}-{index}",
            }
            start = time.perf_counter()
            try:
                response = await http.post(f"/leads/{ids[index]}/events", json=body, headers=auth)
                ok = response.status_code == 202
            except httpx.HTTPError:
                ok = False
            if ok:
                timings[name].append((time.perf_counter() - start) * 1000)
            else:
                failures[name] += 1
    return {
        name: {
            "n": len(values),
            "failed": failures[name],
            "p50_ms": round(percentile(values, 50), 1) if values else None,
            "max_ms": round(max(values), 1) if values else None,
        }
        for name, values in timings.items()
    }


def timeline_counts(stack: Stack) -> dict[str, int]:
    conn = read_db(stack.app_db)
    try:
        marks = ",".join("?" for _ in SELF_EVENTS)
        rows = conn.execute(
            f"SELECT type, count(*) FROM lead_events WHERE type IN ({marks}) GROUP BY type",
            SELF_EVENTS,
        ).fetchall()
        stages = conn.execute("SELECT stage, count(*) FROM leads GROUP BY stage").fetchall()
        attention = conn.execute("SELECT count(*) FROM leads WHERE needs_attention").fetchone()[0]
    finally:
        conn.close()
    out = {f"event:{row[0]}": int(row[1]) for row in rows}
    out.update({f"stage:{row[0]}": int(row[1]) for row in stages})
    out["needs_attention"] = int(attention)
    return out


async def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    started = time.time()
    run_id = uuid.uuid4().hex[:8]
    cache, cache_source = workflow_cache_size()
    log(f"starting leadflow dev in {stack.workdir} (web :{stack.web_port})")
    stack.start()
    limits = httpx.Limits(
        max_connections=200, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE_S
    )
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60.0, limits=limits) as http:
        await stack.wait_ready(http)
        client = await make_client(stack.settings)
        pid0 = worker_pid(stack)
        temporal_pid = stack.components.get("temporal")
        if pid0 is None or temporal_pid is None:
            raise RuntimeError(f"worker or Temporal process not found: {stack.components}")
        log(f"stack healthy after {time.time() - started:.1f} s: {stack.components}")
        sla = "the demo configuration's"
        if not args.demo_sla:
            version = await stretch_slas(http, stack, STRETCHED_SLA)
            sla = f"every pool's stretched to {STRETCHED_SLA} (configuration version {version})"
            log(f"SLAs: {sla}")
        await asyncio.sleep(args.idle_s)
        baseline = await steady_rss(pid0, 3, 1.0)
        temporal_before = tree_rss_bytes(temporal_pid)
        temporal_files_before = file_sizes(stack.data_dir, "temporal.db")
        app_files_before = file_sizes(stack.data_dir, "leadflow.db")
        log(
            f"worker RSS idle {statistics.median(baseline) / MB:.1f} MB; sending {args.leads} "
            f"leads at {args.rate:g}/s (backlog cap {args.max_backlog})"
        )

        sampler = Sampler(stack, args.sample_every)
        sampler.base_notified = notified_count(stack.app_db)
        sampling = asyncio.create_task(sampler.run())
        cpu = CpuWindow(stack)
        load_before = load_average()
        try:
            intake = await send_leads(
                http,
                stack,
                run_id,
                args.leads,
                args.rate,
                max_backlog=args.max_backlog,
                already_notified=sampler.base_notified,
                drain_s=args.drain_s,
                progress_every=max(1, args.leads // 10),
                on_sent=lambda n: setattr(sampler, "sent", n),
            )
            intake_s = time.time() - intake.first_sent
            cpu_during = cpu.shares()
            load_during = load_average()
            if len(intake.accepted) == len(intake.missing):
                raise RuntimeError("no lead was notified")
            log(
                f"{len(intake.accepted) - len(intake.missing)} leads notified in {intake_s:.0f} s; "
                f"settling {args.settle_s:g} s with every lifecycle open"
            )
            await asyncio.sleep(args.settle_s)
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
        pid1 = worker_pid(stack)
        if pid1 is None:
            raise RuntimeError("the worker process is gone")
        after = await steady_rss(pid1, 5, 2.0)
        peak = peak_rss_bytes(pid1)
        temporal_after = tree_rss_bytes(temporal_pid)
        temporal_files = file_sizes(stack.data_dir, "temporal.db")
        app_files = file_sizes(stack.data_dir, "leadflow.db")
        running = await client.count_workflows(
            "WorkflowType = 'LeadLifecycle' AND ExecutionStatus = 'Running'"
        )
        counts = await asyncio.to_thread(timeline_counts, stack)
        cpu_settle = cpu.shares()
        probe: dict[str, dict[str, Any]] = {}
        if args.probe:
            ids = list(intake.accepted)  # in the order answered, i.e. about as sent
            log(f"probing: an event each to the {args.probe} oldest and newest leads")
            probe = await probe_events(
                http,
                stack,
                run_id,
                {"newest": ids[-args.probe :], "oldest": ids[: args.probe]},
            )
            probe["after"] = {"worker_rss_mb": round(rss_bytes(pid1) / MB, 1)}

    return summarise(
        args,
        started=started,
        cache=(cache, cache_source),
        baseline=baseline,
        after=after,
        peak=peak,
        worker_pids=(pid0, pid1),
        sampler=sampler,
        intake=intake,
        intake_s=intake_s,
        temporal_rss=(temporal_before, temporal_after),
        temporal_files=(temporal_files_before, temporal_files),
        app_files=(app_files_before, app_files),
        running=running.count,
        counts=counts,
        cpu=(cpu_during, cpu_settle),
        load=(load_before, load_during),
        probe=probe,
        sla=sla,
        problems=log_problems(stack),
    )


def summarise(
    args: argparse.Namespace,
    *,
    started: float,
    cache: tuple[int, str],
    baseline: list[int],
    after: list[int],
    peak: int,
    worker_pids: tuple[int | None, int],
    sampler: Sampler,
    intake: Intake,
    intake_s: float,
    temporal_rss: tuple[int, int],
    temporal_files: tuple[dict[str, int], dict[str, int]],
    app_files: tuple[dict[str, int], dict[str, int]],
    running: int,
    counts: dict[str, int],
    cpu: tuple[dict[str, float], dict[str, float]],
    load: tuple[list[float], list[float]],
    probe: dict[str, dict[str, Any]],
    sla: str,
    problems: dict[str, int],
) -> dict[str, Any]:
    base_mb = statistics.median(baseline) / MB
    after_mb = statistics.median(after) / MB
    notified = len(intake.accepted) - len(intake.missing)
    per_lifecycle_kb = (after_mb - base_mb) * 1024 / notified if notified else math.nan
    in_cache = min(notified, cache[0]) if cache[0] > 0 else notified
    per_cached_kb = (after_mb - base_mb) * 1024 / in_cache if in_cache else math.nan
    restarted = worker_pids[0] != worker_pids[1] or any(
        s.worker_pid not in (None, worker_pids[0]) for s in sampler.samples
    )
    budget_applies = args.leads >= BUDGET_LEADS
    rss_ok = after_mb < RSS_BUDGET_MB and peak / MB < RSS_BUDGET_MB and not restarted

    def r(value: float, digits: int = 1) -> float | None:
        return None if math.isnan(value) else round(value, digits)

    def mb(sizes: dict[str, int]) -> dict[str, float]:
        return {k: round(v / MB, 2) for k, v in sizes.items()}

    # The RSS curve: a sample each tenth of the leads (and the last one).
    curve: list[Sample] = []
    step = max(1, args.leads // 10)
    mark = 0
    for sample in sampler.samples:
        if sample.notified >= mark:
            curve.append(sample)
            mark = (sample.notified // step + 1) * step
    if sampler.samples and (not curve or curve[-1] is not sampler.samples[-1]):
        curve.append(sampler.samples[-1])
    cache_size, cache_source = cache

    out = print
    out("")
    out(
        f"Leadflow open-lifecycles bench  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
        f"{os.cpu_count()} cores  Python {platform.python_version()}  "
        f"run {time.time() - started:.0f} s"
    )
    out(
        f"leads: {len(intake.accepted)} accepted of {intake.sent} sent "
        f"({dict(sorted(intake.statuses.items()))}), {notified} notified, "
        f"{len(intake.missing)} never notified"
    )
    out(
        f"intake: offered {args.rate:g}/s open loop, sent at {intake.send_rate:.1f}/s "
        f"(held back {intake.paused_s:.0f} s by the backlog cap of {args.max_backlog}; "
        f"largest backlog {intake.max_backlog}); sustained {intake.sustained_rate:.1f} "
        f"leads notified/s; all notified {intake_s:.0f} s after the first send"
    )
    out(f"speed-to-lead SLAs: {sla}")
    out(
        f"Temporal: {running} LeadLifecycle workflows running; worker workflow cache "
        f"max_cached_workflows = {cache_size} ({cache_source})"
    )
    out("")
    out(f"{'s':>6}{'sent':>8}{'notified':>10}{'worker RSS MB':>15}{'Temporal RSS MB':>17}")
    for s in curve:
        out(
            f"{s.at:>6.0f}{s.sent:>8}{s.notified:>10}{s.worker_rss / MB:>15.1f}"
            f"{s.temporal_rss / MB:>17.1f}"
        )
    out("")
    out(f"worker RSS, idle before the leads (baseline)   {base_mb:8.1f} MB")
    out(
        f"worker RSS, {notified:,} lifecycles open            {after_mb:8.1f} MB"
        f"   (samples {', '.join(f'{v / MB:.0f}' for v in after)})"
    )
    out(f"worker RSS high-water mark (VmHWM)             {peak / MB:8.1f} MB")
    out(f"per open lifecycle                             {per_lifecycle_kb:8.1f} KB")
    out(
        f"{f'per cached lifecycle ({cache_size} at most)':<47}{per_cached_kb:8.1f} KB"
        "   (RSS above the baseline / the lifecycles the cache can hold)"
    )
    out(
        f"Temporal dev server RSS                        {temporal_rss[0] / MB:8.1f} → "
        f"{temporal_rss[1] / MB:.1f} MB"
    )
    out(
        f"Temporal SQLite files                          "
        f"{sum(temporal_files[1].values()) / MB:8.1f} MB  {mb(temporal_files[1])}"
    )
    out(
        f"app database                                   "
        f"{sum(app_files[1].values()) / MB:8.1f} MB  {mb(app_files[1])}"
    )
    fired = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("event:")}
    stages = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("stage:")}
    out(f"timeline entries the lifecycle wrote by itself  {fired or 'none'}")
    out(f"leads by stage                                 {stages}")
    out(f"leads needing attention                        {counts.get('needs_attention', 0)}")
    out(
        f"CPU during the intake (% of the machine): ours {cpu[0].get('ours')} "
        f"(temporal {cpu[0].get('temporal')}, worker {cpu[0].get('worker')}, "
        f"web {cpu[0].get('web')}, bench {cpu[0].get('bench')}), other tenants "
        f"{cpu[0].get('others')}, steal {cpu[0].get('steal')}; load average "
        f"{load[0]} → {load[1]}"
    )
    if probe:
        newest, oldest = probe.get("newest", {}), probe.get("oldest", {})
        evicted = (
            "evicted from the cache: rebuilt from their history"
            if notified > cache_size > 0
            else "still in the cache: fewer lifecycles than it holds"
        )
        out(
            f"afterwards, one event each (engagement, one at a time): the {newest.get('n')} "
            f"leads sent last (in the worker's cache) p50 {newest.get('p50_ms')} ms, max "
            f"{newest.get('max_ms')} ms; the {oldest.get('n')} sent first ({evicted}) p50 "
            f"{oldest.get('p50_ms')} ms, max {oldest.get('max_ms')} ms; "
            f"failed {newest.get('failed', 0) + oldest.get('failed', 0)}; worker RSS then "
            f"{probe.get('after', {}).get('worker_rss_mb')} MB"
        )
    out(f"warnings and errors in the stack's log: {sum(problems.values())}")
    for message, count in problems.items():
        out(f"  {count:>6} x {message}")
    if restarted:
        out("WARNING: the worker process was restarted during the run: the RSS is not comparable")
    scope = (
        "" if budget_applies else f" (the budget is for {BUDGET_LEADS:,}; this ran {args.leads:,})"
    )
    out(
        f"budget: worker RSS < {RSS_BUDGET_MB:.0f} MB with {BUDGET_LEADS:,} open lifecycles: "
        f"{after_mb:.0f} MB (peak {peak / MB:.0f} MB) -> "
        f"{('OK' if rss_ok else 'MISSED') if budget_applies else 'not judged'}{scope}"
    )
    for error in intake.errors[:5]:
        out(f"failure: {error}")

    return {
        "bench": "open_lifecycles",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "leads": args.leads,
        "accepted": len(intake.accepted),
        "notified": notified,
        "not_notified": len(intake.missing),
        "statuses": {str(k): v for k, v in sorted(intake.statuses.items())},
        "rate_offered": args.rate,
        "rate_sent": r(intake.send_rate, 2),
        "sustained_per_s": r(intake.sustained_rate, 2),
        "held_back_s": round(intake.paused_s, 1),
        "max_backlog": intake.max_backlog,
        "intake_s": round(intake_s, 1),
        "running_workflows": running,
        "max_cached_workflows": cache_size,
        "worker_rss_baseline_mb": round(base_mb, 1),
        "worker_rss_mb": round(after_mb, 1),
        "worker_rss_peak_mb": round(peak / MB, 1),
        "per_lifecycle_kb": r(per_lifecycle_kb, 2),
        "per_cached_lifecycle_kb": r(per_cached_kb, 1),
        "worker_restarted": restarted,
        "rss_curve": [
            {"s": round(s.at), "notified": s.notified, "worker_mb": round(s.worker_rss / MB, 1)}
            for s in curve
        ],
        "temporal_rss_mb": [round(v / MB, 1) for v in temporal_rss],
        "temporal_db_mb": round(sum(temporal_files[1].values()) / MB, 2),
        "temporal_files_mb": mb(temporal_files[1]),
        "app_db_mb": round(sum(app_files[1].values()) / MB, 2),
        "app_files_mb": mb(app_files[1]),
        "sla": sla,
        "timeline": counts,
        "probe": probe,
        "log_problems": problems,
        "cpu_pct": cpu[0],
        "others_cpu_pct": cpu[0].get("others"),
        "load_average": list(load),
        "rss_budget_mb": RSS_BUDGET_MB,
        "budget_applies": budget_applies,
        "rss_ok": rss_ok,
        "elapsed_s": round(time.time() - started, 1),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--leads",
        type=int,
        default=BUDGET_LEADS,
        help=f"distinct leads to open (the budget is for {BUDGET_LEADS:,})",
    )
    parser.add_argument("--rate", type=float, default=25.0, help="leads per second offered")
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=400,
        help="hold the sender while more sent leads than this wait to be notified (0: never)",
    )
    parser.add_argument("--drain-s", type=float, default=300.0, help="wait this long at most")
    parser.add_argument(
        "--settle-s", type=float, default=15.0, help="wait after the last lead, then measure"
    )
    parser.add_argument("--idle-s", type=float, default=5.0, help="idle before the baseline")
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS samples, seconds")
    parser.add_argument(
        "--probe", type=int, default=30, help="events to the oldest / newest leads at the end"
    )
    parser.add_argument(
        "--demo-sla",
        action="store_true",
        help="keep the demo configuration's SLAs (5 min and up: timers fire during the run)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="leadflow-open-"))
    stack = Stack(workdir)

    async def guarded() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run(args, stack)

    try:
        result = asyncio.run(guarded())
    except (Exception, asyncio.CancelledError, KeyboardInterrupt) as err:
        log(f"the bench broke: {type(err).__name__}: {err}")
        tail = stack.log_tail()
        if tail:
            log("last lines of the stack log:\n" + tail)
        print(json.dumps({"bench": "open_lifecycles", "error": f"{type(err).__name__}: {err}"}))
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
