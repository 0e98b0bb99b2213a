"""Whatever a client sends, the intake's parsing and validation answer with a field-level
refusal or a valid submission, never an unexpected exception (which would be a 500)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.lead import LeadSubmission
from web.submission import IntakeError, parse_body, validate_fields

FIELDS = [*LeadSubmission.model_fields, "_hp", "_redirect", "junk"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
payloads = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6) | json_values


def _outcome(content_type: str, body: bytes) -> str:
    try:
        data, _ = parse_body(content_type, body)
        _submission, _, bot = validate_fields(data, host="leads.example")
    except IntakeError as err:
        assert err.errors and all(e["field"] and e["message"] for e in err.errors)
        return "refused"
    return "dropped" if bot else "valid"


@settings(max_examples=300, deadline=None)
@given(payloads)
def test_any_json_is_refused_precisely_or_accepted(payload: Any) -> None:
    _outcome("application/json", json.dumps(payload).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_refused_precisely_or_accepted(body: bytes) -> None:
    _outcome("application/json", body)
    _outcome("application/x-www-form-urlencoded", body)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FIELDS), st.text(max_size=40)), max_size=8))
def test_any_form_is_refused_precisely_or_accepted(pairs: list[tuple[str, str]]) -> None:
    from urllib.parse import urlencode

    _outcome("application/x-www-form-urlencoded", urlencode(pairs).encode())
