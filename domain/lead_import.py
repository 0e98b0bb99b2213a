"""Bulk import of existing leads, the pure part: reading a CSV file (UTF-8, bounded),
detecting from each header which field of ``LeadSubmission`` its column holds, validating
every row as ``POST /leads`` validates a form, merging rows of the same person, and the
report of rejected rows. Line numbers are those a spreadsheet shows: the header is line 1.
What the import workflow and its activities exchange is in ``domain.lead_import_run``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field, ValidationError

from domain.lead import (
    AT_INTAKE,
    EXTRA_PREFIX,
    MAX_EXTRA_FIELDS,
    LeadSubmission,
    field_errors,
)

DEFAULT_SOURCE = "import"
IGNORE = ""  # the target of a column that is not imported
# The lead's ``source`` is set by the import (``--source``), never by a column.
TARGETS: tuple[str, ...] = tuple(
    name for name in LeadSubmission.model_fields if name not in ("extra", "source")
)
FIELD_LABELS: dict[str, str] = {
    name: name.replace("_", " ").capitalize().replace("Utm ", "UTM ") for name in TARGETS
}
# Headers recognised besides a field's own name, as ``header_key`` reduces them.
_ALIASES: dict[str, str] = {
    "email": "mail emailaddress workemail businessemail emailid contactemail primaryemail "
    "emailaddr",
    "first_name": "first givenname forename fname firstnames",
    "last_name": "last surname familyname lname",
    "company": "companyname organization organisation org account accountname employer "
    "business businessname",
    "title": "jobtitle position role jobrole designation job",
    "phone": "phonenumber telephone tel mobile mobilephone mobilenumber cell cellphone "
    "workphone businessphone phoneno",
    "country": "countryregion countrycode nation",
    "state": "province stateprovince region county stateregion",
    "postal_code": "zip zipcode postcode postal zippostalcode",
    "website": "web url site websiteurl companywebsite homepage",
    "company_size": "employees numberofemployees noofemployees employeecount headcount "
    "companyemployees size",
    "industry": "sector vertical",
    "utm_campaign": "campaign campaignname",
    "utm_medium": "medium",
    "message": "comments comment notes note description details inquiry enquiry question",
}
_DETECT: dict[str, str] = {
    alias: target
    for target in TARGETS
    for alias in (target.replace("_", ""), *_ALIASES.get(target, "").split())
}
_SOURCE_HEADERS = {"source", "leadsource", "origin"}
_NOT_KEY = re.compile(r"[^a-z0-9]+")
_EXTRA_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; the message says why, naming the line."""


class MappingError(ValueError):
    """The chosen column mapping cannot be used; one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Column(BaseModel):
    """One column of the file and where its values go: a field of ``LeadSubmission``,
    ``extra.<key>`` (the lead's free-form fields), or nowhere (``""``, with ``note``)."""

    index: int
    header: str
    target: str = IGNORE
    note: str = ""


@dataclass
class CsvFile:
    """The header and the non-blank rows of a file, each row with its line number."""

    headers: list[str]
    rows: list[tuple[int, list[str]]]
    delimiter: str = ","


def header_key(header: str) -> str:
    """A header reduced for matching: "E-mail Address" and "email_address" agree."""
    return _NOT_KEY.sub("", header.strip().lower())


def extra_key(header: str) -> str | None:
    """The free-form field name a header becomes ("Lead Score (old)" → lead_score_old),
    or None when nothing usable is left."""
    slug = _NOT_KEY.sub("_", header.strip().lower()).strip("_")
    if not slug:
        return None
    if not slug[0].isalpha():
        slug = f"column_{slug}"
    return slug[:64].rstrip("_")


def read_csv(content: bytes, max_rows: int) -> CsvFile:
    """The file's header and rows; ``ImportFileError`` when it is not UTF-8 (naming the
    byte and its line), empty, has no rows, or more than ``max_rows`` rows."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = content.count(b"\n", 0, err.start) + 1
        raise ImportFileError(
            f"the file is not UTF-8: byte 0x{content[err.start]:02X} on line {line} "
            f"(byte {err.start + 1} of the file) is not valid UTF-8; save it from your "
            'spreadsheet as "CSV UTF-8" and try again'
        ) from None
    if not text.strip():
        raise ImportFileError("the file is empty")
    nul = text.find("\x00")
    if nul >= 0:
        raise ImportFileError(
            f"line {text.count(chr(10), 0, nul) + 1} holds a NUL byte: is it a spreadsheet "
            '(.xlsx, .xls) rather than CSV? Save it as "CSV UTF-8" and try again'
        )
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    number = 0
    try:
        for record in reader:
            number += 1
            if headers is None:
                if any(cell.strip() for cell in record):
                    headers = [cell.strip() for cell in record]
                    number = 1  # blank lines above the header do not count
                continue
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) == max_rows:
                raise ImportFileError(
                    f"the file has more than {max_rows:,} rows (LEADFLOW_IMPORT_MAX_ROWS); "
                    "split it into smaller files"
                )
            rows.append((number, record))
    except csv.Error as err:
        raise ImportFileError(f"line {number + 1} cannot be read as CSV: {err}") from None
    if headers is None:
        raise ImportFileError("the file is empty")
    if not rows:
        raise ImportFileError("the file has a header line but no rows")
    return CsvFile(headers, rows, delimiter)


def detect_columns(headers: Sequence[str]) -> list[Column]:
    """Each column's target, guessed from its header. The first column that matches a
    field gets it; other headers become free-form fields (at most ``MAX_EXTRA_FIELDS``),
    and what cannot be a field is ignored with a note saying why."""
    taken: set[str] = set()
    keys: set[str] = set()
    columns = []
    for index, header in enumerate(headers):
        column = Column(index=index, header=header)
        target = _DETECT.get(header_key(header))
        if target is not None and target not in taken:
            column.target = target
            taken.add(target)
        else:
            if header_key(header) in _SOURCE_HEADERS:
                column.note = "the lead's source is set by the import; kept as a free-form field"
            elif target is not None:
                column.note = f"another column is already imported as {target}"
            _as_extra(column, keys)
        columns.append(column)
    return columns


def _as_extra(column: Column, keys: set[str]) -> None:
    key = extra_key(column.header)
    if key is None:
        column.note = "the column has no header"
        return
    if len(keys) >= MAX_EXTRA_FIELDS:
        column.note = f"a lead keeps at most {MAX_EXTRA_FIELDS} free-form fields"
        return
    unique, number = key, 2
    while unique in keys:
        unique = f"{key[:60]}_{number}"
        number += 1
    keys.add(unique)
    column.target = f"{EXTRA_PREFIX}{unique}"


def choose_columns(headers: Sequence[str], choices: dict[int, str]) -> list[Column]:
    """The columns with the targets a person chose (column index → target; a column not
    in ``choices`` is ignored); ``MappingError`` naming every problem."""
    problems: list[str] = []
    columns = []
    by_target: dict[str, str] = {}
    extras = 0
    for index, header in enumerate(headers):
        target = choices.get(index, IGNORE).strip()
        name = header or f"column {index + 1}"
        if target.startswith(EXTRA_PREFIX):
            extras += 1
            if not _EXTRA_KEY.fullmatch(target.removeprefix(EXTRA_PREFIX)):
                problems.append(f"{name!r}: {target!r} is not a usable free-form field name")
        elif target not in (*TARGETS, IGNORE):
            problems.append(f"{name!r}: {target!r} is not a field of a lead")
        if target != IGNORE and target in by_target:
            problems.append(
                f"{by_target[target]!r} and {name!r} are both imported as {target}; "
                "choose one of them"
            )
        by_target.setdefault(target, name)
        columns.append(Column(index=index, header=header, target=target))
    if extras > MAX_EXTRA_FIELDS:
        problems.append(
            f"{extras} columns are imported as free-form fields; a lead keeps at most "
            f"{MAX_EXTRA_FIELDS}"
        )
    if "email" not in by_target:
        problems.append("no column is imported as email: choose the column with the addresses")
    if problems:
        raise MappingError(problems)
    return columns


def source_problem(source: str) -> str | None:
    """Why ``source`` cannot be the leads' source (as the form would refuse it), or None."""
    try:
        LeadSubmission.model_validate(
            {"email": "source-check@example.com", "source": source}, context=AT_INTAKE
        )
    except ValidationError as err:
        return field_errors(err)[0]["message"]
    return None


def email_column(columns: Iterable[Column]) -> Column | None:
    return next((c for c in columns if c.target == "email"), None)


# ----------------------------------------------------------------------- validation


class Problem(BaseModel):
    """Why a row is refused: the field (``email``, ``extra``, or ``row``), the column it
    came from, and the reason in the words ``POST /leads`` uses."""

    field: str
    column: str = ""
    message: str


class RejectedRow(BaseModel):
    line: int
    problems: list[Problem]


class AcceptedRow(BaseModel):
    """A row that becomes a lead, with the later lines of the same person merged in."""

    line: int
    submission: LeadSubmission
    merged_lines: list[int] = Field(default_factory=list)


@dataclass
class Validation:
    """Every row of a file, judged: the leads to start, the duplicates merged into them
    (line → the line it joined) and the rows refused."""

    rows: int = 0
    accepted: list[AcceptedRow] = field(default_factory=list)
    merged: dict[int, int] = field(default_factory=dict)
    rejected: list[RejectedRow] = field(default_factory=list)


def validate_rows(
    csv_file: CsvFile, columns: Sequence[Column], source: str = DEFAULT_SOURCE
) -> Validation:
    """Validate every row as the web form is validated (values trimmed, empty ones left
    out, unknown columns as free-form fields), with ``source`` as the lead's source.
    Rows of the same normalised email are merged into the first: a later row fills the
    fields the first left empty and changes none (as a repeated form post does)."""
    if email_column(columns) is None:
        raise MappingError(["no column is imported as email: choose the column with the addresses"])
    result = Validation(rows=len(csv_file.rows))
    first: dict[str, AcceptedRow] = {}
    width = len(csv_file.headers)
    headers = {c.target: c.header for c in columns if c.target}
    for line, cells in csv_file.rows:
        beyond = [cell for cell in cells[width:] if cell.strip()]
        if beyond:
            result.rejected.append(
                RejectedRow(
                    line=line,
                    problems=[
                        Problem(
                            field="row",
                            message=f"has {len(cells)} values but the header has {width} "
                            "columns (a comma or semicolon inside a value without quotes?)",
                        )
                    ],
                )
            )
            continue
        data = _row_data(cells, columns, source)
        try:
            submission = LeadSubmission.model_validate(data, context=AT_INTAKE)
        except ValidationError as err:
            problems = [
                Problem(
                    field=e["field"],
                    column=headers.get(e["field"], ""),
                    message=e["message"],
                )
                for e in field_errors(err)
            ]
            result.rejected.append(RejectedRow(line=line, problems=problems))
            continue
        earlier = first.get(submission.email)
        if earlier is None:
            first[submission.email] = AcceptedRow(line=line, submission=submission)
            result.accepted.append(first[submission.email])
            continue
        earlier.submission = earlier.submission.absorb(submission).merged
        earlier.merged_lines.append(line)
        result.merged[line] = earlier.line
    return result


def _row_data(cells: Sequence[str], columns: Sequence[Column], source: str) -> dict[str, object]:
    data: dict[str, object] = {}
    extra: dict[str, str] = {}
    for column in columns:
        if not column.target or column.index >= len(cells):
            continue
        value = cells[column.index].strip()
        if not value:
            continue
        if column.target.startswith(EXTRA_PREFIX):
            extra[column.target.removeprefix(EXTRA_PREFIX)] = value
        else:
            data[column.target] = value
    if extra:
        data["extra"] = extra
    data["source"] = source
    return data


def problem_lines(rejected: Iterable[RejectedRow]) -> Iterable[tuple[int, Problem]]:
    for row in rejected:
        for problem in row.problems:
            yield row.line, problem


def describe(line: int, problem: Problem) -> str:
    """One problem as a sentence: ``line 7, column "E-mail" (email): …``."""
    where = f'column "{problem.column}" ({problem.field})' if problem.column else problem.field
    return f"line {line}, {where}: {problem.message}"


def rejected_csv(rejected: Iterable[RejectedRow]) -> str:
    """The report of rejected rows as CSV: one line per problem, with the line number
    a spreadsheet shows, the column, the field and the reason. A cell that a spreadsheet
    would run as a formula is quoted with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "column", "field", "reason"])
    for line, problem in problem_lines(rejected):
        writer.writerow([line, _cell(problem.column), _cell(problem.field), _cell(problem.message)])
    return out.getvalue()


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value
