"""The subset of SOQL the fake org answers, written from the SOQL and SOSL Reference:

    SELECT field, … FROM Object [WHERE condition] [ORDER BY field [ASC|DESC]
    [NULLS FIRST|LAST], …] [LIMIT n]

A condition is ``field op value`` (``= != <> < <= > >=``), ``field [NOT] IN (value, …)``,
``field LIKE 'pattern'``, ``NOT condition``, and ``AND``/``OR`` with parentheses (mixing
the two without parentheses is refused, as Salesforce does). Values are quoted strings
with SOQL's escape sequences, numbers, ``true``/``false``/``null``, and unquoted date
and dateTime literals; a quoted value for a date, dateTime, boolean or number field is
refused. String comparisons ignore case; ids compare on their first 15 characters.

Anything else (relationship fields, functions, GROUP BY, date literals such as
``TODAY``…) is refused with ``MALFORMED_QUERY`` rather than guessed at."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tests.fakes.salesforce_schema import ID_RE, ApiError, Field, Record, canonical

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_TEXT_TYPES = ("string", "email", "phone", "url", "textarea", "picklist")
_NUMBER_TYPES = ("int", "double", "currency")


def malformed(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_QUERY", message)


@dataclass
class _Token:
    kind: str
    text: str


@dataclass(frozen=True)
class Literal:
    kind: str  # string datetime date number boolean null
    value: Any
    raw: str


@dataclass(frozen=True)
class Query:
    sobject: str
    fields: list[str]
    where: Callable[[Record], bool] | None
    order: list[tuple[str, bool, bool]]  # field, descending, nulls first
    limit: int | None


def _tokens(text: str) -> list[_Token]:
    found, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise malformed(f"unexpected token at: {text[position : position + 20]!r}")
        found.append(_Token(match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return found


def _unquote(raw: str, *, like: bool) -> str:
    out, chars, i = [], raw[1:-1], 0
    while i < len(chars):
        char = chars[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        if nxt and nxt.lower() in _ESCAPES:
            out.append(_ESCAPES[nxt.lower()])
        elif nxt in "%_" and like:
            out.append("\\" + nxt)  # kept escaped for the LIKE matcher
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", chars[i + 2 : i + 6]):
            out.append(chr(int(chars[i + 2 : i + 6], 16)))
            i += 4
        else:
            raise malformed(f"Invalid string literal {raw}: illegal escape sequence \\{nxt}")
        i += 2
    return "".join(out)


class _Parser:
    def __init__(self, text: str, schema: dict[str, dict[str, Field]]) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.schema = schema
        self.fields: dict[str, Field] = {}
        self.sobject = ""

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def next_is(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.text == text

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token.kind == "word" and token.text.upper() in words:
            self.at += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.keyword(word):
            token = self.peek()
            raise malformed(
                f"unexpected token: {token.text if token else 'end of query'!r}, expected {word}"
            )

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise malformed("unexpected end of query")
        self.at += 1
        return token

    def field(self) -> str:
        token = self.take()
        if token.kind != "word":
            raise malformed(f"unexpected token: {token.text!r}")
        if "." in token.text or self.next_is("("):
            raise malformed(f"the fake does not support {token.text!r} (relationships, functions)")
        name = canonical(self.fields, token.text)
        if name is None:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"No such column '{token.text}' on entity '{self.sobject}'. If you are "
                "attempting to use a custom field, be sure to append the '__c' after the "
                "custom field name.",
            )
        return name

    def parse(self) -> Query:
        self.expect("SELECT")
        names = []
        # Fields are resolved once FROM is known: remember their tokens first.
        start = self.at
        while True:
            self.take()
            if not self.next_is(","):
                break
            self.at += 1
        end = self.at
        self.expect("FROM")
        token = self.take()
        sobject = next((o for o in self.schema if o.lower() == token.text.lower()), None)
        if sobject is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{token.text}' is not supported.")
        self.sobject, self.fields = sobject, self.schema[sobject]
        after = self.at
        self.at = start
        while self.at < end:
            names.append(self.field())
            if self.at < end:
                self.at += 1  # the comma
        self.at = after
        where = self.condition() if self.keyword("WHERE") else None
        order: list[tuple[str, bool, bool]] = []
        if self.keyword("ORDER"):
            self.expect("BY")
            while True:
                name = self.field()
                descending = self.keyword("DESC")
                if not descending:
                    self.keyword("ASC")
                nulls_first = not descending
                if self.keyword("NULLS"):
                    nulls_first = self.keyword("FIRST")
                    if not nulls_first:
                        self.expect("LAST")
                order.append((name, descending, nulls_first))
                if not self.next_is(","):
                    break
                self.at += 1
        limit = None
        if self.keyword("LIMIT"):
            token = self.take()
            if token.kind != "number" or "." in token.text:
                raise malformed(f"LIMIT needs a whole number, got {token.text!r}")
            limit = int(token.text)
        rest = self.peek()
        if rest is not None:
            raise malformed(f"unexpected token: {rest.text!r}")
        return Query(sobject, names, where, order, limit)

    def condition(self) -> Callable[[Record], bool]:
        parts = [self.term()]
        joiner = None
        while True:
            token = self.peek()
            if not (token and token.kind == "word" and token.text.upper() in ("AND", "OR")):
                break
            word = token.text.upper()
            if joiner is not None and word != joiner:
                raise malformed(
                    f"unexpected token: '{token.text}' (use parentheses to mix AND and OR)"
                )
            joiner = word
            self.at += 1
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        if joiner == "AND":
            return lambda record: all(part(record) for part in parts)
        return lambda record: any(part(record) for part in parts)

    def term(self) -> Callable[[Record], bool]:
        token = self.peek()
        if token and token.text == "(":
            self.at += 1
            inner = self.condition()
            if self.take().text != ")":
                raise malformed("missing closing parenthesis")
            return inner
        if self.keyword("NOT"):
            inner = self.term()
            return lambda record: not inner(record)
        name = self.field()
        field = self.fields[name]
        if self.keyword("LIKE"):
            literal = self.literal(like=True)
            if literal.kind != "string" or field.type not in _TEXT_TYPES:
                raise malformed(
                    f"invalid operator on field {name}: LIKE needs a text field and a "
                    "quoted pattern"
                )
            pattern = _like_regex(literal.value)
            return lambda record: (
                record.get(name) is not None and bool(pattern.fullmatch(str(record[name])))
            )
        negate = self.keyword("NOT")
        if self.keyword("IN"):
            if self.take().text != "(":
                raise malformed("IN needs a parenthesised list")
            values = [self.checked(name, field, self.literal())]
            while self.next_is(","):
                self.at += 1
                values.append(self.checked(name, field, self.literal()))
            if self.take().text != ")":
                raise malformed("missing closing parenthesis")
            return lambda record: (
                (any(_equal(field, record.get(name), v) for v in values)) != negate
            )
        if negate:
            raise malformed("NOT must be followed by IN here")
        operator = self.take()
        if operator.kind != "op":
            raise malformed(f"unexpected token: {operator.text!r}")
        value = self.checked(name, field, self.literal())
        return _comparison(name, field, operator.text, value)

    def literal(self, *, like: bool = False) -> Literal:
        token = self.take()
        if token.kind == "string":
            return Literal("string", _unquote(token.text, like=like), token.text)
        if token.kind == "datetime":
            return Literal(
                "datetime", datetime.fromisoformat(token.text.replace("Z", "+00:00")), token.text
            )
        if token.kind == "date":
            return Literal("date", date.fromisoformat(token.text), token.text)
        if token.kind == "number":
            return Literal("number", float(token.text), token.text)
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return Literal("boolean", token.text.lower() == "true", token.text)
        if token.kind == "word" and token.text.lower() == "null":
            return Literal("null", None, token.text)
        raise malformed(
            f"unexpected token: {token.text!r} (the fake knows no date literals or bind variables)"
        )

    def checked(self, name: str, field: Field, literal: Literal) -> Any:
        """The literal's value when its type fits the field's, as Salesforce insists."""
        if literal.kind == "null":
            return None
        kind = field.type
        wanted = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(kind)
        if kind in _NUMBER_TYPES:
            wanted = "number"
        if wanted and literal.kind != wanted:
            quoted = " and should not be enclosed in quotes" if literal.kind == "string" else ""
            type_name = {"datetime": "dateTime", "number": "number"}.get(wanted, wanted)
            raise malformed(
                f"value of filter criterion for field '{name}' must be of type {type_name}{quoted}"
            )
        if kind in ("id", "reference"):
            if literal.kind != "string" or not ID_RE.fullmatch(literal.value):
                raise ApiError(
                    400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {literal.value}"
                )
            return literal.value
        if kind in _TEXT_TYPES and literal.kind != "string":
            raise malformed(f"value of filter criterion for field '{name}' must be a quoted string")
        return literal.value


def _like_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def sort_key(field: Field, value: Any) -> Any:
    if field.type in ("id", "reference") and isinstance(value, str):
        return value[:15]
    if isinstance(value, str):
        return value.casefold()
    return value


def _equal(field: Field, stored: Any, wanted: Any) -> bool:
    if stored is None or wanted is None:
        return stored is None and wanted is None
    return bool(sort_key(field, stored) == sort_key(field, wanted))


def _comparison(name: str, field: Field, operator: str, wanted: Any) -> Callable[[Record], bool]:
    def test(record: Record) -> bool:
        stored = record.get(name)
        if operator == "=":
            return _equal(field, stored, wanted)
        if operator in ("!=", "<>"):
            return not _equal(field, stored, wanted)
        if stored is None or wanted is None:
            return False
        left, right = sort_key(field, stored), sort_key(field, wanted)
        return bool(
            {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[
                operator
            ]
        )

    return test


def parse(text: str, schema: dict[str, dict[str, Field]]) -> Query:
    return _Parser(text, schema).parse()


def run(query: Query, records: list[Record], schema: dict[str, dict[str, Field]]) -> list[Record]:
    """The records the query selects, ordered and limited (all fields kept)."""
    fields = schema[query.sobject]
    found = [r for r in records if query.where is None or query.where(r)]
    for name, descending, nulls_first in reversed(query.order):
        present = sorted(
            (r for r in found if r.get(name) is not None),
            key=lambda r: sort_key(fields[name], r[name]),
            reverse=descending,
        )
        absent = [r for r in found if r.get(name) is None]
        found = absent + present if nulls_first else present + absent
    return found[: query.limit] if query.limit is not None else found
