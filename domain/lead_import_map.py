"""``leadflow leads import --map "Header=field,Other Header=field"``: a person's corrections
to the columns detected from the headers (``domain.lead_import.detect_columns``), pure.

``field`` is named as the admin app's selects name it: a field of a lead (``email``,
``first_name`` …), ``extra.NAME`` for a free-form field, or ``-`` / ``ignore`` to leave
the column out. A column that loses its field to a ``--map`` becomes a free-form field,
as a second column of the same field does when detected. Every problem (a header the file
does not have, a field a lead does not have, two columns for one field) is a
``MappingError`` naming it, so nothing is stored with a mapping the person did not mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from domain.lead import EXTRA_PREFIX
from domain.lead_import import (
    IGNORE,
    TARGETS,
    Column,
    MappingError,
    choose_columns,
    extra_key,
    header_key,
)

LEAVE_OUT = ("-", "ignore")
MAPPED = "set by --map"


def parse_map(values: Iterable[str]) -> list[tuple[str, str]]:
    """``(header, field)`` pairs from ``--map`` values (each ``Header=field`` pairs joined
    by commas; ``--map`` may be given several times). The last ``=`` of a pair separates
    the field, so a header may hold one."""
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            header, sep, target = item.rpartition("=")
            if not sep or not header.strip() or not target.strip():
                problems.append(f"{item.strip()!r} is not Header=field")
                continue
            pairs.append((header.strip(), target.strip()))
    if problems:
        raise MappingError(problems)
    return pairs


def _column_of(header: str, columns: Sequence[Column]) -> Column | None:
    """The column named ``header``: exactly, else the one whose name matches with case,
    spaces and punctuation ignored (as headers are detected)."""
    exact = next((c for c in columns if c.header.strip() == header), None)
    if exact is not None:
        return exact
    loose = [c for c in columns if header_key(c.header) == header_key(header)]
    return loose[0] if len(loose) == 1 else None


def _target_of(header: str, field: str) -> tuple[str | None, str | None]:
    """The column's target for ``field`` and None, or None and the problem."""
    name = field.lower()
    if name in LEAVE_OUT:
        return IGNORE, None
    if name in TARGETS:
        return name, None
    if name.startswith(EXTRA_PREFIX):
        return EXTRA_PREFIX + field[len(EXTRA_PREFIX) :], None
    if name == "source":
        return None, (
            f"{header!r}: the leads' source is set by --source, not by a column "
            "(map it to extra.NAME to keep its values)"
        )
    return None, (
        f"{header!r}: {field!r} is not a field of a lead; use one of "
        f"{', '.join(TARGETS)}, extra.NAME, or - to leave the column out"
    )


def apply_map(
    headers: Sequence[str], detected: Sequence[Column], pairs: Sequence[tuple[str, str]]
) -> list[Column]:
    """The detected columns with ``pairs`` applied, checked as the admin app checks a
    chosen mapping (one column per field, an email column, at most 20 free-form fields).
    A column whose field a pair gives to another becomes a free-form field."""
    problems: list[str] = []
    chosen: dict[int, str] = {}
    for header, field in pairs:
        column = _column_of(header, detected)
        target, problem = _target_of(header, field)
        if column is None:
            shown = ", ".join(repr(h) for h in headers)
            problems.append(f"{header!r} is not a column of the file (its columns: {shown})")
        elif problem is not None:
            problems.append(problem)
        elif target is not None:
            chosen[column.index] = target
    if problems:
        raise MappingError(problems)
    taken = {t for t in chosen.values() if t != IGNORE}
    targets = {c.index: c.target for c in detected}
    displaced: dict[int, str] = {}
    for column in detected:
        if column.index in chosen:
            targets[column.index] = chosen[column.index]
        elif column.target in taken:
            key = extra_key(column.header)
            extra = f"{EXTRA_PREFIX}{key}" if key else IGNORE
            targets[column.index] = IGNORE if extra in taken else extra
            displaced[column.index] = column.target
    columns = choose_columns(headers, targets)
    notes = {c.index: c.note for c in detected}
    for column in columns:
        if column.index in chosen:
            column.note = MAPPED
        elif column.index in displaced:
            column.note = f"{displaced[column.index]} is taken by another column (--map)"
        else:
            column.note = notes.get(column.index, "")
    return columns
