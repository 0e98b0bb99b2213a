"""``leadflow dev`` as a supervisor, with real processes: a child killed with SIGKILL is
restarted and the stack goes on routing leads; a child that keeps crashing makes it give up
with exit code 1; the data folder is private; ``leadflow web`` warns when it exposes the
login-less development pages to the network."""

from __future__ import annotations

import contextlib
import re
import signal
import stat
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from store import reps as rep_store
from store.db import Database
from store.migrate import upgrade
from tests.conftest import API_TOKEN
from tests.processes import (
    STARTUP_S,
    DevStack,
    Proc,
    Processes,
    free_ports,
    leadflow_env,
    poll,
    port_free_now,
    tail,
    wait_gone,
    wait_http_ok,
)

pytestmark = pytest.mark.slow

# Short step timeouts, as in test_processes.py: a step held by a killed worker is retried
# after it.
ACTIVITY_TIMEOUT_S = 4
# A restarted Temporal takes a few seconds to serve again, and the worker's pollers and the
# web app's client reconnect to it with backoff.
ROUTED_S = 45.0
WARNING = "reachable from the network"


# ------------------------------------------------------------------------- helpers


def http_login_sync(http: httpx.Client, email: str, password: str) -> httpx.Response:
    """Sign ``http`` in to the admin app (its cookie jar keeps the session)."""
    form = http.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    return http.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": token.group(1)},
    )


def dev_stack(procs: Processes, tmp_path: Path, **settings: object) -> DevStack:
    return DevStack.create(
        procs, tmp_path / "data", activity_timeout_s=ACTIVITY_TIMEOUT_S, **settings
    )


def child_other_than(stack: DevStack, dev: Proc, marker: str, old_pid: int) -> psutil.Process:
    """The ``marker`` child of ``dev`` once it is a new process (restarted)."""

    def new_child() -> psutil.Process | None:
        child = stack.child(dev, marker)
        return child if child.pid != old_pid else None

    found: psutil.Process = poll(
        new_child, STARTUP_S, f"{marker} was not restarted", interval=0.1, watch=[dev]
    )
    return found


def kill_child(stack: DevStack, dev: Proc, marker: str) -> int:
    """SIGKILL the ``marker`` child of ``dev`` (with anything under it); its pid."""
    child = stack.child(dev, marker)
    tree = [child, *child.children(recursive=True)]
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    assert not wait_gone(tree, 5), f"{marker} survived SIGKILL"
    return child.pid


def post_lead(http: httpx.Client, within: float, watch: list[Proc]) -> str:
    """POST a new lead until it is accepted (the intake answers 503 while Temporal is
    down); its lead id."""
    email = f"sup-{uuid.uuid4().hex[:10]}@sup-{uuid.uuid4().hex[:4]}.example.com"

    def accepted() -> str | None:
        response = http.post("/leads", json={"email": email, "company": "Acme", "title": "VP"})
        return str(response.json()["lead_id"]) if response.status_code == 202 else None

    found: str = poll(accepted, within, "POST /leads was not accepted", interval=0.5, watch=watch)
    return found


def wait_routed(
    http: httpx.Client, token: str, lead_id: str, within: float, watch: list[Proc]
) -> dict[str, Any]:
    """The lead's status once it has an owner who has been notified."""

    def routed() -> dict[str, Any] | None:
        response = http.get(f"/leads/{lead_id}", headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        types = {e["type"] for e in body["events"]}
        done = body["stage"] == "assigned" and body["owner"] and "owner_notified" in types
        return body if done else None

    found: dict[str, Any] = poll(
        routed, within, f"lead {lead_id} was not routed", interval=0.2, watch=watch
    )
    return found


def stop_dev(stack: DevStack, dev: Proc) -> None:
    """SIGTERM still stops the whole (restarted) stack in order, with exit code 0."""
    children = dev.children()
    dev.popen.send_signal(signal.SIGTERM)
    assert dev.wait(30) == 0, dev.tail()
    assert not wait_gone(children, 5), dev.tail()
    assert "Leadflow stopped." in tail(dev.log)
    assert port_free_now(stack.web_port) and port_free_now(stack.temporal_port)


# ------------------------------------------------------------------------- restarts


def test_worker_killed_under_dev_is_restarted_and_leads_are_routed(
    procs: Processes, tmp_path: Path
) -> None:
    stack = dev_stack(procs, tmp_path)
    dev = stack.start()
    old = kill_child(stack, dev, "worker")
    child_other_than(stack, dev, "worker", old)

    with httpx.Client(base_url=stack.base, timeout=30) as http:
        lead_id = post_lead(http, 10, watch=[dev])
        body = wait_routed(http, stack.token(), lead_id, ROUTED_S, watch=[dev])
    assert body["owner"]["email"], body
    assert dev.alive()
    log = tail(dev.log, 400)
    assert "worker exited with signal SIGKILL; restarting it" in log, log
    assert "worker restarted" in log, log
    stop_dev(stack, dev)


def test_temporal_killed_under_dev_is_restarted_and_leads_are_routed(
    procs: Processes, tmp_path: Path
) -> None:
    stack = dev_stack(procs, tmp_path, api_token=API_TOKEN)
    dev = stack.start()
    old = kill_child(stack, dev, "start-dev")
    child_other_than(stack, dev, "start-dev", old)

    with httpx.Client(base_url=stack.base, timeout=30) as http:
        lead_id = post_lead(http, ROUTED_S, watch=[dev])
        wait_routed(http, API_TOKEN, lead_id, ROUTED_S, watch=[dev])
    assert dev.alive()
    log = tail(dev.log, 400)
    assert "temporal exited with signal SIGKILL; restarting it" in log, log
    # A token set in the environment is named, never printed.
    assert "API token    from LEADFLOW_API_TOKEN" in log, log
    assert API_TOKEN not in log
    stop_dev(stack, dev)


def test_dev_gives_up_on_a_child_that_keeps_crashing(procs: Processes, tmp_path: Path) -> None:
    stack = dev_stack(procs, tmp_path, supervisor_max_restarts=2, supervisor_backoff_s=0.1)
    dev = stack.start()
    children = dev.children()
    for _ in range(2):
        old = kill_child(stack, dev, "worker")
        children.append(child_other_than(stack, dev, "worker", old))
    kill_child(stack, dev, "worker")  # the third crash within the window: one too many

    assert dev.wait(30) == 1, dev.tail()
    log = tail(dev.log, 400)
    assert "worker kept crashing (3 exits" in log, log
    assert "See its log:" in log, log
    assert not wait_gone(children, 5), f"children left running\n{log}"
    assert port_free_now(stack.web_port) and port_free_now(stack.temporal_port)


# ------------------------------------------------------------------------- privacy


def test_data_folder_is_private_and_banner_hides_the_secrets(
    procs: Processes, tmp_path: Path
) -> None:
    stack = dev_stack(procs, tmp_path)
    stack.data_dir.mkdir(mode=0o755)
    stack.data_dir.chmod(0o755)  # an existing folder, readable by all, is narrowed
    dev = stack.start()
    token = stack.token()
    token_file = stack.data_dir / "api_token"
    poll(
        lambda: f"API token    in {token_file}" in tail(dev.log),
        10,
        "the banner does not say where the token is",
        watch=[dev],
    )
    # On an empty users table dev creates an admin, and says where its password is.
    password_file = stack.data_dir / "admin_password"
    login_line = (
        f"admin login  {stack.base}/admin/login  "
        f"(admin@leadflow.local, password in {password_file})"
    )
    assert login_line in tail(dev.log), tail(dev.log)
    password = password_file.read_text().strip()
    assert len(password) >= 20

    assert stat.S_IMODE(stack.data_dir.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in stack.data_dir.iterdir()}
    for name in ("leadflow.db", "temporal.db", "api_token", "admin_password", "temporal.log"):
        assert name in files, files
    assert all(mode == 0o600 for mode in files.values()), {n: oct(m) for n, m in files.items()}
    log = tail(dev.log, 400)
    assert token not in log, log
    assert password not in log, log
    assert WARNING not in log, "a loopback web app warned about the network"

    with httpx.Client(base_url=stack.base, timeout=30) as http:
        assert http_login_sync(http, "admin@leadflow.local", password).status_code == 303
        dashboard = http.get("/admin")
        assert dashboard.status_code == 200 and "Development admin" in dashboard.text


# ------------------------------------------------------------------------- exposed web


def test_web_warns_when_development_pages_face_the_network(
    procs: Processes, sqlite_url: str, temporal_target: str, tmp_path: Path
) -> None:
    database = Database(sqlite_url)
    upgrade(database)
    with database.session() as session:
        rep_store.seed_demo(session)
    database.dispose()

    webs: dict[str, Proc] = {}
    ports = dict(zip(("0.0.0.0", "127.0.0.1"), free_ports(2), strict=True))
    for host, port in ports.items():
        env = leadflow_env(
            temporal_address=temporal_target,
            database_url=sqlite_url,
            data_dir=tmp_path,
            web_host=host,
            web_port=port,
            api_token=API_TOKEN,
        )
        webs[host] = procs.cli(f"web-{host}", "web", env)
    for host, web in webs.items():
        wait_http_ok(f"http://127.0.0.1:{ports[host]}/healthz", STARTUP_S, watch=[web])

    exposed = tail(webs["0.0.0.0"].log)
    assert "WARNING" in exposed and WARNING in exposed, exposed
    for needle in ("/docs", "Secure cookies", "LEADFLOW_ENVIRONMENT=production", "127.0.0.1"):
        assert needle in exposed, exposed
    loopback = tail(webs["127.0.0.1"].log)
    assert WARNING not in loopback, loopback
