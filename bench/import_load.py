"""Bulk import bench: a 10,000-row CSV imported while web-form leads keep arriving.

It starts the embedded stack as a developer does (``python -m cli dev``, see
bench/stack.py) on free ports in a temporary folder, then, in one run:

1. sends ``--live`` web-form leads at ``--live-rate`` per second through ``POST /leads``
   (open loop) with nothing else running, and measures their speed to lead (POST sent →
   ``leads.notified_at``), as bench/speed_to_lead.py does;
2. imports a CSV of ``--rows`` rows, 3 % of them bad and 1 % repeating an earlier person,
   with ``leadflow leads import`` as its own process at ``LEADFLOW_IMPORT_RATE=--rate``;
   once it is under way, sends the same web-form load again beside it;
3. after the import, when every imported lead has its owner notified, sends the same load
   a third time (before / during / after, so a drift in the machine's load shows).

It checks the counts exactly (imported, merged, rejected; every imported lead once in
``leads`` with an owner and a quiet notice, each row started once; no speed-to-lead step
and no message of its own for an imported lead, one summary per owner adding up to the
import) and reports the import's throughput (rows handed over per second, and leads
through to their owner per second), the pace actually kept (most rows started in any one
second), and the live leads' p50/p95/p99 in each phase. The last line of stdout is one
JSON object; the exit code is 0 whatever the figures, 1 when the bench itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.measure import Phase, db_time, others_share, percentile  # noqa: E402
from bench.speed_to_lead import Bench, Completions  # noqa: E402
from bench.stack import Stack, log  # noqa: E402
from workflows.client import make_client  # noqa: E402

P99_BUDGET_MS = 1000.0
SOURCE = "bench-import"
DRAIN_S = 300.0  # after the import, how long its last leads may take to be notified
SUMMARY_S = 150.0  # then how long the owners' summaries may take (they wait for routing)
CLI_IMPORT = [sys.executable, "-m", "cli", "leads", "import"]


def write_csv(path: Path, rows: int, run: str) -> dict[str, int]:
    """The import file and the counts an import of it must give."""
    accepted = merged = rejected = 0
    last = ""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Email", "First Name", "Last Name", "Company", "Title", "Phone", "Notes"])
        for index in range(rows):
            email = f"imp-{run}-{index}@import-{index % 53}.example.com"
            phone = f"+1 555 {index % 10000:04d}"
            if index % 100 == 33:  # 1 in 100 bad addresses, 1 in 50 bad phones: 3 %
                email = f"imp-{run}-{index}-at-nowhere"
                rejected += 1
            elif index % 50 == 7:
                phone = "ask reception"
                rejected += 1
            elif index % 100 == 71 and last:
                email = last.upper()  # the same person again
                merged += 1
            else:
                accepted += 1
                last = email
            writer.writerow(
                [email, f"Imp{index}", "Lead", f"Company {index % 97}", "VP Sales", phone, "old"]
            )
    return {"rows": rows, "accepted": accepted, "merged": merged, "rejected": rejected}


def cli_env(stack: Stack, rate: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(
        {
            "LEADFLOW_DATA_DIR": str(stack.data_dir),
            "LEADFLOW_WEB_PORT": str(stack.web_port),
            "LEADFLOW_TEMPORAL_PORT": str(stack.temporal_port),
            "LEADFLOW_TEMPORAL_UI_PORT": str(stack.temporal_ui_port),
            "LEADFLOW_IMPORT_RATE": f"{rate:g}",
            "LEADFLOW_LOG_JSON": "false",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def import_state(db: Path) -> dict[str, Any]:
    rows = query(
        db,
        "SELECT id, status, rows, accepted, merged, rejected, imported, started_at, finished_at"
        " FROM lead_imports",
    )
    if not rows:
        return {}
    keys = ("id", "status", "rows", "accepted", "merged", "rejected", "imported")
    state = dict(zip((*keys, "started_at", "finished_at"), rows[0], strict=True))
    state["started_at"] = db_time(state["started_at"])
    state["finished_at"] = db_time(state["finished_at"])
    return state


async def live(bench: Bench, name: str, count: int, rate: float) -> Phase:
    log(f"{name}: {count} web-form leads at {rate:g}/s")
    return await bench.lifecycle(name, count, rate=rate, concurrency=0)


def check_import(db: Path, expected: dict[str, int], state: dict[str, Any]) -> list[str]:
    """Exact counts, every imported lead once with an owner, every row once."""
    problems = []
    for key in ("rows", "accepted", "merged", "rejected"):
        if state.get(key) != expected[key]:
            problems.append(f"{key}: {state.get(key)} instead of {expected[key]}")
    if state.get("imported") != expected["accepted"] or state.get("status") != "completed":
        problems.append(f"import ended {state.get('status')} with {state.get('imported')} rows")
    statuses = dict(query(db, "SELECT status, count(*) FROM import_rows GROUP BY status"))
    if statuses.get("started") != expected["accepted"] or statuses.get("pending"):
        problems.append(f"rows by status: {statuses}")
    [(leads, owned, notified, once)] = query(
        db,
        "SELECT count(*), count(owner_rep_id), count(notified_at), sum(submissions = 1)"
        " FROM leads WHERE json_extract(data, '$.source') = ?",
        SOURCE,
    )
    if not leads == owned == notified == once == expected["accepted"]:
        problems.append(
            f"leads of the import: {leads}, with an owner {owned}, notified {notified}, "
            f"one submission {once}; expected {expected['accepted']} of each"
        )
    [(captured,)] = query(
        db,
        "SELECT count(*) FROM lead_events e JOIN leads l ON l.id = e.lead_id"
        " WHERE e.type = 'captured' AND json_extract(l.data, '$.source') = ?",
        SOURCE,
    )
    if captured != expected["accepted"]:
        problems.append(f"{captured} 'captured' events for {expected['accepted']} leads")
    problems.extend(check_quiet(db, expected))
    return problems


async def summaries_sent(db: Path, within: float = SUMMARY_S) -> None:
    """Until every owner of the import's leads has had its summary (or ``within``)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        [(owners,)] = query(
            db,
            "SELECT count(DISTINCT owner_rep_id) FROM leads"
            " WHERE json_extract(data, '$.source') = ?",
            SOURCE,
        )
        [(sent,)] = query(db, "SELECT count(*) FROM notifications WHERE kind = 'import_summary'")
        if sent >= owners:
            return
        await asyncio.sleep(1.0)


def check_quiet(db: Path, expected: dict[str, int]) -> list[str]:
    """Imported leads: no speed-to-lead step, no message of their own, and one summary
    per owner whose counts add up to the import."""
    problems = []
    of_import = "SELECT id FROM leads WHERE json_extract(data, '$.source') = ?"
    [(sla_steps,)] = query(
        db,
        "SELECT count(*) FROM lead_events WHERE type IN ('sla_reminded', 'reassigned',"
        f" 'sla_escalated') AND lead_id IN ({of_import})",
        SOURCE,
    )
    [(cards,)] = query(
        db, f"SELECT count(*) FROM notifications WHERE lead_id IN ({of_import})", SOURCE
    )
    if sla_steps or cards:
        problems.append(f"imported leads: {sla_steps} SLA steps, {cards} messages of their own")
    [(owners,)] = query(
        db, f"SELECT count(DISTINCT owner_rep_id) FROM leads WHERE id IN ({of_import})", SOURCE
    )
    texts = [
        t for (t,) in query(db, "SELECT text FROM notifications WHERE kind = 'import_summary'")
    ]
    told = sum(int(t.split(" ", 1)[0].replace(",", "")) for t in texts)
    if len(texts) != owners or told != expected["accepted"]:
        problems.append(
            f"{len(texts)} summaries for {owners} owners, counting {told} leads of "
            f"{expected['accepted']}"
        )
    return problems


def pace(db: Path) -> tuple[int, float]:
    """The most rows handed over within any one second, and the mean rate over the import,
    from the imported leads' ``received_at`` (the moment each was handed over)."""
    stamps = query(
        db, "SELECT received_at FROM leads WHERE json_extract(data, '$.source') = ?", SOURCE
    )
    times = sorted(t for (value,) in stamps if (t := db_time(value)) is not None)
    most, low = 0, 0
    for high, at in enumerate(times):
        while at - times[low] >= 1.0:
            low += 1
        most = max(most, high - low + 1)
    span = times[-1] - times[0] if len(times) > 1 else math.nan
    return most, (len(times) - 1) / span if span else math.nan


def summary(phase: Phase) -> dict[str, Any]:
    ms = phase.latencies_ms()
    return {
        "sent": len(phase.samples),
        "done": len(phase.completed),
        "failures": phase.failure_count(),
        "p50_ms": round(percentile(ms, 50)),
        "p95_ms": round(percentile(ms, 95)),
        "p99_ms": round(percentile(ms, 99)),
        "max_ms": round(max(ms)) if ms else None,
        "others_cpu_share": round(others_share(phase), 2),
    }


async def beside(
    bench: Bench, args: argparse.Namespace, stack: Stack, importer: asyncio.subprocess.Process
) -> Phase:
    """The live load again, once the import is well under way (ten seconds of rows)."""
    while import_state(stack.app_db).get("imported", 0) < args.rate * 10:
        if importer.returncode is not None:
            raise RuntimeError(f"leadflow leads import exited with {importer.returncode}")
        await asyncio.sleep(0.5)
    return await live(bench, "live, beside the import", args.live, args.live_rate)


async def stop(importer: asyncio.subprocess.Process) -> None:
    """Ctrl-C for the import command if it still runs (the bench was stopped)."""
    if importer.returncode is None:
        importer.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(importer.wait(), 10)
        except TimeoutError:
            importer.kill()
            await importer.wait()


async def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    expected = write_csv(stack.workdir / "leads.csv", args.rows, run_id)
    log(f"import file: {expected}")
    stack.start()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30.0, limits=limits) as http:
        await stack.wait_ready(http)
        client = await make_client(stack.settings)
        done = Completions()
        watching = asyncio.create_task(done.watch_notified(stack.app_db))
        try:
            bench = Bench(stack, http, client, done, noop_queue="unused")
            await bench.lifecycle("warm-up", 10, rate=None, concurrency=5)
            before = await live(bench, "live, no import", args.live, args.live_rate)

            log(f"importing {args.rows} rows at most {args.rate:g}/s (leadflow leads import)")
            with (stack.workdir / "import.log").open("wb") as importer_log:
                importer = await asyncio.create_subprocess_exec(
                    *CLI_IMPORT,
                    "leads.csv",
                    "--source",
                    SOURCE,
                    cwd=stack.workdir,
                    env=cli_env(stack, args.rate),
                    stdout=importer_log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    during = await beside(bench, args, stack, importer)
                    log("waiting for the import to finish")
                    code = await importer.wait()
                finally:
                    await stop(importer)
            if code != 0:
                raise RuntimeError(f"leadflow leads import exited with {code}")
            state = import_state(stack.app_db)
            deadline = time.monotonic() + DRAIN_S
            last_notified: float | None = None
            while time.monotonic() < deadline:
                [(count, last)] = query(
                    stack.app_db,
                    "SELECT count(notified_at), max(notified_at) FROM leads"
                    " WHERE json_extract(data, '$.source') = ?",
                    SOURCE,
                )
                last_notified = db_time(last)
                if count >= expected["accepted"]:
                    break
                await asyncio.sleep(1.0)
            after = await live(bench, "live, after the import", args.live, args.live_rate)
            await summaries_sent(stack.app_db)
        finally:
            watching.cancel()
    problems = check_import(stack.app_db, expected, state)
    most_in_a_second, mean_rate = pace(stack.app_db)
    span = (state["finished_at"] or math.nan) - (state["started_at"] or math.nan)
    through = (last_notified or math.nan) - (state["started_at"] or math.nan)
    result = {
        "rows": args.rows,
        "import_rate_setting": args.rate,
        "expected": expected,
        "imported": state.get("imported"),
        "merged": state.get("merged"),
        "rejected": state.get("rejected"),
        "counts_ok": not problems,
        "problems": problems,
        "import_s": round(span, 1),
        "rows_per_s": round(expected["accepted"] / span, 2),
        "leads_notified_per_s": round(expected["accepted"] / through, 2),
        "most_rows_in_one_second": most_in_a_second,
        "mean_start_rate": round(mean_rate, 2),
        "live_rate": args.live_rate,
        "live_before": summary(before),
        "live_during": summary(during),
        "live_after": summary(after),
    }
    result["p99_ok"] = result["live_during"]["p99_ms"] <= P99_BUDGET_MS
    print_report(result)
    return result


def print_report(r: dict[str, Any]) -> None:
    print(f"bulk import of {r['rows']:,} rows at LEADFLOW_IMPORT_RATE={r['import_rate_setting']:g}")
    e = r["expected"]
    print(
        f"  counts: {r['imported']} imported / {r['merged']} merged / {r['rejected']} rejected"
        f" (expected {e['accepted']} / {e['merged']} / {e['rejected']}):"
        f" {'exact' if r['counts_ok'] else 'WRONG: ' + '; '.join(r['problems'])}"
    )
    print(
        f"  took {r['import_s']} s: {r['rows_per_s']} rows/s handed over,"
        f" {r['leads_notified_per_s']} leads/s through to their owner;"
        f" at most {r['most_rows_in_one_second']} rows in any one second"
    )
    heading = f"web-form leads at {r['live_rate']:g}/s"
    print(f"\n  {heading:<28}  sent  done  fail     p50     p95     p99     max others%")
    for key, label in (
        ("live_before", "no import"),
        ("live_during", "beside the import"),
        ("live_after", "after the import"),
    ):
        s = r[key]
        print(
            f"  {label:<28}{s['sent']:>6}{s['done']:>6}{s['failures']:>6}{s['p50_ms']:>8}"
            f"{s['p95_ms']:>8}{s['p99_ms']:>8}{s['max_ms'] or '-':>8}"
            f"{s['others_cpu_share'] * 100:>8.0f}"
        )
    print(f"  p99 beside the import within {P99_BUDGET_MS:.0f} ms: {r['p99_ok']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the import file")
    parser.add_argument(
        "--rate", type=float, default=5.0, help="LEADFLOW_IMPORT_RATE (rows per second)"
    )
    parser.add_argument("--live", type=int, default=300, help="web-form leads per phase")
    parser.add_argument("--live-rate", type=float, default=5.0, help="web-form leads per second")
    parser.add_argument(
        "--demo-sla",
        action="store_true",
        help="accepted for older scripts and ignored: the import always goes through the demo "
        "configuration now, and imported leads have no speed-to-lead SLA to set aside",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="leadflow-import-bench-"))
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
