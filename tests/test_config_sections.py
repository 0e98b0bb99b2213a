"""The configuration's lifecycle sections: durations, each pool's SLA and holidays,
scoring, nurture and the hand-off. Optional with defaults (an older document stays
valid), checked with a precise location and line, and exported canonically."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import yaml
from hypothesis import given

from domain.config import (
    Assign,
    ConfigError,
    NurtureConfig,
    PoolConfig,
    Problem,
    RoutingConfig,
    ScoringConfig,
    SlaConfig,
)
from domain.config_yaml import dump_yaml, load_yaml
from domain.durations import format_duration, parse_duration
from tests.strategies import durations

FULL = """\
reps:
  - {email: ann@example.com, name: Ann}
  - {email: bo@example.com, name: Bo}
pools:
  - name: Inbound
    timezone: Europe/Berlin
    members: [{rep: ann@example.com}]
    sla: {remind_after: 10m, reassign_after: 1h30m, escalate_after: 4h, business_hours: true}
    holidays: [2026-12-25, 2026-12-26]
  - name: Account Management
    members: [{rep: bo@example.com}]
territories:
  - {name: DACH, countries: [DE, AT, CH]}
rules:
  - name: Hot leads
    when: {field: grade, op: eq, value: top}
    assign: {pool: Inbound}
fallback: {pool: Inbound}
scoring:
  rules:
    - name: DACH
      points: 15
      when: {field: country, op: in_territory, value: DACH}
    - name: senior
      points: 20
      when:
        any:
          - {field: title, op: regex, value: '\\b(vp|head)\\b'}
          - {field: title, op: contains, value: founder}
    - name: free mail
      points: -10
      when: {field: free_mail, op: eq, value: true}
  engagement:
    half_life: 1w
    points: {email_opened: 1, demo_watched: 12}
    other_points: 0
  grades:
    - {name: top, min_score: 50}
    - {name: rest, min_score: 0}
  max_score: 80
nurture:
  no_meeting_after: 10d
  recycle_score: 50
  cool_off: 60d
  lost_cool_off: 120d
  stale_after: 3w
  list_name: Spring nurture
handoff:
  pool: Account Management
  onboarding_tasks:
    - {subject: Kick-off call, due_in: 36h}
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text)
    return caught.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def changed(old: str, new: str) -> str:
    assert FULL.count(old) == 1, old
    return FULL.replace(old, new)


# ------------------------------------------------------------------------------ reading


def test_a_document_with_every_section_reads_as_written() -> None:
    config = load_yaml(FULL)
    inbound = config.pools[0]
    assert inbound.sla == SlaConfig(
        remind_after=timedelta(minutes=10),
        reassign_after=timedelta(hours=1, minutes=30),
        escalate_after=timedelta(hours=4),
        business_hours=True,
    )
    assert inbound.holidays == [date(2026, 12, 25), date(2026, 12, 26)]
    assert config.pools[1].sla == SlaConfig()  # the defaults: 15m, 30m, 1h, 2
    assert config.scoring.engagement.half_life == timedelta(days=7)
    assert config.scoring.engagement.points == {"email_opened": 1, "demo_watched": 12}
    assert config.nurture.stale_after == timedelta(days=21)
    assert config.handoff.pool == "Account Management"
    assert config.handoff.onboarding_tasks[0].due_in == timedelta(hours=36)


def test_an_older_document_gets_every_default() -> None:
    config = RoutingConfig.model_validate(
        {"pools": [{"name": "P"}], "fallback": {"pool": "P"}}  # no new section anywhere
    )
    assert config.scoring == ScoringConfig()
    assert config.nurture == NurtureConfig()
    assert config.nurture.cool_off == timedelta(days=90)
    assert config.nurture.lost_cool_off == timedelta(days=180)
    assert config.handoff.pool is None
    assert [t.subject for t in config.handoff.onboarding_tasks] == [
        "Kick-off call with the new customer",
        "Send the welcome pack and access details",
    ]
    assert config.pools[0].sla.remind_after == timedelta(minutes=15)
    assert config.pools[0].holidays == []
    assert [(g.name, g.min_score) for g in config.scoring.grades] == [
        ("hot", 60),
        ("warm", 30),
        ("cold", 0),
    ]


def test_export_import_export_of_every_section_is_byte_identical() -> None:
    exported = dump_yaml(load_yaml(FULL))
    assert dump_yaml(load_yaml(exported)) == exported
    assert RoutingConfig.model_validate(yaml.safe_load(exported)) == load_yaml(FULL)
    assert (
        "    sla: {remind_after: 10m, reassign_after: 1h30m, escalate_after: 4h, "
        "max_reassignments: 2, business_hours: true}\n" in exported
    )
    assert "    holidays: [2026-12-25, 2026-12-26]\n" in exported
    assert "    half_life: 7d\n" in exported  # 1w, in the canonical form
    assert "      when: {field: country, op: in_territory, value: DACH}\n" in exported
    assert "    - {subject: Kick-off call, due_in: 1d12h}\n" in exported
    top = [line for line in exported.splitlines() if line and not line.startswith(" ")]
    assert top[-3:] == ["scoring:", "nurture:", "handoff:"]
    # The JSON form (API, database) holds durations as the same text.
    assert load_yaml(FULL).dump()["nurture"]["cool_off"] == "60d"


@given(durations)
def test_a_duration_reads_back_from_its_canonical_form(duration: timedelta) -> None:
    assert parse_duration(format_duration(duration)) == duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        (" 2D 4H ", timedelta(days=2, hours=4)),
        ("3650d", timedelta(days=3650)),
    ],
)
def test_durations_are_read_in_every_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["15", "15 minutes", "1.5h", "m", "", "1m1h", "-5m", "0s"])
def test_a_bad_duration_says_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="use a duration like 90s, 15m, 2h or 7d"):
        parse_duration(text)
    with pytest.raises(ValueError, match="too long: at most 3650d"):
        parse_duration("3651d")


# ------------------------------------------------------------------------------ problems


@pytest.mark.parametrize(
    ("old", "new", "location", "needle", "message"),
    [
        (
            "  cool_off: 60d",
            "  cool_off: 60",
            "nurture.cool_off",
            "cool_off: 60",
            "60 is not a duration: use a duration like 90s, 15m, 2h or 7d",
        ),
        (
            "  stale_after: 3w",
            "  stale_after: three weeks",
            "nurture.stale_after",
            "three weeks",
            "'three weeks' is not a duration: use a duration like 90s, 15m, 2h or 7d",
        ),
        (
            "  pool: Account Management",
            "  pool: Customer Success",
            "handoff.pool",
            "pool: Customer Success",
            "unknown pool 'Customer Success'",
        ),
        (
            "      when: {field: free_mail, op: eq, value: true}",
            "      when: {field: score, op: gte, value: 50}",
            "scoring.rules[2].when.field",
            "field: score",
            "a scoring rule cannot test score: it is what scoring computes (use it in "
            "routing rules)",
        ),
        (
            "          - {field: title, op: contains, value: founder}",
            "          - {field: grade, op: eq, value: top}",
            "scoring.rules[1].when.any[1].field",
            "- {field: grade",
            "a scoring rule cannot test grade: it is what scoring computes (use it in "
            "routing rules)",
        ),
        (
            "    - {name: rest, min_score: 0}",
            "    - {name: rest, min_score: 10}",
            "scoring.grades",
            "grades:",
            "the lowest grade must have min_score 0, so that every lead has a grade (the "
            "lowest is 'rest' at 10)",
        ),
        (
            "      when: {field: country, op: in_territory, value: DACH}",
            "      when: {field: country, op: in_territory, value: Nordics}",
            "scoring.rules[0].when.value",
            "value: Nordics",
            "unknown territory 'Nordics'",
        ),
        (
            "    sla: {remind_after: 10m, reassign_after: 1h30m,",
            "    sla: {remind_after: 2h, reassign_after: 1h30m,",
            "pools[0].sla",
            "sla:",
            "remind_after (2h) must not be longer than reassign_after (1h30m): remind, "
            "then reassign, then escalate",
        ),
        (
            "    holidays: [2026-12-25, 2026-12-26]",
            "    holidays: [2026-12-25, 2026-12-26,\n      2026-12-25]",
            "pools[0].holidays[2]",
            "      2026-12-25]",
            "2026-12-25 is listed twice (also holidays[0])",
        ),
        (
            "    - {name: rest, min_score: 0}",
            "    - {name: rest, min_score: 0}\n    - {name: TOP, min_score: 20}",
            "scoring.grades[2].name",
            "name: TOP",
            "duplicate grade 'TOP' (also grades[0])",
        ),
        (
            "  recycle_score: 50",
            "  recycle_score: 90",
            "nurture.recycle_score",
            "recycle_score: 90",
            "90 can never be reached: scores stop at scoring.max_score 80",
        ),
        (
            "    when: {field: grade, op: eq, value: top}",
            "    when: {field: grade, op: eq, value: platinum}",
            "rules[0].when.value",
            "value: platinum",
            "unknown grade 'platinum' (the grades of scoring: top, rest)",
        ),
        (
            "      points: -10\n",
            "      points: 0\n",
            "scoring.rules[2].points",
            "points: 0",
            "a rule worth 0 points changes nothing: give -100..100, not 0",
        ),
        (
            "    points: {email_opened: 1, demo_watched: 12}",
            "    points: {Email Opened: 1, demo_watched: 12}",
            "scoring.engagement.points",
            "points: {Email",
            "'Email Opened' is not a kind of engagement: use snake_case like email_opened",
        ),
        (
            "    - {subject: Kick-off call, due_in: 36h}",
            "    - {subject: Kick-off call, due_in: 0m}",
            "handoff.onboarding_tasks[0].due_in",
            "due_in: 0m",
            "'0m' is too short: it must be longer than zero (use a duration like 90s, 15m, "
            "2h or 7d)",
        ),
    ],
    ids=[
        "duration without unit",
        "duration in words",
        "unknown handoff pool",
        "scoring rule tests score",
        "nested scoring rule tests grade",
        "no grade at 0",
        "unknown territory in scoring",
        "sla out of order",
        "holiday twice",
        "grade twice",
        "recycle score out of reach",
        "routing rule names an unknown grade",
        "rule worth nothing",
        "engagement kind not snake_case",
        "zero duration",
    ],
)
def test_a_problem_names_its_location_line_and_the_fix(
    old: str, new: str, location: str, needle: str, message: str
) -> None:
    text = changed(old, new)
    assert [(p.location, p.line, p.message) for p in problems_of(text)] == [
        (location, line_of(text, needle), message)
    ]


def test_sections_are_optional_in_python_too() -> None:
    pool = PoolConfig(name="P", sla=SlaConfig(business_hours=True))
    config = RoutingConfig(pools=[pool], fallback=Assign(pool="P"))
    assert config.pools[0].sla.escalate_after == timedelta(hours=1)
    with pytest.raises(
        ValueError, match=r"reassign_after \(2h\) must not be longer than escalate_after \(1h\)"
    ):
        SlaConfig(reassign_after=timedelta(hours=2))
