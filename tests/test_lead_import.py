"""The bulk import's pure part and its rows in the database: headers matched to fields,
every row judged as ``POST /leads`` judges a form (with the line a spreadsheet shows),
files that cannot be imported refused saying why, duplicates merged, the report of
rejected rows, and rows marked started once."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activities import lead_import as lead_import_activities
from cli_import import run_leads
from domain.lead import MAX_EXTRA_FIELDS
from domain.lead_import import (
    Column,
    ImportFileError,
    MappingError,
    Validation,
    choose_columns,
    describe,
    detect_columns,
    extra_key,
    problem_lines,
    read_csv,
    rejected_csv,
    source_problem,
    validate_rows,
)
from domain.lead_import_run import row_submission_id, seconds_left
from store import imports as import_store
from store.db import Database
from store.models import Lead, utcnow
from tests.conftest import make_settings
from web.submission import IntakeError, parse_body, validate_fields

SECRET = b"test-secret"


def targets(headers: list[str]) -> dict[str, str]:
    return {c.header: c.target for c in detect_columns(headers)}


def judged(text: str, source: str = "import") -> tuple[list[Column], Validation]:
    csv_file = read_csv(text.encode(), 1000)
    columns = detect_columns(csv_file.headers)
    return columns, validate_rows(csv_file, columns, source)


# ------------------------------------------------------------------------- header mapping


def test_common_headers_are_matched_to_the_fields_of_a_lead() -> None:
    found = targets(
        [
            "E-mail",
            "First Name",
            "Surname",
            "Company Name",
            "Country",
            "Job Title",
            "Phone",
            "UTM Source",
            "utm_campaign",
            "Zip Code",
            "State/Province",
            "Number of Employees",
            "Comments",
            "Website",
        ]
    )
    assert found == {
        "E-mail": "email",
        "First Name": "first_name",
        "Surname": "last_name",
        "Company Name": "company",
        "Country": "country",
        "Job Title": "title",
        "Phone": "phone",
        "UTM Source": "utm_source",
        "utm_campaign": "utm_campaign",
        "Zip Code": "postal_code",
        "State/Province": "state",
        "Number of Employees": "company_size",
        "Comments": "message",
        "Website": "website",
    }
    assert targets(["Email Address"]) == {"Email Address": "email"}


def test_unknown_headers_become_free_form_fields_and_the_rest_is_listed_with_a_reason() -> None:
    columns = detect_columns(["Email", "Favourite Colour (2024)", "", "Lead Source", "email"])
    by_index = {c.index: c for c in columns}
    assert by_index[1].target == "extra.favourite_colour_2024"
    assert by_index[2].target == "" and by_index[2].note == "the column has no header"
    # The import sets the lead's source; a source column is kept, not applied.
    assert by_index[3].target == "extra.lead_source"
    assert "source is set by the import" in by_index[3].note
    # A second email column does not replace the first.
    assert by_index[4].target == "extra.email"
    assert "already imported as email" in by_index[4].note
    assert extra_key("2nd phone") == "column_2nd_phone"
    assert extra_key("%%%") is None


def test_at_most_twenty_columns_become_free_form_fields() -> None:
    headers = ["email", *(f"Custom {i}" for i in range(MAX_EXTRA_FIELDS + 2))]
    columns = detect_columns(headers)
    extras = [c for c in columns if c.target.startswith("extra.")]
    left_out = [c for c in columns if not c.target]
    assert len(extras) == MAX_EXTRA_FIELDS
    assert [c.header for c in left_out] == ["Custom 20", "Custom 21"]
    assert all("at most 20 free-form fields" in c.note for c in left_out)


def test_a_chosen_mapping_is_refused_naming_each_problem() -> None:
    headers = ["Mail", "Work Email", "Notes"]
    with pytest.raises(MappingError) as refused:
        choose_columns(headers, {0: "email", 1: "email", 2: "nonsense"})
    assert refused.value.problems == [
        "'Mail' and 'Work Email' are both imported as email; choose one of them",
        "'Notes': 'nonsense' is not a field of a lead",
    ]
    with pytest.raises(MappingError) as no_email:
        choose_columns(headers, {2: "message"})
    assert no_email.value.problems == [
        "no column is imported as email: choose the column with the addresses"
    ]
    chosen = choose_columns(headers, {1: "email", 2: "extra.notes"})
    assert [c.target for c in chosen] == ["", "email", "extra.notes"]


# ------------------------------------------------------------------------- validation


def test_rejected_rows_name_the_spreadsheet_line_the_column_and_the_field() -> None:
    text = (
        "Email,First Name,Phone,Employees\r\n"
        "ok@acme.example,Ann,+1 555 0100,40\r\n"  # line 2
        "not-an-address,Bob,,\r\n"  # line 3
        '"quoted@acme.example","Multi\nline name",,\r\n'  # line 4 (two physical lines)
        "\r\n"  # line 5: blank, skipped but counted
        "cy@acme.example,Cy,call me,lots\r\n"  # line 6
        ",Dee,,\r\n"  # line 7
        "ed@acme.example,Ed,,,surplus\r\n"  # line 8
        "fay@acme.example,Fay,,12,,\r\n"  # line 9: trailing empty values are fine
    )
    _, result = judged(text)
    assert result.rows == 7
    assert [a.line for a in result.accepted] == [2, 9]
    lines = [describe(line, p) for line, p in problem_lines(result.rejected)]
    assert lines[0].startswith('line 3, column "Email" (email): value is not a valid email address')
    assert lines[1] == (
        'line 4, column "First Name" (first_name): must not contain control characters '
        "(found U+000A)"
    )
    assert lines[2:] == [
        'line 6, column "Phone" (phone): must be a phone number (digits, spaces, + ( ) - . x)',
        'line 6, column "Employees" (company_size): Input should be a valid integer, unable '
        "to parse string as an integer",
        'line 7, column "Email" (email): is required',
        "line 8, row: has 5 values but the header has 4 columns (a comma or semicolon inside "
        "a value without quotes?)",
    ]


def test_rows_are_judged_as_the_web_form_judges_them() -> None:
    """Every row, posted as the same form to the intake's validation, gets the same
    verdict and the same messages."""
    rows = [
        {"email": "a@acme.example", "company": "Acme", "company_size": "120"},
        {"email": "b@acme", "title": "VP"},
        {"email": "c@acme.example", "phone": "12ab"},
        {"email": "d@acme.example", "company_size": "0"},
        {"email": "e@acme.example", "country": "x" * 201},
        {"email": "f@acme.example", "message": "line one\nline two"},
        {"email": " G@Acme.Example ", "website": "acme.example"},
        {"email": "h" * 65 + "@acme.example"},
    ]
    headers = ["email", "company", "company_size", "title", "phone", "country", "message"]
    headers.append("website")
    out = io.StringIO()
    writer = csv.DictWriter(out, headers)
    writer.writeheader()
    writer.writerows(rows)
    columns, result = judged(out.getvalue(), source="import")
    problems = {r.line: [(p.field, p.message) for p in r.problems] for r in result.rejected}
    for line, row in enumerate(rows, start=2):
        data, _ = parse_body(
            "application/x-www-form-urlencoded", urlencode({**row, "source": "import"}).encode()
        )
        try:
            submission, _, _ = validate_fields(data, "leadflow.example")
        except IntakeError as err:
            assert problems[line] == [(e["field"], e["message"]) for e in err.errors], line
            continue
        accepted = {a.line: a.submission for a in result.accepted}
        assert accepted[line] == submission, line
    assert sorted(problems) == [3, 4, 5, 6, 9]
    assert len(columns) == len(headers)


def test_duplicate_emails_are_merged_into_the_first_row() -> None:
    text = (
        "email,first_name,company,title\n"
        "ana@acme.example,Ana,,\n"  # line 2
        " ANA@Acme.example ,Anna,Acme,CEO\n"  # line 3: same person
        "bo@acme.example,Bo,,\n"  # line 4
        "ana@acme.example,,Other Co,\n"  # line 5: same person again
        "bad,,,\n"  # line 6
    )
    _, result = judged(text)
    assert [a.line for a in result.accepted] == [2, 4]
    ana = result.accepted[0]
    # Later rows fill what the first left empty, and change nothing it has.
    assert (ana.submission.first_name, ana.submission.company, ana.submission.title) == (
        "Ana",
        "Acme",
        "CEO",
    )
    assert ana.merged_lines == [3, 5]
    assert result.merged == {3: 2, 5: 2}
    assert [r.line for r in result.rejected] == [6]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["a@x.example", "A@X.example", "b@x.example", "nope", "", "c@x.example", "@x"]
        ),
        min_size=1,
        max_size=40,
    )
)
def test_every_row_is_imported_merged_or_rejected_exactly_once(emails: list[str]) -> None:
    text = "email,n\n" + "".join(f"{e},{i}\n" for i, e in enumerate(emails))
    _, result = judged(text)
    accepted = [a.line for a in result.accepted]
    rejected = [r.line for r in result.rejected]
    assert sorted(accepted + rejected + list(result.merged)) == [r[0] for r in read_rows(text)]
    assert len({a.submission.email for a in result.accepted}) == len(accepted)
    assert all(result.merged[line] in accepted for line in result.merged)


def read_rows(text: str) -> list[tuple[int, list[str]]]:
    return read_csv(text.encode(), 1000).rows


def test_the_source_is_set_on_every_lead_and_checked() -> None:
    _, result = judged("email\na@acme.example\n", source="trade-show-2026")
    assert result.accepted[0].submission.source == "trade-show-2026"
    assert source_problem("x" * 201) == "String should have at most 200 characters"
    assert source_problem("bad\x07") == "must not contain control characters (found U+0007)"
    assert source_problem("import") is None


# ------------------------------------------------------------------------- files refused


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "email,name\nann@acme.example,Zoë\n".encode("latin-1"),
            "the file is not UTF-8: byte 0xEB on line 2 (byte 31 of the file) is not valid "
            'UTF-8; save it from your spreadsheet as "CSV UTF-8" and try again',
        ),
        (b"", "the file is empty"),
        (b"\n \n", "the file is empty"),
        (b"email,name\n", "the file has a header line but no rows"),
        (b"PK\x03\x04\x00\x00", "line 1 holds a NUL byte: is it a spreadsheet"),
        (
            b"email\na@acme.example\nb@acme.example\nc@acme.example\n",
            "the file has more than 2 rows (LEADFLOW_IMPORT_MAX_ROWS); split it",
        ),
    ],
    ids=["latin-1", "empty", "blank", "header-only", "xlsx", "too-many-rows"],
)
def test_a_file_that_cannot_be_imported_is_refused_saying_why(content: bytes, message: str) -> None:
    with pytest.raises(ImportFileError) as refused:
        read_csv(content, max_rows=2)
    assert str(refused.value).startswith(message)


def test_a_file_without_an_email_column_is_refused() -> None:
    csv_file = read_csv(b"name,company\nAnn,Acme\n", 10)
    with pytest.raises(MappingError, match="no column is imported as email"):
        validate_rows(csv_file, detect_columns(csv_file.headers))


def test_semicolons_tabs_and_a_byte_order_mark_are_read() -> None:
    for text in ("\ufeffEmail;Name\na@acme.example;Ann\n", "Email\tName\na@acme.example\tAnn\n"):
        csv_file = read_csv(text.encode(), 10)
        assert csv_file.headers == ["Email", "Name"]
        assert csv_file.rows == [(2, ["a@acme.example", "Ann"])]


# ------------------------------------------------------------------------- the report


def test_the_report_lists_each_problem_and_defuses_formulas() -> None:
    text = "=HYPERLINK(x),Email\nq,not-an-address\n"
    csv_file = read_csv(text.encode(), 10)
    columns = choose_columns(csv_file.headers, {0: "company", 1: "email"})
    result = validate_rows(csv_file, columns)
    lines = list(csv.reader(io.StringIO(rejected_csv(result.rejected))))
    assert lines[0] == ["line", "column", "field", "reason"]
    assert lines[1][:3] == ["2", "Email", "email"]
    assert lines[1][3].startswith("value is not a valid email address")
    assert rejected_csv([]) == "line,column,field,reason\r\n"
    # A header a spreadsheet would run as a formula is written as text.
    formula = read_csv(b"name,=cmd|' /C calc'!A0\nq,not-an-address\n", 10)
    columns = choose_columns(formula.headers, {1: "email"})
    report = rejected_csv(validate_rows(formula, columns).rejected)
    assert list(csv.reader(io.StringIO(report)))[1][1] == "'=cmd|' /C calc'!A0"


def test_time_left_follows_the_rate_seen_so_far() -> None:
    assert seconds_left(100, 50, 10.0) == 20.0
    assert seconds_left(0, 50, 10.0) == 0.0
    assert seconds_left(10, 0, 0.0) is None
    assert row_submission_id("abc", 7) == "import:abc:7"


# ------------------------------------------------------------------------- stored rows


def test_rows_are_stored_and_each_is_marked_started_once(db: Database) -> None:
    text = "email,company\na@acme.example,A\nbad,B\nA@acme.example,C\nb@acme.example,\n"
    csv_file = read_csv(text.encode(), 10)
    columns = detect_columns(csv_file.headers)
    result = validate_rows(csv_file, columns, "import")
    with db.session() as session:
        row = import_store.create_import(
            session,
            filename="leads.csv",
            source="import",
            created_by="test",
            headers=csv_file.headers,
            columns=columns,
            content=text,
        )
        import_store.save_validation(session, row, columns, result, SECRET)
        import_id = row.id
    with db.read() as session:
        pending = import_store.pending_rows(session, import_id, 10)
        assert [p.line for p in pending] == [2, 5]
        assert pending[0].submission.company == "A"
        [rejected] = import_store.rejected_rows(session, import_id)
        assert rejected.line == 3 and rejected.problems[0].field == "email"
    with db.session() as session:
        assert import_store.mark_running(session, import_id)
        assert not import_store.mark_running(session, import_id)
        now = utcnow()
        assert import_store.mark_started(session, import_id, 2, now)
        assert not import_store.mark_started(session, import_id, 2, now)
        assert not import_store.mark_started(session, import_id, 3, now)  # rejected
    with db.read() as session:
        assert [p.line for p in import_store.pending_rows(session, import_id, 10)] == [5]
        stored = import_store.get_import(session, import_id)
        assert stored is not None
        progress = import_store.progress_of(stored)
    assert {k: progress[k] for k in ("rows", "accepted", "imported", "merged", "rejected")} == {
        "rows": 4,
        "accepted": 2,
        "imported": 1,
        "merged": 1,
        "rejected": 1,
    }
    assert progress["status"] == "running" and not progress["done"]
    with db.session() as session:
        finished = import_store.finish_import(session, import_id)
        assert finished.status == "completed" and finished.content is None


# ------------------------------------------------------------------------- the command line


def run_cli(tmp_path: Path, content: bytes, **options: Any) -> int:
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    args = argparse.Namespace(
        leads_command="import",
        file=path,
        dry_run=options.get("dry_run", True),
        source=options.get("source", "import"),
        report=options.get("report"),
    )
    return run_leads(args, make_settings(data_dir=tmp_path))


def test_a_dry_run_shows_the_columns_and_every_rejected_row_and_imports_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = b"E-mail,Company Name,Lead Source\nann@acme.example,Acme,fair\nbad,B,x\n"
    assert run_cli(tmp_path, content) == 0
    out = capsys.readouterr().out
    assert '"E-mail"       → email' in out
    assert '"Lead Source"  → extra.lead_source' in out
    assert "2 rows: 1 lead to import, 0 duplicates merged into them, 1 rejected" in out
    assert 'line 3, column "E-mail" (email): value is not a valid email address' in out
    assert "line,column,field,reason\r\n3,E-mail,email," in out
    assert out.endswith("dry run: nothing was imported\n")

    report = tmp_path / "rejected.csv"
    assert run_cli(tmp_path, content, report=report) == 0
    assert "line,column" not in capsys.readouterr().out
    assert report.read_bytes().startswith(b"line,column,field,reason\r\n3,E-mail,email,")


def test_the_command_refuses_a_file_or_a_source_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(tmp_path, "email\nzoë@acme.example\n".encode("latin-1")) == 1
    assert "byte 0xEB on line 2" in capsys.readouterr().err
    assert run_cli(tmp_path, b"name,company\nAnn,Acme\n") == 1
    assert "no column is imported as email" in capsys.readouterr().err
    assert run_cli(tmp_path, b"email\na@acme.example\n", source="x" * 201) == 2
    assert "--source String should have at most 200 characters" in capsys.readouterr().err


# ------------------------------------------------------------------------- backpressure


async def test_the_import_waits_while_too_many_of_its_leads_are_not_yet_told(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``limit`` rows handed over and not yet told to their owner the import waits;
    a notice lets it go on, and a lead never told stops counting after a while."""
    monkeypatch.setattr(lead_import_activities, "BACKLOG_CHECK_S", 0.01)
    ids = [f"{i:024x}" for i in range(10)]
    with db.session() as session:
        for lead_id in ids:
            session.add(
                Lead(
                    id=lead_id,
                    workflow_id=f"lead-{lead_id}",
                    email=f"{lead_id}@x.example",
                    stage="captured",
                    received_at=utcnow(),
                )
            )
    backlog = lead_import_activities.Backlog(db, rate=2.0)
    assert backlog.limit == lead_import_activities.IN_FLIGHT  # 2 a second for 2 s is fewer
    for lead_id in ids[: backlog.limit - 1]:
        backlog.handed_over(lead_id)
    await asyncio.wait_for(backlog.room(), 1)  # one more may go
    backlog.handed_over(ids[backlog.limit - 1])
    waiting = asyncio.create_task(backlog.room())
    await asyncio.sleep(0.1)
    assert not waiting.done(), "the import went on with a full backlog"
    with db.session() as session:
        session.get(Lead, ids[0]).notified_at = utcnow()  # type: ignore[union-attr]
    await asyncio.wait_for(waiting, 1)
    # A lead nobody is told about (parked, queued) is forgotten after BACKLOG_FORGET_S.
    backlog.handed_over(ids[0])
    monkeypatch.setattr(lead_import_activities, "BACKLOG_FORGET_S", 0.0)
    await asyncio.wait_for(backlog.room(), 1)
    assert backlog.waited_s > 0
