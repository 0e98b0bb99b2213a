"""What the lifecycle benches (bench/open_lifecycles.py, bench/event_latency.py) share:
distinct leads sent open loop through ``POST /leads`` until they are notified, the app
database read-only, the memory of a process, and the machine's load."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.measure import db_time
from bench.stack import Stack, children_of, cmdline, log, machine_cpu
from domain.lead import lead_key

try:  # a dev dependency (pyproject.toml); /proc is the fallback
    import psutil
except ImportError:  # pragma: no cover
    psutil = None  # type: ignore[assignment]

POLL_S = 0.5
# Idle keep-alive connections are dropped by the client after this long: uvicorn closes
# them after 5 s, httpx's default, and a request sent on a connection the server is closing
# at that moment fails with a ReadError.
KEEPALIVE_S = 2.0


def lead_payload(run: str, index: int) -> dict[str, Any]:
    """A distinct lead with the speed-to-lead bench's mix of sizes, titles and countries
    (so the demo configuration routes them to its three pools alike)."""
    sizes = (5, 40, 300, 2500, 12000)
    titles = ("VP Sales", "Head of Marketing", "Engineer", "CEO", "Sales Ops Manager")
    return {
        "email": f"bench-{run}-{index}@acme-{index % 37}.com",
        "first_name": f"Bench{index}",
        "last_name": "Lead",
        "company": f"Acme {index % 37}",
        "title": titles[index % len(titles)],
        "company_size": sizes[index % len(sizes)],
        "country": ("US", "DE", "FR", "GB")[index % 4],
        "source": "bench",
        "message": "We would like a demo of your product next week.",
    }


def read_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def notified_count(path: Path) -> int:
    conn = read_db(path)
    try:
        return int(
            conn.execute("SELECT count(*) FROM leads WHERE notified_at IS NOT NULL").fetchone()[0]
        )
    finally:
        conn.close()


def notified_ids(path: Path) -> set[str]:
    conn = read_db(path)
    try:
        return {
            row[0] for row in conn.execute("SELECT id FROM leads WHERE notified_at IS NOT NULL")
        }
    finally:
        conn.close()


# ------------------------------------------------------------------------------ memory


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 when it is gone)."""
    if psutil is not None:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return 0
    return _status_kb(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """The process's high-water mark of RSS (VmHWM) since it started."""
    return _status_kb(pid, "VmHWM") * 1024


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss_bytes(pid: int) -> int:
    """RSS of a process and its descendants (the Temporal CLI is one process today)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss_bytes(current)
        todo.extend(children_of(current))
    return total


def file_sizes(folder: Path, stem: str) -> dict[str, int]:
    """Sizes of a SQLite database and its -wal / -shm files."""
    out = {}
    for suffix in ("", "-wal", "-shm"):
        path = folder / f"{stem}{suffix}"
        with contextlib.suppress(OSError):
            out[path.name] = path.stat().st_size
    return out


def worker_pid(stack: Stack) -> int | None:
    """The worker process of ``leadflow dev`` as it is now (its supervisor restarts a
    worker that exited, under a new pid)."""
    if stack.proc is None:
        return None
    for pid in children_of(stack.proc.pid):
        if " ".join(cmdline(pid)).endswith("cli worker"):
            return pid
    return None


# ------------------------------------------------------------------------------ CPU


@dataclass
class CpuWindow:
    """CPU seconds of our processes and of the whole machine over a stretch of time."""

    stack: Stack
    wall0: float = 0.0
    ours0: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.wall0 = time.monotonic()
        self.ours0 = self.stack.cpu()

    def shares(self) -> dict[str, float]:
        """Percent of the machine's capacity: each of our processes, ours in all, other
        tenants, steal; and the seconds since the window opened (``wall_s``)."""
        now = self.stack.cpu()
        wall = time.monotonic() - self.wall0
        capacity = max(wall * (os.cpu_count() or 1), 1e-9)
        delta = {k: now.get(k, 0.0) - v for k, v in self.ours0.items()}
        ours = {k: v for k, v in delta.items() if k not in ("machine", "steal", "dev")}
        total_ours = sum(ours.values()) + delta.get("dev", 0.0)
        out = {k: round(v / capacity * 100, 1) for k, v in ours.items()}
        out["ours"] = round(total_ours / capacity * 100, 1)
        out["others"] = round(max(0.0, delta["machine"] - total_ours) / capacity * 100, 1)
        out["steal"] = round(delta["steal"] / capacity * 100, 1)
        out["wall_s"] = round(wall, 3)
        return out


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine_busy_share(seconds: float = 1.0) -> float:
    """Share of the machine's CPU busy over ``seconds`` (anyone's), blocking."""
    busy0, _ = machine_cpu()
    time.sleep(seconds)
    busy1, _ = machine_cpu()
    return (busy1 - busy0) / (seconds * (os.cpu_count() or 1))


# ------------------------------------------------------------------------------ intake


@dataclass
class Intake:
    """What sending the leads gave: lead ids accepted, answers, timings."""

    sent: int = 0
    accepted: dict[str, float] = field(default_factory=dict)  # lead id -> epoch sent
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    first_sent: float = 0.0  # epoch
    last_sent: float = 0.0
    paused_s: float = 0.0  # open loop held back because the backlog was over the cap
    max_backlog: int = 0
    max_lag_s: float = 0.0
    notified_at_end: int = 0
    done_at: float | None = None  # epoch: the last of them notified
    missing: set[str] = field(default_factory=set)

    @property
    def send_rate(self) -> float:
        span = self.last_sent - self.first_sent
        return (self.sent - 1) / span if span > 0 and self.sent > 1 else float("nan")

    @property
    def sustained_rate(self) -> float:
        """Leads notified per second, from the first send to the last notification."""
        if self.done_at is None or self.done_at <= self.first_sent:
            return float("nan")
        return (len(self.accepted) - len(self.missing)) / (self.done_at - self.first_sent)


async def send_leads(
    http: httpx.AsyncClient,
    stack: Stack,
    run: str,
    count: int,
    rate: float,
    *,
    first_index: int = 0,
    max_backlog: int = 0,
    already_notified: int = 0,
    drain_s: float = 300.0,
    progress_every: int = 0,
    on_sent: Callable[[int], None] | None = None,
) -> Intake:
    """Send ``count`` distinct leads, lead i at t0 + i / rate (open loop), then wait for
    every accepted one to be notified. With ``max_backlog``, sending pauses while more than
    that many sent leads wait to be notified (the time paused is reported), so an intake
    faster than the worker cannot grow Temporal's queue without bound."""
    intake = Intake()
    secret = stack.lead_id_secret
    backlog_seen = {"notified": already_notified}

    async def watch() -> None:
        while True:
            backlog_seen["notified"] = await asyncio.to_thread(notified_count, stack.app_db)
            await asyncio.sleep(POLL_S)

    async def one(index: int) -> None:
        payload = lead_payload(run, index)
        lead_id = lead_key(payload["email"], secret)
        sent = time.time()
        try:
            response = await http.post("/leads", json=payload)
        except httpx.HTTPError as err:
            intake.statuses[-1] += 1
            intake.errors.append(f"{lead_id}: {type(err).__name__}: {err}")
            return
        intake.statuses[response.status_code] += 1
        if response.status_code == 202:
            intake.accepted[lead_id] = sent
        else:
            intake.errors.append(f"{lead_id}: {response.status_code} {response.text[:200]}")

    watcher = asyncio.create_task(watch())
    tasks: list[asyncio.Task[None]] = []
    try:
        t0 = time.monotonic() + 0.05
        shift = 0.0  # schedule shift from pauses
        intake.first_sent = time.time() + 0.05
        for i in range(count):
            paused = time.monotonic()
            while max_backlog:
                backlog = intake.sent - (backlog_seen["notified"] - already_notified)
                intake.max_backlog = max(intake.max_backlog, backlog)
                if backlog <= max_backlog:
                    break
                await asyncio.sleep(POLL_S / 2)
            held = time.monotonic() - paused
            if held > 0.01:  # the schedule moves on by the time held back
                intake.paused_s += held
                shift += held
            due = t0 + shift + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            intake.max_lag_s = max(intake.max_lag_s, time.monotonic() - due)
            intake.last_sent = time.time()
            intake.sent += 1
            if on_sent is not None:
                on_sent(intake.sent)
            tasks.append(asyncio.create_task(one(first_index + i)))
            if progress_every and (i + 1) % progress_every == 0:
                notified = backlog_seen["notified"] - already_notified
                log(f"sent {i + 1}/{count} leads, {notified} notified")
        await asyncio.gather(*tasks)
        deadline = time.monotonic() + drain_s
        missing = set(intake.accepted)
        last_report = time.monotonic()
        while missing and time.monotonic() < deadline:
            missing -= await asyncio.to_thread(notified_ids, stack.app_db)
            if missing:
                if time.monotonic() - last_report > 15:
                    log(f"waiting for {len(missing)} leads to be notified")
                    last_report = time.monotonic()
                await asyncio.sleep(POLL_S)
        intake.missing = missing
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    conn = read_db(stack.app_db)
    try:
        rows = conn.execute(
            "SELECT max(notified_at) FROM leads WHERE notified_at IS NOT NULL"
        ).fetchone()
        intake.notified_at_end = notified_count(stack.app_db)
    finally:
        conn.close()
    if rows and rows[0]:
        intake.done_at = db_time(rows[0])
    return intake


def log_problems(stack: Stack) -> dict[str, int]:
    """Warnings and errors in the stack's log, by a short form of their message (Temporal's
    SDK core logs as text with `` WARN ``/`` ERROR ``, Leadflow as JSON lines)."""
    found: Counter[str] = Counter()
    try:
        lines = stack.log_file.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("level") in ("warning", "error", "critical"):
                    found[f"{entry['level']}: {str(entry.get('msg', ''))[:60]}"] += 1
            continue
        for level in ("WARN", "ERROR"):
            if f" {level}" in line[:80]:
                text = re.sub(r"\x1b\[[0-9;]*m", "", line).split(None, 2)[-1]
                message = re.sub(r"[0-9a-f-]{36}(:\d+)*", "<run>", text)
                found[f"{level.lower()}: {message[:100]}"] += 1
                break
    return dict(found.most_common(8))
