"""What makes an imported lead different, and the import's turns, without the stack: no
speed-to-lead SLA at any assignment, ``--map`` corrections to the detected columns, the
owners' summary message, and imports queued one behind the other in the database."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.notify import import_summary_message
from cli_import import run_leads
from domain.config import Assign, PoolConfig, RoutingConfig, SlaConfig
from domain.lead_import import MappingError, detect_columns, read_csv, validate_rows
from domain.lead_import_map import apply_map, parse_map
from domain.lifecycle import Origin, TimerName
from domain.lifecycle_plan import SLA_TIMERS, assignment_timers
from store import imports as import_store
from store.db import Database
from store.models import Lead, utcnow
from tests.conftest import make_settings

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONFIG = RoutingConfig(
    pools=[PoolConfig(name="P", sla=SlaConfig(max_reassignments=2))], fallback=Assign(pool="P")
)


def timer_names(origin: Origin, reassignments: int = 0) -> set[TimerName]:
    timers = assignment_timers(
        CONFIG,
        1,
        pool="P",
        rep_email="avery.park@example.com",
        start=START,
        origin=origin,
        reassignments=reassignments,
    )
    return {t.name for t in timers}


# ------------------------------------------------------------------------- no SLA


def test_an_imported_lead_gets_no_sla_timer_at_its_first_or_any_later_assignment() -> None:
    assert timer_names(Origin.inbound) == {TimerName.no_meeting, *SLA_TIMERS}
    for reassignments in (0, 1, 2):
        assert timer_names(Origin.imported, reassignments) == {TimerName.no_meeting}
        assert timer_names(Origin.outbound, reassignments) == {TimerName.no_meeting}
    assert Origin.imported.quiet_notice and not Origin.inbound.quiet_notice
    assert not Origin.outbound.quiet_notice


# ------------------------------------------------------------------------- --map

HEADERS = ["E-mail", "Work Email", "Full Notes", "Lead Source", "Region"]


def mapped(*values: str) -> dict[str, tuple[str, str]]:
    columns = apply_map(HEADERS, detect_columns(HEADERS), parse_map(values))
    return {c.header: (c.target, c.note) for c in columns}


def test_map_overrides_the_detected_columns_and_the_displaced_one_is_kept_free_form() -> None:
    found = mapped("Work Email=email,Full Notes=message", "Region=-")
    assert found == {
        "E-mail": ("extra.e_mail", "email is taken by another column (--map)"),
        "Work Email": ("email", "set by --map"),
        "Full Notes": ("message", "set by --map"),
        "Lead Source": (
            "extra.lead_source",
            "the lead's source is set by the import; kept as a free-form field",
        ),
        "Region": ("", "set by --map"),
    }
    # Headers match as they are detected: case, spaces and punctuation aside.
    assert mapped("full notes=ignore")["Full Notes"] == ("", "set by --map")
    assert mapped("lead source=extra.old_source")["Lead Source"][0] == "extra.old_source"
    # The mapped file validates with the new columns.
    text = "E-mail,Work Email,Full Notes,Lead Source,Region\nold@x.example,ann@acme.example,hi,,\n"
    csv_file = read_csv(text.encode(), 10)
    columns = apply_map(
        csv_file.headers, detect_columns(csv_file.headers), [("Work Email", "email")]
    )
    [row] = validate_rows(csv_file, columns).accepted
    assert row.submission.email == "ann@acme.example"
    assert row.submission.extra["e_mail"] == "old@x.example"


@pytest.mark.parametrize(
    ("values", "problems"),
    [
        (
            ["Phone Number=phone"],
            [
                "'Phone Number' is not a column of the file (its columns: 'E-mail', "
                "'Work Email', 'Full Notes', 'Lead Source', 'Region')"
            ],
        ),
        (
            ["Full Notes=notes"],
            [
                "'Full Notes': 'notes' is not a field of a lead; use one of email, "
                "first_name, last_name, company, title, phone, country, state, postal_code, "
                "website, company_size, industry, utm_source, utm_medium, utm_campaign, "
                "utm_term, utm_content, message, extra.NAME, or - to leave the column out"
            ],
        ),
        (
            ["Lead Source=source"],
            [
                "'Lead Source': the leads' source is set by --source, not by a column (map it "
                "to extra.NAME to keep its values)"
            ],
        ),
        (["Region=email,Full Notes=email"], None),
        (["E-mail=-"], ["no column is imported as email: choose the column with the addresses"]),
        (["Region"], ["'Region' is not Header=field"]),
    ],
    ids=["unknown-header", "unknown-field", "source", "two-emails", "no-email", "no-field"],
)
def test_a_map_that_cannot_be_used_is_refused_naming_the_header_or_field(
    values: list[str], problems: list[str] | None
) -> None:
    with pytest.raises(MappingError) as refused:
        apply_map(HEADERS, detect_columns(HEADERS), parse_map(values))
    if problems is not None:
        assert refused.value.problems == problems
    else:
        assert refused.value.problems == [
            "'Full Notes' and 'Region' are both imported as email; choose one of them"
        ]


# ------------------------------------------------------------------------- the summary


def test_the_summary_says_how_many_leads_from_which_file_and_links_to_them() -> None:
    message = import_summary_message(
        12, "old <crm>.csv", base_url="https://lf.example", rep_id=3, source="old crm"
    )
    url = "https://lf.example/admin/leads?owner=3&source=old+crm"
    assert message.kind == "import_summary" and message.lead_id is None
    assert message.text == f"12 leads from the import of old <crm>.csv were assigned to you: {url}"
    assert "old &lt;crm&gt;.csv" in message.blocks[0]["text"]["text"]
    assert message.blocks[-1]["elements"][0]["url"] == url
    one = import_summary_message(1, "a.csv", base_url="", rep_id=1, source="import")
    assert one.text.startswith("1 lead from the import of a.csv was assigned to you")


# ------------------------------------------------------------------------- the queue


def stored_import(db: Database, name: str, emails: list[str]) -> str:
    text = "email\n" + "".join(f"{e}\n" for e in emails)
    csv_file = read_csv(text.encode(), 100)
    columns = detect_columns(csv_file.headers)
    with db.session() as session:
        row = import_store.create_import(
            session,
            filename=name,
            source="import",
            created_by="test",
            headers=csv_file.headers,
            columns=columns,
            content=text,
        )
        validation = validate_rows(csv_file, columns, "import")
        import_store.save_validation(session, row, columns, validation, b"secret")
        return row.id


def status_of(db: Database, import_id: str) -> tuple[str, str | None]:
    with db.read() as session:
        row = import_store.get_import(session, import_id)
        assert row is not None
        return row.status, import_store.queued_behind(session, row)


def test_imports_take_turns_in_order_of_creation(db: Database) -> None:
    first, second, third = (
        stored_import(db, f"{n}.csv", [f"{n}-{i}@acme.example" for i in range(2)])
        for n in ("first", "second", "third")
    )
    with db.session() as session:
        # The third is started first: it runs; then the others wait behind it, in line.
        assert import_store.claim_turn(session, third) == import_store.Turn(go=True)
    with db.session() as session:
        assert import_store.claim_turn(session, second) == import_store.Turn(False, third)
    with db.session() as session:
        assert import_store.claim_turn(session, first) == import_store.Turn(False, third)
    assert status_of(db, second) == ("queued", first)  # first in line: created earlier
    assert status_of(db, first) == ("queued", third)
    with db.session() as session:
        assert import_store.claim_turn(session, third) == import_store.Turn(go=True)  # goes on
        assert import_store.claim_turn(session, second) == import_store.Turn(False, first)
    with db.session() as session:
        import_store.finish_import(session, third, "stopped")  # failed: the line moves too
    with db.session() as session:
        assert import_store.claim_turn(session, second) == import_store.Turn(False, first)
    with db.session() as session:
        assert import_store.claim_turn(session, first) == import_store.Turn(go=True)
    with db.read() as session:
        row = import_store.get_import(session, first)
        assert row is not None and row.started_at is not None and row.content is None
        assert import_store.progress_of(row)["queued_behind"] is None
    assert status_of(db, second) == ("queued", first)
    with db.session() as session:
        import_store.finish_import(session, first)
    with db.session() as session:
        assert import_store.claim_turn(session, second) == import_store.Turn(go=True)
    assert status_of(db, second) == ("running", None)


def test_the_owners_of_an_import_are_counted_from_the_leads_its_rows_created(
    db: Database,
) -> None:
    import_id = stored_import(db, "a.csv", ["a@acme.example", "b@acme.example", "c@acme.example"])
    with db.session() as session:
        assert import_store.claim_turn(session, import_id).go
        row = import_store.get_import(session, import_id)
        assert row is not None and row.started_at is not None
        started_at = row.started_at
        pending = import_store.pending_rows(session, import_id, 10)
        for item in pending:
            import_store.mark_started(session, import_id, item.line, utcnow())
    a, b, c = (p.lead_id for p in pending)
    with db.read() as session:
        assert import_store.unsettled_rows(session, import_id) == 3  # no lead stored yet
    now = utcnow()
    with db.session() as session:
        for lead_id, owner, created, notified in (
            (a, 1, now, now),
            (b, 1, now, None),  # routed, not told yet
            (c, 2, started_at - timedelta(days=3), now),  # known before: a resubmission
        ):
            session.add(
                Lead(
                    id=lead_id,
                    workflow_id=f"lead-{lead_id}",
                    email=f"{lead_id}@x.example",
                    stage="assigned",
                    received_at=created,
                    created_at=created,
                    owner_rep_id=owner,
                    notified_at=notified,
                    data={},
                )
            )
    with db.read() as session:
        assert import_store.unsettled_rows(session, import_id) == 1
        row = import_store.get_import(session, import_id)
        assert row is not None
        assert import_store.owners_of(session, row) == [(1, 2)]
    with db.session() as session:
        lead = session.get(Lead, b)
        assert lead is not None
        lead.needs_attention = True  # its notice failed for good: nothing to wait for
    with db.read() as session:
        assert import_store.unsettled_rows(session, import_id) == 0


def test_the_command_applies_map_and_refuses_a_bad_one_before_storing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.csv"
    path.write_text("E-mail,Work Email,Notes\nold@x.example,ann@acme.example,hi\n")

    def run(*maps: str, dry_run: bool = True) -> int:
        args = argparse.Namespace(
            leads_command="import",
            file=path,
            dry_run=dry_run,
            source="import",
            report=None,
            map=list(maps),
        )
        return run_leads(args, make_settings(data_dir=tmp_path))

    assert run("Work Email=email", "Notes=-") == 0
    out = capsys.readouterr().out
    assert '"Work Email" → email  (set by --map)' in out
    assert '"E-mail"     → extra.e_mail  (email is taken by another column (--map))' in out
    assert '"Notes"      → ignored  (set by --map)' in out
    assert run("Phone=phone", "Notes=remarks", dry_run=False) == 2
    err = capsys.readouterr().err
    assert "--map: 'Phone' is not a column of the file (its columns: 'E-mail'" in err
    assert "--map: 'Notes': 'remarks' is not a field of a lead" in err
    assert err.endswith("nothing was imported\n")
    assert not list(tmp_path.glob("*.db")), "something was stored"
