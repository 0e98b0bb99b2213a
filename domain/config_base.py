"""The building blocks of the configuration document (``domain.config``): the fields a
condition may test, the value types (timezones, clock times, emails, names), working hours
and absences, the conditions of rules (``When``), and the problem type every check
reports with its location."""

from __future__ import annotations

import re
from datetime import date, time
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from domain.lead import normalize_email

# Fields a condition may test: lead fields, derived fields, and ``extra.<name>``.
LEAD_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "state",
    "postal_code",
    "website",
    "company_size",
    "industry",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "message",
)
DERIVED_FIELDS = ("email_domain", "website_domain", "free_mail", "score", "grade")
NUMERIC_FIELDS = ("company_size", "score")
EXTRA_FIELD = re.compile(r"^extra\.[A-Za-z][A-Za-z0-9_.\-]{0,63}$")


class Problem(BaseModel):
    """One thing wrong with a configuration, at a location in the document."""

    location: str
    message: str
    line: int | None = None


class ConfigError(ValueError):
    """A configuration that cannot be used; ``problems`` says every reason and where."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.location}: {p.message}" for p in problems))
        self.problems = problems


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(
            f"unknown timezone {value!r} (use an IANA name like Europe/Berlin)"
        ) from err
    return value


def _email(value: str) -> str:
    email = normalize_email(value)
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise ValueError(f"{value!r} is not an email address")
    return email


def _clock(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\d:\d\d", value.strip()):
        return "0" + value.strip()  # 9:00 as 09:00
    if isinstance(value, str | time):
        return value
    # Not a number: pydantic would read 1050 as seconds after midnight, and YAML 1.1
    # reads an unquoted 17:30 as the number 1050.
    raise ValueError("use a time of day like 09:00")


def _naive(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("give the time without an offset (it is in the rep's timezone)")
    return value


Timezone = Annotated[str, AfterValidator(_timezone)]
Clock = Annotated[time, BeforeValidator(_clock), AfterValidator(_naive)]
Email = Annotated[str, AfterValidator(_email)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Weekday(StrEnum):
    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"


class WorkingHours(Strict):
    """The hours a rep takes leads, in the rep's timezone."""

    days: list[Weekday] = Field(min_length=1)
    start: Clock
    end: Clock

    @model_validator(mode="after")
    def _start_before_end(self) -> WorkingHours:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class Period(Strict):
    """Days away, both ends included, in the rep's timezone."""

    from_: date = Field(alias="from")
    until: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.until < self.from_:
            raise ValueError("until must not be before from")
        return self


class Op(StrEnum):
    eq = "eq"
    ne = "ne"
    in_ = "in"
    not_in = "not_in"
    contains = "contains"
    starts_with = "starts_with"
    ends_with = "ends_with"
    regex = "regex"
    gt = "gt"
    gte = "gte"
    lt = "lt"
    lte = "lte"
    between = "between"
    empty = "empty"
    not_empty = "not_empty"
    in_territory = "in_territory"


class Condition(Strict):
    """A test of one field: ``{field, op, value}``."""

    field: str
    op: Op
    value: Any = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value in LEAD_FIELDS or value in DERIVED_FIELDS or EXTRA_FIELD.match(value):
            return value
        raise ValueError(
            f"unknown field {value!r}; use a lead field ({', '.join(LEAD_FIELDS)}), "
            f"a derived one ({', '.join(DERIVED_FIELDS)}) or extra.<name>"
        )

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        op, value = self.op, self.value
        if op in (Op.empty, Op.not_empty):
            if value is not None:
                raise ValueError(f"{op.value} takes no value")
        elif op in (Op.in_, Op.not_in):
            if not isinstance(value, list) or not value:
                raise ValueError(f"{op.value} needs a non-empty list as value")
        elif op is Op.between:
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(_is_number(v) for v in value)
                or value[0] > value[1]
            ):
                raise ValueError("between needs [low, high] numbers with low <= high")
        elif op in (Op.gt, Op.gte, Op.lt, Op.lte):
            if not _is_number(value):
                raise ValueError(f"{op.value} needs a number as value")
        elif op is Op.regex:
            if not isinstance(value, str):
                raise ValueError("regex needs a pattern as value")
            try:
                re.compile(value, re.IGNORECASE)
            except re.error as err:
                raise ValueError(f"invalid regex {value!r}: {err}") from err
        elif op is Op.in_territory:
            if not isinstance(value, str) or not value:
                raise ValueError("in_territory needs a territory name as value")
        elif value is None or isinstance(value, list | dict):
            raise ValueError(f"{op.value} needs a single value")
        return self


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class AllOf(Strict):
    all: list[When] = Field(min_length=1)


class AnyOf(Strict):
    any: list[When] = Field(min_length=1)


def _when_kind(value: Any) -> str:
    """The kind of a ``when`` node, by its key: one set of errors for the kind meant, not
    one per kind tried."""
    if isinstance(value, AllOf | AnyOf):
        return type(value).__name__
    if isinstance(value, dict) and ("all" in value or "any" in value):
        return "AllOf" if "all" in value else "AnyOf"
    return "Condition"


When = Annotated[
    Annotated[AllOf, Tag("AllOf")]
    | Annotated[AnyOf, Tag("AnyOf")]
    | Annotated[Condition, Tag("Condition")],
    Discriminator(_when_kind),
]


AllOf.model_rebuild()
AnyOf.model_rebuild()
