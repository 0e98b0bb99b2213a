"""Bulk import on the real stack: the admin app's upload → columns → start → progress flow
over HTTP, and ``leadflow leads import`` as a real process while the worker is killed with
SIGKILL mid-import and restarted. Every accepted row becomes one lead with an owner, each
row enters once, duplicates are merged and bad rows reported by line. Imported leads are
``imported``: no speed-to-lead SLA, a quiet notice, one summary per owner and import; a
second import started meanwhile waits its turn."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import false, func, or_, select
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer

from activities.lead_import import ImportActivities
from activities.lead_start import LifecycleLimits, hand_to_lifecycle
from bots.notifier import Message, OfflineNotifier
from domain.lead import LeadSubmission, Owner
from domain.lead_import import detect_columns, read_csv, validate_rows
from domain.lead_import_run import ImportSummaryInput, row_submission_id
from domain.lifecycle import SubmissionReceived
from store import imports as import_store
from store.db import Database
from store.models import ImportRow, Lead, LeadEvent, LeadImport, Notification, utcnow
from tests.conftest import (
    API_TOKEN,
    LEAD_ID_SECRET,
    AdminUsers,
    csrf_of,
    http_login,
    lead_id_of,
    running_stack,
    terminate_open_workflows,
    unique_email,
)
from tests.processes import CLI, Processes, kill_tree, leadflow_env, poll
from worker import SANDBOX
from workflows.lead_import import LeadImportWorkflow, import_workflow_id

# A step or a batch held by the killed worker is retried after these.
ACTIVITY_TIMEOUT_S = 4
HEARTBEAT_TIMEOUT_S = 3
# The killed worker's workflow tasks move to the new one after Temporal's 10 s sticky
# timeout; the rest of the file takes a few seconds more.
RECOVERY_S = 60.0


def leads_file(
    rows: int, *, bad_every: int, duplicates: int, tag: str
) -> tuple[str, dict[str, Any]]:
    """A CSV of ``rows`` rows: every ``bad_every``-th one invalid (a bad address, a bad
    phone, a missing address in turn), and ``duplicates`` rows repeating an earlier
    person (another spelling of the address). Also what an import of it must give."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "E-mail",
            "First Name",
            "Last Name",
            "Company Name",
            "Job Title",
            "Phone",
            "Country",
            "Lead Source",
            "Interest",
        ]
    )
    emails: list[str] = []
    bad_lines: list[int] = []
    merged_lines: list[int] = []
    for index in range(rows):
        line = index + 2
        email = f"{tag}-{index}@import-{index % 7}.example.com"
        phone = f"+1 555 {index:04d}"
        if index % bad_every == bad_every - 1:
            kind = (index // bad_every) % 3
            email, phone = (
                ("not-an-address", phone)
                if kind == 0
                else (email, "call me")
                if kind == 1
                else ("", phone)
            )
            bad_lines.append(line)
        elif len(merged_lines) < duplicates and index > 0 and index % 40 == 20:
            email = f"  {emails[-1].upper()} "
            merged_lines.append(line)
        else:
            emails.append(email)
        writer.writerow(
            [
                email,
                f"First{index}",
                "Lead",
                f"Company {index % 11}",
                "VP Sales",
                phone,
                "US",
                "old-crm",
                "demo",
            ]
        )
    return out.getvalue(), {
        "rows": rows,
        "emails": emails,
        "bad_lines": bad_lines,
        "merged_lines": merged_lines,
    }


def replay(history: WorkflowHistory) -> Any:
    replayer = Replayer(
        workflows=[LeadImportWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=SANDBOX,
    )
    return replayer.replay_workflow(history)


def assert_each_lead_once(
    db: Database, import_id: str, emails: list[str], source: str | None = None
) -> None:
    """Every accepted row one lead with an owner and a quiet notice (no message of its
    own); each entered once (one submission, one ``captured``, no ``resubmitted``); every
    row accounted for; no other lead of the import's ``source``."""
    ids = {lead_id_of(e) for e in emails}
    with db.read() as session:
        of_source = Lead.data["source"].as_string() == source if source else false()
        leads = session.execute(
            select(Lead.id, Lead.owner_rep_id, Lead.submissions).where(
                or_(Lead.id.in_(ids), of_source)
            )
        ).all()
        # Out of /metrics' speed-to-lead histogram (the live form's figure).
        timed = session.scalar(
            select(func.count()).where(Lead.id.in_(ids), Lead.speed_to_lead_ms.is_not(None))
        )
        events = Counter(
            dict(
                session.execute(
                    select(LeadEvent.type, func.count())
                    .where(LeadEvent.lead_id.in_(ids))
                    .group_by(LeadEvent.type)
                ).all()
            )
        )
        captured = Counter(
            session.scalars(
                select(LeadEvent.lead_id).where(
                    LeadEvent.type == "captured", LeadEvent.lead_id.in_({lead.id for lead in leads})
                )
            )
        )
        messages = Counter(session.scalars(select(Notification.lead_id)))
        notices = Counter(
            (lead_id, data.get("quiet"), data.get("notification_id"))
            for lead_id, data in session.execute(
                select(LeadEvent.lead_id, LeadEvent.data).where(
                    LeadEvent.lead_id.in_(ids), LeadEvent.type == "owner_notified"
                )
            )
        )
        statuses = Counter(
            session.scalars(select(ImportRow.status).where(ImportRow.import_id == import_id))
        )
    assert {lead.id for lead in leads} == ids
    assert all(lead.owner_rep_id is not None for lead in leads), leads
    assert {lead.submissions for lead in leads} == {1}
    assert timed == 0
    assert set(captured) == ids and set(captured.values()) == {1}
    assert events["resubmitted"] == 0, events
    assert notices == Counter({(i, True, None): 1 for i in ids}), notices
    assert not any(messages[i] for i in ids), "an imported lead had a message of its own"
    assert statuses["pending"] == 0 and statuses["started"] == len(ids), statuses


# ------------------------------------------------------------------------- the admin app


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_upload_check_columns_start_and_watch_an_import_in_the_admin_app(
    client: Client, db: Database, task_queue: str, tmp_path: Path, admin_users: AdminUsers
) -> None:
    text, expected = leads_file(24, bad_every=10, duplicates=1, tag="web")
    async with running_stack(
        client,
        db,
        task_queue,
        tmp_path,
        import_rate=100,
        import_batch_rows=4,
        import_rows_per_run=8,
        import_heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
    ) as stack:
        http = stack.http
        assert (await http_login(http, admin_users.admin, admin_users.password)).status_code == 303
        csrf = csrf_of((await http.get("/admin/imports")).text)

        # A file that is not UTF-8 is refused, naming the byte and its line.
        latin = "E-mail,Name\nzoe@acme.example,Zoë\n".encode("latin-1")
        refused = await http.post(
            "/admin/imports",
            data={"csrf_token": csrf, "source": "fair-2026"},
            files={"file": ("old.csv", latin, "text/csv")},
        )
        assert refused.status_code == 422
        assert "byte 0xEB on line 2" in refused.text

        uploaded = await http.post(
            "/admin/imports",
            data={"csrf_token": csrf, "source": "fair-2026"},
            files={"file": ("trade-fair.csv", text.encode(), "text/csv")},
        )
        assert uploaded.status_code == 303, uploaded.text
        page = uploaded.headers["location"]
        import_id = page.rsplit("/", 1)[1]

        # The columns page shows each header with the field it was matched to.
        mapping = await http.get(page)
        assert mapping.status_code == 200 and "Check the columns" in mapping.text
        chosen = dict(
            re.findall(
                r'<select id="col-(\d+)".*?<option value="([^"]*)" selected', mapping.text, re.S
            )
        )
        assert chosen == {
            "0": "email",
            "1": "first_name",
            "2": "last_name",
            "3": "company",
            "4": "title",
            "5": "phone",
            "6": "country",
            "7": "extra.lead_source",
            "8": "extra.interest",
        }
        # "Interest" is changed to the lead's industry; "Lead Source" is left out.
        chosen.update({"7": "", "8": "industry"})
        validated = await http.post(
            f"{page}/mapping",
            data={"csrf_token": csrf, **{f"col-{k}": v for k, v in chosen.items()}},
        )
        assert validated.status_code == 303
        review = (await http.get(page)).text
        accepted = len(expected["emails"])
        counts = dict(re.findall(r'id="count-(\w+)">([\d,]+)<', review))
        assert counts == {
            "rows": "24",
            "accepted": str(accepted),
            "merged": "1",
            "rejected": "2",
        }
        assert f"Start importing {accepted} leads" in review

        report = await http.get(f"{page}/rejected.csv")
        assert report.headers["content-type"].startswith("text/csv")
        lines = list(csv.reader(io.StringIO(report.text)))
        assert [int(r[0]) for r in lines[1:]] == expected["bad_lines"]
        assert lines[1][1:3] == ["E-mail", "email"]

        for _ in range(2):  # a second click starts nothing more
            started = await http.post(f"{page}/start", data={"csrf_token": csrf})
            assert started.status_code == 303

        progress: dict[str, Any] = {}
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            progress = (await http.get(f"{page}/progress")).json()
            if progress["done"]:
                break
            await asyncio.sleep(0.2)
        assert progress["status"] == "completed", progress
        assert (progress["imported"], progress["merged"], progress["rejected"]) == (accepted, 1, 2)
        assert progress["percent"] == 100.0 and progress["remaining"] == 0
        done_page = (await http.get(page)).text
        assert 'data-status="completed"' in done_page and "/static/imports.js" in done_page

        await wait_notified(db, expected["emails"], within=40)
        assert_each_lead_once(db, import_id, expected["emails"], source="fair-2026")
        await wait_summaries(db, import_id, "trade-fair.csv", expected["emails"], within=20)
        lead = await stack.wait_for(lead_id_of(expected["emails"][0]))
        assert lead["owner"] is not None
        with db.read() as session:
            data = session.get(Lead, lead_id_of(expected["emails"][0]))
            assert data is not None
        assert data.data["source"] == "fair-2026" and data.data["industry"] == "demo"
        assert "lead_source" not in data.data.get("extra", {})

        # Continued as new every 8 rows, and every run replays on the current code.
        query = f"WorkflowId = '{import_workflow_id(import_id)}'"
        runs: list[Any] = []
        for _ in range(50):  # visibility lags the runs a little
            runs = [wf async for wf in client.list_workflows(query)]
            if len(runs) == -(-accepted // 8):
                break
            await asyncio.sleep(0.1)
        assert len(runs) == -(-accepted // 8), runs
        for run in runs:
            handle = client.get_workflow_handle(run.id, run_id=run.run_id)
            await replay(await handle.fetch_history())

        # A row handed over again (a batch run twice across a crash) is one submission.
        await resend_a_row_twice(stack, import_id, expected["emails"][1])

        # The pages are for admins.
        async with httpx.AsyncClient(base_url=stack.base_url) as other:
            viewer = await http_login(other, admin_users.viewer, admin_users.password)
            assert viewer.status_code == 303
            assert (await other.get("/admin/imports")).status_code == 403
            assert (await other.get(f"{page}/progress")).status_code == 403


async def wait_notified(db: Database, emails: list[str], within: float) -> None:
    ids = [lead_id_of(e) for e in emails]
    deadline = time.monotonic() + within
    count: int | None = 0
    while time.monotonic() < deadline:
        with db.read() as session:
            count = session.scalar(
                select(func.count())
                .select_from(Lead)
                .where(Lead.id.in_(ids), Lead.notified_at.is_not(None))
            )
        if count == len(ids):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{count} of {len(ids)} imported leads notified in {within} s")


SUMMARY = re.compile(r"^(\d+) leads? from the import of (.+) (?:was|were) assigned to you: ")


def summaries(db: Database, import_id: str) -> dict[int, str]:
    """The import's summary messages by rep id (their inbox rows)."""
    with db.read() as session:
        found = session.execute(
            select(Notification.rep_id, Notification.text).where(
                Notification.kind == "import_summary",
                Notification.idempotency_key.like(f"import-{import_id}:summary:%"),
            )
        ).all()
    by_rep: dict[int, str] = {}
    for rep_id, text in found:
        assert rep_id is not None and rep_id not in by_rep, found
        by_rep[rep_id] = text
    return by_rep


def owners(db: Database, emails: list[str]) -> Counter[int]:
    ids = [lead_id_of(e) for e in emails]
    with db.read() as session:
        return Counter(session.scalars(select(Lead.owner_rep_id).where(Lead.id.in_(ids))))


async def wait_summaries(
    db: Database, import_id: str, filename: str, emails: list[str], within: float
) -> dict[int, str]:
    """One summary per rep who owns the import's leads, each with that rep's count."""
    expected = owners(db, emails)
    deadline = time.monotonic() + within
    found = summaries(db, import_id)
    while len(found) < len(expected) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = summaries(db, import_id)
    counts: dict[int, int] = {}
    for rep_id, text in found.items():
        match = SUMMARY.match(text)
        assert match is not None and match.group(2) == filename, text
        counts[rep_id] = int(match.group(1))
    assert counts == dict(expected), (counts, expected)
    return found


async def resend_a_row_twice(stack: Any, import_id: str, email: str) -> None:
    """Hand an imported row to its lead again with the row's id, then a genuine second
    submission: once that is counted, the repeat was seen and dropped."""
    lead_id = lead_id_of(email)
    with stack.db.read() as session:
        line = session.scalar(
            select(ImportRow.line).where(
                ImportRow.import_id == import_id, ImportRow.lead_id == lead_id
            )
        )
    limits = LifecycleLimits.from_settings(stack.settings)
    for submission_id in (row_submission_id(import_id, line), "a-later-form-post"):
        await hand_to_lifecycle(
            stack.client,
            limits.input_for(lead_id),
            SubmissionReceived(
                submission=LeadSubmission(email=email),
                received_at=utcnow(),
                submission_id=submission_id,
            ),
            task_queue=stack.task_queue,
        )
    handle = stack.client.get_workflow_handle(f"lead-{lead_id}")
    state: dict[str, Any] = {}
    for _ in range(200):
        state = await handle.query("state")
        if state["submissions"] >= 2:
            break
        await asyncio.sleep(0.05)
    assert state["submissions"] == 2, state


# ------------------------------------------------------------------------- origin, queue


class RecordingNotifier(OfflineNotifier):
    """The inbox, plus every call it was asked to make: (recipient, kind, lead)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.calls: list[tuple[str, str, str | None]] = []

    def notify(self, owner: Owner, message: Message, idempotency_key: str) -> int:
        self.calls.append((owner.email, message.kind, message.lead_id))
        return super().notify(owner, message, idempotency_key)


def stored_import(db: Database, filename: str, emails: list[str], source: str) -> str:
    """An import validated and stored as the command line stores it, ready to start."""
    text = "Email,First Name\n" + "".join(f"{e},Ann\n" for e in emails)
    csv_file = read_csv(text.encode(), 100)
    columns = detect_columns(csv_file.headers)
    with db.session() as session:
        row = import_store.create_import(
            session,
            filename=filename,
            source=source,
            created_by="test",
            headers=csv_file.headers,
            columns=columns,
            content=text,
        )
        validation = validate_rows(csv_file, columns, source)
        import_store.save_validation(session, row, columns, validation, LEAD_ID_SECRET.encode())
        return row.id


async def wait_done(http: httpx.AsyncClient, import_id: str, within: float) -> dict[str, Any]:
    progress: dict[str, Any] = {}
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        progress = (await http.get(f"/admin/imports/{import_id}/progress")).json()
        if progress["done"]:
            return progress
        await asyncio.sleep(0.2)
    raise AssertionError(f"import {import_id} not done in {within} s: {progress}")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_imported_leads_have_no_sla_one_summary_per_owner_and_imports_take_turns(
    client: Client, db: Database, task_queue: str, tmp_path: Path, admin_users: AdminUsers
) -> None:
    first_emails = [f"first-{i}@import-{i}.example.com" for i in range(8)]
    second_emails = [f"second-{i}@import-{i}.example.com" for i in range(3)]
    first = stored_import(db, "first.csv", first_emails, "old-crm")
    second = stored_import(db, "second.csv", second_emails, "older-crm")
    notifier = RecordingNotifier(db)
    async with running_stack(
        client, db, task_queue, tmp_path, notifier=notifier, import_rate=8, import_batch_rows=4
    ) as stack:
        http = stack.http
        assert (await http_login(http, admin_users.admin, admin_users.password)).status_code == 303
        csrf = csrf_of((await http.get("/admin/imports")).text)
        web_id = (await stack.submit(email=unique_email("web"), first_name="Wendy")).json()[
            "lead_id"
        ]

        # The second import, started while the first runs, waits its turn.
        started = await http.post(
            f"/admin/imports/{first}/start", data={"csrf_token": csrf}, follow_redirects=True
        )
        assert "Import started: 8 leads" in started.text
        queued = await http.post(
            f"/admin/imports/{second}/start", data={"csrf_token": csrf}, follow_redirects=True
        )
        assert f"Import queued behind import {first}" in queued.text
        assert f'id="import-queued-behind" href="/admin/imports/{first}"' in queued.text
        listing = (await http.get("/admin/imports")).text
        assert f'queued behind import <a href="/admin/imports/{first}">{first}</a>' in listing
        waiting = (await http.get(f"/admin/imports/{second}/progress")).json()
        assert (waiting["status"], waiting["queued_behind"]) == ("queued", first)

        assert (await wait_done(http, first, 30))["status"] == "completed"
        assert (await wait_done(http, second, 30))["status"] == "completed"
        with db.read() as session:
            one, two = session.get(LeadImport, first), session.get(LeadImport, second)
            assert one is not None and two is not None
            assert one.finished_at is not None and two.started_at is not None
            assert two.started_at >= one.finished_at, "the imports ran side by side"
            assert (one.imported, two.imported) == (8, 3)

        await wait_notified(db, first_emails + second_emails, within=30)
        assert_each_lead_once(db, first, first_emails, source="old-crm")
        assert_each_lead_once(db, second, second_emails, source="older-crm")
        sent = {
            first: await wait_summaries(db, first, "first.csv", first_emails, within=20),
            second: await wait_summaries(db, second, "second.csv", second_emails, within=20),
        }
        # The notifier was asked for no per-lead message of an imported lead: only the
        # summaries, one per owner and import, and the web-form lead's card.
        imported = {lead_id_of(e) for e in first_emails + second_emails}
        kinds = Counter(kind for _, kind, lead in notifier.calls if lead in imported)
        assert kinds == Counter(), notifier.calls
        summaries_asked = [c for c in notifier.calls if c[1] == "import_summary"]
        assert len(summaries_asked) == len(sent[first]) + len(sent[second]), notifier.calls
        web = await stack.wait_for(web_id)
        assert [k for _, k, lead in notifier.calls if lead == web_id] == ["new_lead"]

        # No speed-to-lead clock on an imported lead; the web-form lead keeps its own.
        imported_lead = await stack.wait_for(lead_id_of(first_emails[0]))
        assert imported_lead["origin"] == "imported" and web["origin"] == "inbound"
        assert {t["name"] for t in imported_lead["timers"]} == {"no_meeting"}
        assert {"sla_remind", "sla_reassign", "sla_escalate"} <= {t["name"] for t in web["timers"]}
        with db.read() as session:
            due = dict(session.execute(select(Lead.id, Lead.sla_due_at)).all())
        assert all(due[i] is None for i in imported) and due[web_id] is not None

        # A summary asked for again (a retried activity) sends nothing more.
        acts = ImportActivities(
            db, LifecycleLimits.from_settings(stack.settings), notifier, base_url="http://x"
        )
        again = ActivityEnvironment().run(
            acts.summarize, ImportSummaryInput(import_id=first, final=True)
        )
        assert again.sent and again.leads == 8
        assert summaries(db, first) == sent[first]

        # Both imports' runs replay on the current code.
        for import_id in (first, second):
            handle = client.get_workflow_handle(import_workflow_id(import_id))
            await replay(await handle.fetch_history())

        # An import ahead whose workflow is gone (here: never started) does not hold the
        # line: the one behind it closes it as failed, saying why, and runs.
        lost = stored_import(db, "lost.csv", ["lost@import.example.com"], "old-crm")
        with db.session() as session:
            assert import_store.claim_turn(session, lost).go
        late = stored_import(db, "late.csv", ["late@import.example.com"], "old-crm")
        behind = await http.post(
            f"/admin/imports/{late}/start", data={"csrf_token": csrf}, follow_redirects=True
        )
        assert f"Import queued behind import {lost}" in behind.text
        assert (await wait_done(http, late, 30))["status"] == "completed"
        gone = (await http.get(f"/admin/imports/{lost}/progress")).json()
        assert (gone["status"], gone["error"]) == (
            "failed",
            "its workflow ended (not found) before the import finished",
        )


# ------------------------------------------------------------------------- the command line


@pytest.fixture
async def session_queue(client: Client, task_queue: str) -> AsyncIterator[str]:
    yield task_queue
    await terminate_open_workflows(client, task_queue)


# Enough rows that the worker dies with some handed over, some in flight and most to go.
CLI_ROWS = 150


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_import_goes_on_after_the_worker_is_killed_and_imports_each_row_once(
    procs: Processes, db: Database, temporal_target: str, session_queue: str, tmp_path: Path
) -> None:
    text, expected = leads_file(CLI_ROWS, bad_every=33, duplicates=3, tag="cli")
    bad, merged = len(expected["bad_lines"]), len(expected["merged_lines"])
    assert (bad, merged) == (4, 3)
    path = tmp_path / "legacy-leads.csv"
    path.write_text(text)
    env = leadflow_env(
        temporal_address=temporal_target,
        temporal_task_queue=session_queue,
        database_url=db.url,
        data_dir=tmp_path,
        api_token=API_TOKEN,
        lead_id_secret=LEAD_ID_SECRET,
        activity_timeout_s=ACTIVITY_TIMEOUT_S,
        import_rate=40,
        import_batch_rows=25,
        import_rows_per_run=100,
        import_heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
    )
    worker = procs.cli("worker", "worker", env)
    importer = procs.spawn(
        "import", [*CLI, "leads", "import", str(path), "--source", "legacy-crm"], env
    )

    def imported() -> int:
        with db.read() as session:
            return int(session.scalar(select(func.coalesce(func.sum(LeadImport.imported), 0))) or 0)

    poll(lambda: imported() >= 60, 40, "the import did not start", watch=[worker, importer])
    kill_tree(worker)
    at_kill = imported()
    accepted = len(expected["emails"])
    assert at_kill < accepted, "every row was in before the kill; nothing was mid-import"

    restarted = procs.cli("worker", "worker", env)
    assert importer.wait(RECOVERY_S) == 0, procs.tails()
    log = importer.log.read_text()
    assert f"{accepted} leads to import" in log, log
    assert (
        f"imported {accepted} leads from {CLI_ROWS} rows ({merged} duplicates merged, "
        f"{bad} rejected)"
    ) in log, log
    assert 'line 34, column "E-mail" (email): value is not a valid email address' in log, log

    with db.read() as session:
        [row] = session.scalars(select(LeadImport)).all()
    assert (row.status, row.rows, row.accepted, row.merged, row.rejected, row.imported) == (
        "completed",
        CLI_ROWS,
        accepted,
        merged,
        bad,
        accepted,
    )
    poll(
        lambda: all_notified(db, expected["emails"]),
        RECOVERY_S,
        "not every imported lead was notified",
        watch=[restarted],
    )
    reps = len(owners(db, expected["emails"]))
    poll(
        lambda: len(summaries(db, row.id)) == reps,
        RECOVERY_S,
        "not every owner had the import's summary",
        watch=[restarted],
    )
    time.sleep(0.5)  # let a duplicate that a broken retry would make land before counting
    assert_each_lead_once(db, row.id, expected["emails"], source="legacy-crm")
    asyncio.run(wait_summaries(db, row.id, "legacy-leads.csv", expected["emails"], within=0))


def all_notified(db: Database, emails: list[str]) -> bool:
    ids = [lead_id_of(e) for e in emails]
    with db.read() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Lead)
            .where(Lead.id.in_(ids), Lead.notified_at.is_not(None))
        )
    return count == len(ids)
