"""Abuse soak: a flood of one address and a stream of distinct leads, with the worker
killed in the middle, against the embedded stack as a developer runs it (``leadflow dev``).

Over ``--seconds`` (10) it sends ``--flood`` (1,000) posts for one address and
``--leads`` (300) distinct leads, both open loop and spread evenly, and SIGKILLs the worker
once half-way (``leadflow dev`` restarts it). The per-address flood limit is lifted to
``--flood-max-posts`` (2,000) so that the workflow, not the intake's 429, takes the whole
flood: that is what stresses its batches, detail cap and continue-as-new (the 429 path is
covered by the tests; pass ``--flood-max-posts 30`` for the product's default). Then it
waits for every accepted lead to be notified and checks, from the app database and from
Temporal:

- every distinct lead has exactly one ``assigned`` event, one notification, and its stored
  owner is the rep of that first decision;
- the flooded lead still has the owner it was first given, and counts exactly the posts
  that were answered 202 (the others were refused with 429);
- no run of any lead's workflow has a history over 10% of Temporal's limits (50 MB,
  51,200 events).

A report goes to stdout, progress to stderr; the last line of stdout is one JSON object.
The exit code is 1 when a check fails or the soak itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stack import Stack, log  # noqa: E402
from domain.lead import lead_key, workflow_id_for  # noqa: E402
from workflows.client import make_client  # noqa: E402

HISTORY_LIMIT_BYTES = 50 * 1024 * 1024  # Temporal's default history size limit
HISTORY_LIMIT_EVENTS = 51_200  # and its default history count limit
DRAIN_S = 180.0


async def send_at(
    http: httpx.AsyncClient, at: float, payload: dict[str, Any], out: list[tuple[str, int]]
) -> None:
    delay = at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    try:
        response = await http.post("/leads", json=payload)
        out.append((payload["email"], response.status_code))
    except httpx.HTTPError as err:
        out.append((payload["email"], -1))
        log(f"post failed: {type(err).__name__}")


def read_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


async def wait_notified(path: Path, lead_ids: set[str], within: float) -> set[str]:
    """The leads of ``lead_ids`` not notified after ``within`` seconds."""
    deadline = time.monotonic() + within
    missing = set(lead_ids)
    while missing and time.monotonic() < deadline:
        conn = read_db(path)
        try:
            done = {
                row["id"]
                for row in conn.execute("SELECT id FROM leads WHERE notified_at IS NOT NULL")
            }
        finally:
            conn.close()
        missing -= done
        if missing:
            await asyncio.sleep(0.5)
    return missing


async def wait_count(path: Path, lead_id: str, count: int, within: float) -> int:
    deadline = time.monotonic() + within
    seen = 0
    while time.monotonic() < deadline:
        conn = read_db(path)
        try:
            row = conn.execute("SELECT submissions FROM leads WHERE id = ?", (lead_id,)).fetchone()
        finally:
            conn.close()
        seen = int(row["submissions"]) if row else 0
        if seen == count:
            break
        await asyncio.sleep(0.5)
    return seen


def ownership(path: Path, lead_ids: set[str]) -> dict[str, list[str]]:
    """Problems per lead: assigned more than once, notified other than once, or an owner
    that is not the rep of the first decision."""
    conn = read_db(path)
    problems: dict[str, list[str]] = {}
    try:
        for lead_id in lead_ids:
            found: list[str] = []
            assigned = conn.execute(
                "SELECT data FROM lead_events WHERE lead_id = ? AND type = 'assigned' ORDER BY id",
                (lead_id,),
            ).fetchall()
            notified = conn.execute(
                "SELECT count(*) FROM notifications WHERE lead_id = ?", (lead_id,)
            ).fetchone()[0]
            owner = conn.execute(
                "SELECT owner_rep_id FROM leads WHERE id = ?", (lead_id,)
            ).fetchone()
            if len(assigned) != 1:
                found.append(f"{len(assigned)} assigned events")
            else:
                first = json.loads(assigned[0]["data"])["assignment"]["decision"]["owner"]
                if owner is None or first is None or owner[0] != first["rep_id"]:
                    found.append(f"owner {owner and owner[0]} is not the first decision's")
            if notified != 1:
                found.append(f"{notified} notifications")
            if found:
                problems[lead_id] = found
    finally:
        conn.close()
    return problems


async def largest_histories(client: Client, lead_ids: set[str]) -> tuple[int, int, int]:
    """The largest history (bytes, events) over every run of every lead, and the runs."""
    biggest_bytes = biggest_events = runs = 0
    for lead_id in lead_ids:
        async for wf in client.list_workflows(f"WorkflowId = '{workflow_id_for(lead_id)}'"):
            runs += 1
            desc = await client.get_workflow_handle(wf.id, run_id=wf.run_id).describe()
            info = desc.raw_description.workflow_execution_info
            biggest_bytes = max(biggest_bytes, info.history_size_bytes)
            biggest_events = max(biggest_events, info.history_length)
    return biggest_bytes, biggest_events, runs


async def soak(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    stack.start()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60.0, limits=limits) as http:
        await stack.wait_ready(http)
        client = await make_client(stack.settings)
        secret = stack.lead_id_secret
        flood_email = f"flood-{run}@acme-flood.com"
        flood_id = lead_key(flood_email, secret)
        results: list[tuple[str, int]] = []

        # The flooded address is a real lead first: routed and notified before the flood.
        await send_at(http, 0, {"email": flood_email, "first_name": "Flo"}, results)
        if await wait_notified(stack.app_db, {flood_id}, 30):
            raise RuntimeError("the flooded lead's first post was never routed")
        conn = read_db(stack.app_db)
        first_owner = conn.execute(
            "SELECT owner_rep_id FROM leads WHERE id = ?", (flood_id,)
        ).fetchone()[0]
        conn.close()

        log(
            f"{args.flood} posts for one address and {args.leads} distinct leads over "
            f"{args.seconds:g} s; the worker is killed half-way"
        )
        start = time.monotonic() + 0.2
        tasks = []
        for i in range(args.flood):
            at = start + args.seconds * i / args.flood
            payload = {"email": flood_email, "title": f"Title {i}", "phone": f"+1 555 {i:04d}"}
            tasks.append(asyncio.create_task(send_at(http, at, payload, results)))
        distinct: dict[str, str] = {}
        for i in range(args.leads):
            at = start + args.seconds * i / args.leads
            email = f"soak-{run}-{i}@acme-{i % 41}.com"
            distinct[lead_key(email, secret)] = email
            payload = {"email": email, "first_name": f"Soak{i}", "company": f"Acme {i % 41}"}
            tasks.append(asyncio.create_task(send_at(http, at, payload, results)))

        await asyncio.sleep(max(0.0, start + args.seconds / 2 - time.monotonic()))
        worker = stack.components.get("worker")
        killed = False
        if worker is not None:
            os.kill(worker, signal.SIGKILL)
            killed = True
            log(f"killed the worker (pid {worker})")
        await asyncio.gather(*tasks)
        sent_for = time.monotonic() - start
        log(f"all posts answered after {sent_for:.1f} s; waiting for the leads to be notified")

        statuses = Counter(code for _, code in results)
        flood_codes = Counter(code for email, code in results if email == flood_email)
        accepted_distinct = {
            lead_id for lead_id, email in distinct.items() if (email, 202) in set(results)
        }
        drain_started = time.monotonic()
        missing = await wait_notified(stack.app_db, accepted_distinct, DRAIN_S)
        drained_in = time.monotonic() - drain_started
        flood_count = await wait_count(stack.app_db, flood_id, flood_codes[202], 60)

        log("checking ownership and history sizes")
        problems = ownership(stack.app_db, accepted_distinct | {flood_id})
        conn = read_db(stack.app_db)
        flood_owner = conn.execute(
            "SELECT owner_rep_id FROM leads WHERE id = ?", (flood_id,)
        ).fetchone()[0]
        conn.close()
        max_bytes, max_events, runs = await largest_histories(
            client, accepted_distinct | {flood_id}
        )

    checks = {
        "every_distinct_lead_accepted": len(accepted_distinct) == args.leads,
        "every_accepted_lead_notified": not missing,
        "every_lead_owned_once_by_its_first_rep": not problems,
        "flooded_lead_keeps_first_owner": flood_owner == first_owner,
        "flooded_lead_counts_each_202_once": flood_count == flood_codes[202],
        "history_under_10pct_of_limits": max_bytes < HISTORY_LIMIT_BYTES * 0.1
        and max_events < HISTORY_LIMIT_EVENTS * 0.1,
    }
    return {
        "bench": "soak",
        "seconds": args.seconds,
        "flood_max_posts": args.flood_max_posts,
        "posts": len(results),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "flood_statuses": {str(k): v for k, v in sorted(flood_codes.items())},
        "flood_submissions_counted": flood_count,
        "distinct_accepted": len(accepted_distinct),
        "worker_killed": killed,
        "sent_in_s": round(sent_for, 2),
        "drained_in_s": round(drained_in, 2),
        "not_notified": len(missing),
        "ownership_problems": dict(list(problems.items())[:10]),
        "workflow_runs": runs,
        "max_history_bytes": max_bytes,
        "max_history_events": max_events,
        "max_history_fraction_of_limit": round(
            max(max_bytes / HISTORY_LIMIT_BYTES, max_events / HISTORY_LIMIT_EVENTS), 4
        ),
        "checks": checks,
        "ok": all(checks.values()),
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"Abuse soak (leadflow dev, worker killed half-way, "
        f"flood limit {result['flood_max_posts']} posts per address)"
    )
    print(f"  posts answered          {result['statuses']}  in {result['sent_in_s']} s")
    print(
        f"  flooded address         {result['flood_statuses']}, "
        f"counted {result['flood_submissions_counted']}"
    )
    print(
        f"  distinct leads          {result['distinct_accepted']} accepted, "
        f"{result['not_notified']} not notified; drained in {result['drained_in_s']} s"
    )
    print(
        f"  largest history         {result['max_history_bytes']} bytes, "
        f"{result['max_history_events']} events "
        f"({result['max_history_fraction_of_limit']:.2%} of Temporal's limits) "
        f"over {result['workflow_runs']} runs"
    )
    for name, ok in result["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'}  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--flood", type=int, default=1000, help="posts for the one address")
    parser.add_argument("--leads", type=int, default=300, help="distinct leads")
    parser.add_argument("--seconds", type=float, default=10.0, help="spread over this long")
    parser.add_argument(
        "--flood-max-posts", type=int, default=2000, help="LEADFLOW_INTAKE_FLOOD_MAX_POSTS"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="leadflow-soak-"))
    stack = Stack(workdir, {"LEADFLOW_INTAKE_FLOOD_MAX_POSTS": str(args.flood_max_posts)})
    try:
        result = asyncio.run(soak(args, stack))
    except (Exception, KeyboardInterrupt) as err:
        log(f"the soak broke: {type(err).__name__}: {err}")
        tail = stack.log_tail()
        if tail:
            log("last lines of the stack log:\n" + tail)
        print(json.dumps({"bench": "soak", "error": f"{type(err).__name__}: {err}"}))
        return 1
    finally:
        stack.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(result)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
