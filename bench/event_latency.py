"""Event-latency bench: a lifecycle event (``POST /leads/{id}/events``) to the 202 that
carries the lead's new stage.

DESIGN.md "Budgets": **lifecycle event → new stage: p99 under 300 ms at 20 events/s**.

It starts the embedded stack as a developer runs it (``python -m cli dev``, bench/stack.py)
on free ports in a temporary folder, opens ``--leads`` (300) lifecycles (distinct leads
through ``POST /leads``, every one assigned and its owner notified before the clock
starts), then sends ``--rate`` (20) events per second, open loop and evenly spread, for
``--seconds`` (30) in all. Each event is one that applies to its lead: lead *i* gets, one
after the other, the inbound path with an engagement between each step::

    contacted, engagement, meeting_booked, engagement, qualified, engagement,
    proposal_sent, engagement, negotiation_started, engagement, engagement, ...

(odd leads start with the engagement), round robin over the leads, so the events to one
lead are ``leads / rate`` seconds apart (15 s) and every round mixes stage changes and
engagements (``email_opened``, ``link_clicked``, ``page_visited``). Each has its own
``event_id``. Latency = from just before the POST to its answer, over real HTTP (httpx),
per event type too.

Two baselines in the same run, at the same rate and for as long:

* ``GET /leads/{id}`` with the bearer token: the web app's round trip and one read of the
  app database;
* a no-op Temporal update (bench/noop_update.py): a workflow's update answered at once,
  without an activity, sent with the Temporal client from the bench process to a worker in
  the bench process (built like the real one: the sandbox, the pydantic data converter).
  What any update costs on this server.

The three run in rounds A-B-C then C-B-A (each ``--seconds``/2 long) so that a change in
the shared machine's load weighs on all three alike. Then it checks that every event was
answered 202 with the stage expected after it, and that the lead's timeline in the app
database holds exactly one entry per ``event_id`` sent; and it splits each event's time
with the lead workflow's history (update accepted / completed, activities).

A human-readable report goes to stdout, progress to stderr, and the last line of stdout is
one JSON object. The exit code is 0 whatever the figures say; 1 when a check failed (an
answer other than 202 or with another stage, a timeline entry missing or doubled) or the
bench itself broke.
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
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lead_load import (  # noqa: E402
    KEEPALIVE_S,
    CpuWindow,
    load_average,
    log_problems,
    read_db,
    send_leads,
)
from bench.measure import percentile  # noqa: E402
from bench.noop_update import NoopUpdateWorkflow  # noqa: E402
from bench.stack import Stack, log  # noqa: E402
from domain.lead import Stage, workflow_id_for  # noqa: E402
from domain.stages import LeadEventType, next_stage  # noqa: E402
from worker import SANDBOX  # noqa: E402
from workflows.client import make_client  # noqa: E402

P99_BUDGET_MS = 300.0
CONTENDED_SHARE = 25.0  # % of the machine other tenants used: say the run is noisy
E = LeadEventType
PATH = (
    E.contacted,
    E.meeting_booked,
    E.qualified,
    E.proposal_sent,
    E.negotiation_started,
)
KINDS = ("email_opened", "link_clicked", "page_visited")


def event_plan(lead_index: int, step: int) -> tuple[LeadEventType, str | None]:
    """The ``step``-th event of lead ``lead_index``: the path with an engagement between
    its steps (odd leads start with the engagement), engagements once it is walked."""
    position = step + (0 if lead_index % 2 else 1)
    if position % 2 == 1 and position // 2 < len(PATH):
        return PATH[position // 2], None
    return E.engagement, KINDS[(lead_index + step) % len(KINDS)]


@dataclass
class Call:
    """One timed request of a phase."""

    kind: str  # event type, "get" or "ping"
    sent: float  # epoch, just before the request left
    lag: float  # how late against its schedule
    ms: float = math.nan
    status: int = 0
    error: str | None = None
    lead_id: str = ""
    event_id: str = ""
    expected_stage: str = ""
    stage: str = ""
    received: float = 0.0  # epoch, answer in


@dataclass
class Phase:
    name: str
    calls: list[Call]
    cpu: dict[str, float] = field(default_factory=dict)

    def ms(self) -> list[float]:
        return [c.ms for c in self.calls if c.error is None and not math.isnan(c.ms)]


@dataclass
class Bench:
    stack: Stack
    http: httpx.AsyncClient
    client: Client
    leads: list[str]  # lead ids, all open and notified
    tiny: list[str]  # no-op update workflow ids
    run_id: str
    steps: dict[str, int] = field(default_factory=dict)  # events sent per lead
    stages: dict[str, Stage] = field(default_factory=dict)  # expected stage per lead
    events_sent: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.token}"}

    async def open_loop(
        self,
        name: str,
        count: int,
        rate: float,
        one: Callable[[int, float], Coroutine[Any, Any, Call]],
    ) -> Phase:
        cpu = CpuWindow(self.stack)
        tasks: list[asyncio.Task[Call]] = []
        t0 = time.monotonic() + 0.05
        for index in range(count):
            due = t0 + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index, max(0.0, time.monotonic() - due))))
        calls = list(await asyncio.gather(*tasks))
        return Phase(name, calls, cpu.shares())

    # -------------------------------------------------------------- one request each

    async def event(self, _index: int, lag: float) -> Call:
        n = self.events_sent
        self.events_sent += 1
        lead_index = n % len(self.leads)
        lead_id = self.leads[lead_index]
        step = self.steps.get(lead_id, 0)
        self.steps[lead_id] = step + 1
        type_, kind = event_plan(lead_index, step)
        before = self.stages.get(lead_id, Stage.assigned)
        expected = next_stage(before, type_)
        self.stages[lead_id] = expected
        event_id = f"bench-{self.run_id}-{n}"
        body: dict[str, Any] = {"type": type_.value, "event_id": event_id}
        if kind is not None:
            body["kind"] = kind
        call = Call(
            kind=type_.value,
            sent=time.time(),
            lag=lag,
            lead_id=lead_id,
            event_id=event_id,
            expected_stage=expected.value,
        )
        start = time.perf_counter()
        try:
            response = await self.http.post(
                f"/leads/{lead_id}/events", json=body, headers=self.auth
            )
            call.ms = (time.perf_counter() - start) * 1000
            call.received = time.time()
            call.status = response.status_code
            if response.status_code == 202:
                answer = response.json()
                call.stage = str(answer.get("stage"))
                if answer.get("event_id") != event_id or not answer.get("applied", False):
                    call.error = f"202 for another event or not applied: {response.text[:200]}"
            else:
                call.error = f"{response.status_code}: {response.text[:300]}"
        except httpx.HTTPError as err:
            call.error = f"{type(err).__name__}: {err}"
        return call

    async def get(self, index: int, lag: float) -> Call:
        lead_id = self.leads[index % len(self.leads)]
        call = Call(kind="get", sent=time.time(), lag=lag, lead_id=lead_id)
        start = time.perf_counter()
        try:
            response = await self.http.get(f"/leads/{lead_id}", headers=self.auth)
            call.ms = (time.perf_counter() - start) * 1000
            call.status = response.status_code
            if response.status_code != 200:
                call.error = f"{response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as err:
            call.error = f"{type(err).__name__}: {err}"
        return call

    async def ping(self, index: int, lag: float) -> Call:
        workflow_id = self.tiny[index % len(self.tiny)]
        key = f"ping-{self.run_id}-{uuid.uuid4().hex[:8]}"
        call = Call(kind="ping", sent=time.time(), lag=lag)
        start = time.perf_counter()
        try:
            answer = await self.client.get_workflow_handle(workflow_id).execute_update(
                NoopUpdateWorkflow.ping, key, id=key
            )
            call.ms = (time.perf_counter() - start) * 1000
            call.status = 200
            if answer != key:
                call.error = f"ping answered {answer!r}"
        except Exception as err:
            call.error = f"{type(err).__name__}: {err}"
        return call


# ------------------------------------------------------------------------------ checks


def check_timeline(stack: Stack, calls: list[Call]) -> dict[str, Any]:
    """Entries per event_id on the leads' timelines: the event's own entry (its idempotency
    key ends with ``:event:<event_id>``) must be there exactly once, of the event's type.
    Follow-up entries of an event (``...:event:<id>:crm``, the CRM status) are counted
    apart."""
    sent = {c.event_id: c for c in calls}
    own: Counter[str] = Counter()
    wrong_type: list[str] = []
    follow_ups: Counter[str] = Counter()
    conn = read_db(stack.app_db)
    try:
        rows = conn.execute(
            "SELECT lead_id, type, idempotency_key FROM lead_events"
            " WHERE idempotency_key LIKE '%:event:bench-%'"
        ).fetchall()
        fired = {
            row[0]: int(row[1])
            for row in conn.execute(
                "SELECT type, count(*) FROM lead_events WHERE type IN"
                " ('sla_reminded', 'sla_escalated', 'reassigned', 'stale_reminded',"
                " 'nurture_started', 'step_failed') GROUP BY type"
            )
        }
        final = {
            row["id"]: row["stage"]
            for row in conn.execute("SELECT id, stage FROM leads")
            if row["id"] in {c.lead_id for c in calls}
        }
    finally:
        conn.close()
    for row in rows:
        tail = str(row["idempotency_key"]).split(":event:", 1)[1]
        event_id, _, rest = tail.partition(":")
        if event_id not in sent:
            continue
        if rest:
            follow_ups[row["type"]] += 1
            continue
        own[event_id] += 1
        if row["type"] != sent[event_id].kind or row["lead_id"] != sent[event_id].lead_id:
            wrong_type.append(f"{event_id}: {row['type']} on {row['lead_id']}")
    missing = [e for e in sent if own[e] == 0]
    doubled = [e for e in sent if own[e] > 1]
    expected_final: dict[str, str] = {}
    for call in calls:  # in the order sent: the last expected stage of each lead
        expected_final[call.lead_id] = call.expected_stage
    stage_mismatch = [
        f"{lead}: {final.get(lead)} (expected {stage})"
        for lead, stage in expected_final.items()
        if final.get(lead) != stage
    ]
    return {
        "events_sent": len(sent),
        "timeline_entries": sum(own.values()),
        "missing": missing[:10],
        "missing_count": len(missing),
        "doubled": doubled[:10],
        "doubled_count": len(doubled),
        "wrong_type": wrong_type[:10],
        "follow_up_entries": dict(follow_ups),
        "lifecycle_wrote_by_itself": fired,
        "final_stage_mismatch": stage_mismatch[:10],
        "final_stage_mismatch_count": len(stage_mismatch),
        "ok": not missing and not doubled and not wrong_type and not stage_mismatch,
    }


def _event_id_of(update_input: Any) -> str:
    """The ``event_id`` in a ``lead_event`` update's input (JSON, the pydantic converter)."""
    with contextlib.suppress(ValueError, IndexError, AttributeError, TypeError):
        return str(json.loads(update_input.args.payloads[0].data).get("event_id") or "")
    return ""


def _at(event: Any) -> float:
    return float(event.event_time.ToMicroseconds()) / 1e6


async def update_breakdown(client: Client, calls: list[Call]) -> dict[str, list[float]]:
    """Per event, from its lead's history (server clock, same machine):

    * send → update accepted: HTTP, the web app, Temporal admitting the update and the
      workflow task that runs the validator and starts the handler; split into send → that
      task scheduled and that task → accepted (queued for the worker, run by it);
    * accepted → completed: the handler, i.e. its activities (queued, running) and the
      workflow tasks between them (queued, in the worker);
    * completed → 202 at the client: Temporal answering the web app, the web app answering.

    Events are matched to updates by the ``event_id`` in the update's input."""
    by_lead: dict[str, dict[str, Call]] = {}
    for call in calls:
        if call.error is None:
            by_lead.setdefault(call.lead_id, {})[call.event_id] = call
    out: dict[str, list[float]] = {
        "send -> update accepted": [],
        "  of which send -> its workflow task": [],
        "  of which that task -> accepted": [],
        "accepted -> completed": [],
        "  of which activities running": [],
        "  of which activities queued": [],
        "  of which workflow tasks queued": [],
        "  of which workflow tasks in worker": [],
        "completed -> 202 at the client": [],
    }
    slots = asyncio.Semaphore(10)
    unread: list[str] = []

    async def one(lead_id: str, wanted: dict[str, Call]) -> None:
        async with slots:
            try:
                history = await client.get_workflow_handle(workflow_id_for(lead_id)).fetch_history()
                accepted: dict[str, float] = {}
                scheduled: dict[int, float] = {}
                started: dict[int, float] = {}
                open_update: str | None = None
                event_of: dict[str, str] = {}  # update id -> event_id
                task_of: dict[str, float] = {}  # update id -> its workflow task scheduled
                queued: dict[str, float] = defaultdict(float)
                running: dict[str, float] = defaultdict(float)
                wft_queued: dict[str, float] = defaultdict(float)
                wft_run: dict[str, float] = defaultdict(float)
                wft_scheduled = wft_started = 0.0
                for event in history.events:
                    kind = event.event_type
                    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                        request = event.workflow_execution_update_accepted_event_attributes
                        open_update = request.accepted_request.meta.update_id
                        accepted[open_update] = _at(event)
                        task_of[open_update] = wft_scheduled
                        event_of[open_update] = _event_id_of(request.accepted_request.input)
                    elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                        wft_scheduled = _at(event)
                    elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                        wft_started = _at(event)
                        if open_update is not None:
                            wft_queued[open_update] += (wft_started - wft_scheduled) * 1000
                    elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                        if open_update is not None:
                            wft_run[open_update] += (_at(event) - wft_started) * 1000
                    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                        scheduled[event.event_id] = _at(event)
                    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                        sid = event.activity_task_started_event_attributes.scheduled_event_id
                        started[sid] = _at(event)
                        if open_update is not None and sid in scheduled:
                            queued[open_update] += (_at(event) - scheduled[sid]) * 1000
                    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                        sid = event.activity_task_completed_event_attributes.scheduled_event_id
                        if open_update is not None and sid in started:
                            running[open_update] += (_at(event) - started[sid]) * 1000
                    elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                        attrs_done = event.workflow_execution_update_completed_event_attributes
                        update_id = attrs_done.meta.update_id
                        call = wanted.get(event_of.get(update_id, ""))
                        if call is not None and update_id in accepted:
                            acc, done = accepted[update_id], _at(event)
                            out["send -> update accepted"].append((acc - call.sent) * 1000)
                            task = task_of[update_id]
                            out["  of which send -> its workflow task"].append(
                                (task - call.sent) * 1000
                            )
                            out["  of which that task -> accepted"].append((acc - task) * 1000)
                            out["accepted -> completed"].append((done - acc) * 1000)
                            out["  of which activities running"].append(running[update_id])
                            out["  of which activities queued"].append(queued[update_id])
                            out["  of which workflow tasks queued"].append(wft_queued[update_id])
                            out["  of which workflow tasks in worker"].append(wft_run[update_id])
                            out["completed -> 202 at the client"].append(
                                (call.received - done) * 1000
                            )
                        open_update = None
            except Exception as err:
                unread.append(f"{lead_id}: {type(err).__name__}: {err}")

    await asyncio.gather(*(one(lead, wanted) for lead, wanted in by_lead.items()))
    if unread:
        log(f"{len(unread)} lead histories could not be read, e.g. {unread[0]}")
    return out


# ------------------------------------------------------------------------------ run


async def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    started = time.time()
    run_id = uuid.uuid4().hex[:8]
    log(f"starting leadflow dev in {stack.workdir} (web :{stack.web_port})")
    stack.start()
    limits = httpx.Limits(
        max_connections=200, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE_S
    )
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60.0, limits=limits) as http:
        await stack.wait_ready(http)
        log(f"stack healthy after {time.time() - started:.1f} s: {stack.components}")
        client = await make_client(stack.settings)
        warm = args.warmup
        log(f"opening {args.leads} + {warm} (warm-up) lifecycles at {args.intake_rate:g} leads/s")
        intake = await send_leads(
            http, stack, run_id, args.leads + warm, args.intake_rate, drain_s=args.drain_s
        )
        ids = [i for i in intake.accepted if i not in intake.missing]  # in the order answered
        for error in intake.errors[:5]:
            log(f"a lead was not accepted: {error}")
        if len(ids) < args.leads:
            raise RuntimeError(
                f"{len(intake.accepted)} leads accepted, {len(intake.missing)} not notified: "
                + "; ".join(intake.errors[:3])
            )
        queue = f"bench-ping-{run_id}"
        ping_worker = Worker(
            client, task_queue=queue, workflows=[NoopUpdateWorkflow], workflow_runner=SANDBOX
        )
        async with ping_worker:
            tiny = []
            for i in range(args.tiny):
                handle = await client.start_workflow(
                    NoopUpdateWorkflow.run, id=f"bench-ping-{run_id}-{i}", task_queue=queue
                )
                tiny.append(handle.id)
            warm_ids = ids[args.leads :]  # the leads beyond the measured ones
            warm_bench = Bench(stack, http, client, warm_ids or ids, tiny, f"{run_id}w")
            log(f"warming up: {2 * len(warm_ids)} events on {len(warm_ids)} other leads")
            if warm_ids:
                await warm_bench.open_loop(
                    "warm-up events", 2 * len(warm_ids), args.rate, warm_bench.event
                )
            await warm_bench.open_loop("warm-up get", max(warm, 1), args.rate, warm_bench.get)
            await warm_bench.open_loop("warm-up ping", max(warm, 1), args.rate, warm_bench.ping)

            bench = Bench(stack, http, client, ids[: args.leads], tiny, run_id)
            per_phase = max(1, round(args.rate * args.seconds / 2))
            kinds = {
                "events": bench.event,
                "GET /leads/{id}": bench.get,
                "no-op update": bench.ping,
            }
            order = ["GET /leads/{id}", "no-op update", "events"]
            phases: list[Phase] = []
            load0 = load_average()
            for round_no, names in enumerate((order, order[::-1]), start=1):
                for name in names:
                    log(
                        f"round {round_no}: {name}, {per_phase} at {args.rate:g}/s "
                        f"({per_phase / args.rate:.0f} s)"
                    )
                    phase = await bench.open_loop(
                        f"{name} #{round_no}", per_phase, args.rate, kinds[name]
                    )
                    phases.append(phase)
            load1 = load_average()
            for handle_id in tiny:
                with contextlib.suppress(Exception):
                    await client.get_workflow_handle(handle_id).terminate("bench done")
        event_calls = [c for p in phases if p.name.startswith("events") for c in p.calls]
        log("checking the timelines and reading the lead workflows' histories")
        timeline = await asyncio.to_thread(check_timeline, stack, event_calls)
        parts = await update_breakdown(client, event_calls)
    timeline["log_problems"] = log_problems(stack)
    return summarise(args, started, intake.sustained_rate, phases, timeline, parts, (load0, load1))


def stats(values: list[float]) -> dict[str, float | None]:
    def r(value: float) -> float | None:
        return None if math.isnan(value) else round(value, 1)

    return {
        "n": len(values),
        "p50_ms": r(percentile(values, 50)),
        "p95_ms": r(percentile(values, 95)),
        "p99_ms": r(percentile(values, 99)),
        "max_ms": r(max(values) if values else math.nan),
    }


def cpu_ms(phase: Phase, process: str) -> float:
    """CPU milliseconds per request of one of our processes during a phase."""
    share = phase.cpu.get(process, math.nan) / 100
    return (
        share
        * phase.cpu.get("wall_s", math.nan)
        * (os.cpu_count() or 1)
        * 1000
        / max(1, len(phase.calls))
    )


def fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.0f}"


def summarise(
    args: argparse.Namespace,
    started: float,
    intake_rate: float,
    phases: list[Phase],
    timeline: dict[str, Any],
    parts: dict[str, list[float]],
    load: tuple[list[float], list[float]],
) -> dict[str, Any]:
    def of(prefix: str) -> list[Call]:
        return [c for p in phases if p.name.startswith(prefix) for c in p.calls]

    events, gets, pings = of("events"), of("GET"), of("no-op")
    ev_all = stats([c.ms for c in events if not math.isnan(c.ms)])
    base_get = stats([c.ms for c in gets if c.error is None])
    base_ping = stats([c.ms for c in pings if c.error is None])
    statuses = Counter(c.status for c in events)
    wrong_stage = [c for c in events if c.status == 202 and c.stage != c.expected_stage]
    errors = [c for c in events if c.error is not None]
    p99 = ev_all["p99_ms"] if ev_all["p99_ms"] is not None else math.nan
    all_202 = statuses.get(202, 0) == len(events)
    p99_ok = p99 < P99_BUDGET_MS and all_202 and not wrong_stage
    ratio_get = p99 / base_get["p99_ms"] if base_get["p99_ms"] else math.nan
    ratio_ping = p99 / base_ping["p99_ms"] if base_ping["p99_ms"] else math.nan
    others = max((p.cpu.get("others", 0.0) for p in phases), default=0.0)
    by_type = {
        kind: stats([c.ms for c in events if c.kind == kind and c.error is None])
        for kind in sorted({c.kind for c in events})
    }
    lag = max((c.lag for p in phases for c in p.calls), default=0.0) * 1000

    out = print
    out("")
    out(
        f"Leadflow event-latency bench  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
        f"{os.cpu_count()} cores  Python {platform.python_version()}  "
        f"run {time.time() - started:.0f} s"
    )
    out(
        f"{args.leads} open lifecycles (opened at {intake_rate:.1f} leads/s); "
        f"{len(events)} events at {args.rate:g}/s open loop in 2 rounds of "
        f"{args.seconds / 2:g} s; ms from just before the request to its answer"
    )
    out("")
    header = (
        f"{'phase':<24}{'sent':>6}{'ok':>6}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}"
        f"{'ours %':>8}{'others %':>9}  CPU ms per request: worker temporal web bench"
    )
    out(header)
    out("-" * len(header))
    for phase in phases:
        s = stats(phase.ms())
        ok = sum(1 for c in phase.calls if c.error is None)
        out(
            f"{phase.name:<24}{len(phase.calls):>6}{ok:>6}{fmt(s['p50_ms']):>7}"
            f"{fmt(s['p95_ms']):>7}{fmt(s['p99_ms']):>7}{fmt(s['max_ms']):>7}"
            f"{fmt(phase.cpu.get('ours')):>8}{fmt(phase.cpu.get('others')):>9}"
            + "".join(
                f"{fmt(cpu_ms(phase, name)):>{width}}"
                for name, width in (("worker", 28), ("temporal", 9), ("web", 4), ("bench", 6))
            )
        )
    out("")
    out(f"{'all rounds':<24}{'n':>6}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}")
    for label, s in (
        ("events", ev_all),
        ("GET /leads/{id}", base_get),
        ("no-op update", base_ping),
        *((f"  {kind}", value) for kind, value in by_type.items()),
    ):
        out(
            f"{label:<24}{s['n']:>6}{fmt(s['p50_ms']):>7}{fmt(s['p95_ms']):>7}"
            f"{fmt(s['p99_ms']):>7}{fmt(s['max_ms']):>7}"
        )
    out("")
    out(f"{'where an event goes (ms)':<34}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}")
    for name, values in parts.items():
        s = stats(values)
        out(
            f"{name:<34}{fmt(s['p50_ms']):>7}{fmt(s['p95_ms']):>7}{fmt(s['p99_ms']):>7}"
            f"{fmt(s['max_ms']):>7}"
        )
    out(f"open-loop sender: latest send was {lag:.0f} ms behind its schedule")
    out(f"load average {load[0]} → {load[1]}")
    out("")
    out(
        f"answers to the events: {dict(sorted(statuses.items()))}; stage as expected in "
        f"{statuses.get(202, 0) - len(wrong_stage)} of {statuses.get(202, 0)} 202s"
    )
    out(
        f"timeline: {timeline['timeline_entries']} entries for {timeline['events_sent']} "
        f"event ids; missing {timeline['missing_count']}, twice or more "
        f"{timeline['doubled_count']}, other type {len(timeline['wrong_type'])}; final stage "
        f"not as expected {timeline['final_stage_mismatch_count']}; follow-up entries "
        f"{timeline['follow_up_entries']}"
    )
    out(
        "timeline entries the lifecycle wrote by itself (timers, failures), all leads: "
        f"{timeline['lifecycle_wrote_by_itself'] or 'none'}"
    )
    problems = timeline["log_problems"]
    out(f"warnings and errors in the stack's log: {sum(problems.values())}")
    for message, count in problems.items():
        out(f"  {count:>6} x {message}")
    out(
        f"budget: event -> new stage p99 < {P99_BUDGET_MS:.0f} ms at {args.rate:g}/s: "
        f"{fmt(p99)} ms, {len(errors)} not 202 -> {'OK' if p99_ok else 'MISSED'}"
    )
    out(
        f"ratio to the baselines (p99): {ratio_get:.1f} x GET /leads/{{id}} "
        f"({fmt(base_get['p99_ms'])} ms), {ratio_ping:.1f} x a no-op update "
        f"({fmt(base_ping['p99_ms'])} ms)"
    )
    if others > CONTENDED_SHARE:
        out(
            f"warning: other tenants used up to {others:.0f} % of the machine's CPU in a "
            "phase; the latencies of this run are inflated by them"
        )
    for call in errors[:5]:
        out(f"failure: {call.kind} {call.event_id} on {call.lead_id}: {call.error}")
    for call in wrong_stage[:5]:
        out(f"failure: {call.event_id} answered stage {call.stage}, expected {call.expected_stage}")

    def r(value: float, digits: int = 2) -> float | None:
        return None if math.isnan(value) else round(value, digits)

    return {
        "bench": "event_latency",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "leads": args.leads,
        "rate": args.rate,
        "seconds": args.seconds,
        "events": len(events),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        **{k: v for k, v in ev_all.items() if k != "n"},
        "by_type": by_type,
        "baseline_get": base_get,
        "baseline_update": base_ping,
        "ratio_p99_to_get": r(ratio_get),
        "ratio_p99_to_update": r(ratio_ping),
        "parts_p50_ms": {k.strip(): stats(v)["p50_ms"] for k, v in parts.items()},
        "parts_p99_ms": {k.strip(): stats(v)["p99_ms"] for k, v in parts.items()},
        "phases": {
            p.name: {
                **stats(p.ms()),
                "others_pct": p.cpu.get("others"),
                "cpu_ms_per_request": {
                    k: round(cpu_ms(p, k), 1) for k in ("worker", "temporal", "web", "bench")
                },
            }
            for p in phases
        },
        "wrong_stage": len(wrong_stage),
        "timeline": timeline,
        "all_202": all_202,
        "others_cpu_max_pct": others,
        "contended": others > CONTENDED_SHARE,
        "load_average": list(load),
        "p99_budget_ms": P99_BUDGET_MS,
        "p99_ok": p99_ok,
        "checks_ok": all_202 and not wrong_stage and bool(timeline["ok"]),
        "elapsed_s": round(time.time() - started, 1),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=300, help="open lifecycles to send to")
    parser.add_argument("--rate", type=float, default=20.0, help="events (and baselines) per s")
    parser.add_argument("--seconds", type=float, default=30.0, help="of events, in 2 rounds")
    parser.add_argument("--intake-rate", type=float, default=15.0, help="leads per s to open")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up leads (not counted)")
    parser.add_argument("--tiny", type=int, default=20, help="no-op update workflows")
    parser.add_argument("--drain-s", type=float, default=180.0, help="wait for the leads")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="leadflow-events-"))
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
        print(json.dumps({"bench": "event_latency", "error": f"{type(err).__name__}: {err}"}))
        return 1
    finally:
        log("stopping the stack")
        stack.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))
    return 0 if result["checks_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
