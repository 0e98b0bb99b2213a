"""Hypothesis strategies for domain objects, in one place."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time

from hypothesis import strategies as st

from domain.config import (
    AllOf,
    AnyOf,
    Assign,
    Condition,
    EngagementConfig,
    GradeConfig,
    Member,
    Op,
    Period,
    PoolConfig,
    PoolFallback,
    RepConfig,
    Rule,
    ScoringConfig,
    ScoringRule,
    Strategy,
    Territory,
    Weekday,
    When,
    WorkingHours,
)
from domain.lead import LeadSubmission

words = st.text(
    alphabet=st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12
)

emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    words,
    words,
    st.sampled_from(["com", "io", "de", "org"]),
)

titles = st.sampled_from(
    [
        None,
        "VP Sales",
        "Head of Growth",
        "Engineer",
        "Founder & CEO",
        "Marketing Director",
        "intern",
    ]
)

submissions = st.builds(
    LeadSubmission,
    email=emails,
    first_name=st.none() | words,
    company=st.none() | words,
    title=titles,
    phone=st.none() | st.sampled_from(["+1 415 555 0100", "030 1234567"]),
    company_size=st.none() | st.integers(min_value=1, max_value=100_000),
    source=st.none() | st.sampled_from(["demo", "pricing", "newsletter", "webinar"]),
    utm_medium=st.none() | st.sampled_from(["cpc", "email", "organic"]),
    message=st.none() | st.text(max_size=50),
)


# ----------------------------------------------------------------- routing engine
# Configurations, leads and moments for tests/test_routing_engine.py. Values come from
# small vocabularies, in every spelling a form or an admin may use, so that generated
# conditions match generated leads often enough to say something.

TIMEZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Pacific/Auckland",
)
FIRST_DAY = date(2026, 1, 1)
LAST_DAY = date(2026, 3, 31)

START = datetime(2026, 1, 1, tzinfo=UTC)
# Any second of the first quarter of 2026, in UTC.
moments = st.integers(min_value=0, max_value=90 * 86400 - 1).map(
    lambda s: START + timedelta(seconds=s)
)


@st.composite
def working_hours(draw: st.DrawFn) -> WorkingHours:
    start = draw(st.integers(min_value=0, max_value=22))
    return WorkingHours(
        days=draw(st.lists(st.sampled_from(list(Weekday)), min_size=1, max_size=7, unique=True)),
        start=dt_time(start),
        end=dt_time(draw(st.integers(min_value=start + 1, max_value=23))),
    )


@st.composite
def periods(draw: st.DrawFn) -> Period:
    start = draw(st.dates(min_value=FIRST_DAY, max_value=LAST_DAY))
    return Period.model_validate(
        {"from": start, "until": start + timedelta(days=draw(st.integers(0, 10)))}
    )


@st.composite
def rep_configs(draw: st.DrawFn, email: str, *, always_available: bool = False) -> RepConfig:
    """A rep; with ``always_available`` active, without working hours or time off."""
    return RepConfig(
        email=email,
        name=email.partition("@")[0].upper(),
        timezone=draw(st.sampled_from(TIMEZONES)),
        working_hours=None if always_available else draw(st.none() | working_hours()),
        out_of_office=[] if always_available else draw(st.lists(periods(), max_size=2)),
        active=True if always_available else draw(st.sampled_from([True, True, True, False])),
    )


@st.composite
def pools(
    draw: st.DrawFn,
    *,
    strategy: Strategy | None = None,
    min_members: int = 1,
    max_members: int = 6,
    caps: bool = True,
    always_available: bool = False,
) -> tuple[PoolConfig, dict[str, RepConfig]]:
    """A pool named "p" and its reps (members and a spare rep for the fallback)."""
    count = draw(st.integers(min_value=min_members, max_value=max_members))
    emails = [f"r{i}@example.com" for i in range(count)]
    reps = {e: draw(rep_configs(e, always_available=always_available)) for e in emails}
    spare = "spare@example.com"
    reps[spare] = draw(rep_configs(spare, always_available=always_available))
    members = [
        Member(
            rep=e,
            weight=draw(
                st.sampled_from([0, 1, 1, 2, 3, 5])
                if not always_available
                else st.integers(min_value=1, max_value=5)
            ),
            daily_cap=draw(st.none() | st.integers(min_value=0, max_value=6)) if caps else None,
            weekly_cap=draw(st.none() | st.integers(min_value=0, max_value=20)) if caps else None,
        )
        for e in emails
    ]
    fallback = draw(
        st.none()
        | st.builds(PoolFallback, queue=st.just("triage"))
        | st.builds(PoolFallback, rep=st.just(spare))
    )
    pool = PoolConfig(
        name="p",
        strategy=strategy or draw(st.sampled_from(list(Strategy))),
        timezone=draw(st.sampled_from(TIMEZONES)),
        members=members,
        fallback=fallback,
    )
    return pool, reps


# Spellings of the same values, as leads and admins write them.
COUNTRIES = (
    "DE",
    "Germany",
    "deu",
    "AT",
    "Austria",
    "US",
    "United States",
    "usa",
    "GB",
    "United Kingdom",
    "FR",
    "fr",
    "Narnia",
)
STATES = ("California", "CA", "ca", "New York", "NY", "Texas", "Bavaria", "BY")
POSTAL_CODES = ("10115", "SW1A 1AA", "sw1a 2bb", "94105", "80331", "EC1A 1BB")
SOURCES = ("demo", "Demo", "pricing", "newsletter", "webinar", "Partner")
INDUSTRIES = ("Software", "software", "Retail", "Finance", "Health Care")
JOB_TITLES = (
    "VP Sales",
    "vp marketing",
    "Head of Growth",
    "Engineer",
    "Founder & CEO",
    "Marketing Director",
    "intern",
)
TIERS = ("gold", "Gold", "silver", "3")
TERRITORIES = (
    Territory(name="DACH", countries=["DE", "AT", "CH"]),
    Territory(name="US West", countries=["US"], states=["California", "WA", "OR"]),
    Territory(name="London", countries=["GB"], postal_prefixes=["SW1A", "EC"]),
    Territory(name="Munich", postal_prefixes=["80"]),
)
TEXT_FIELDS = (
    "country",
    "state",
    "postal_code",
    "source",
    "industry",
    "title",
    "extra.tier",
    "email_domain",
    "grade",
)
VALUES: dict[str, tuple[object, ...]] = {
    "country": COUNTRIES,
    "state": STATES,
    "postal_code": ("10115", "SW1A 1AA", "sw1a1aa", "94105", 80331),
    "source": SOURCES,
    "industry": INDUSTRIES,
    "title": JOB_TITLES,
    "extra.tier": (*TIERS, 3),
    "email_domain": ("acme.com", "ACME.com", "gmail.com"),
    "grade": ("hot", "Warm", "cold"),
}
NEEDLES = {
    "country": ("D", "us"),
    "state": ("c", "Y"),
    "postal_code": ("SW1A 1", "80", "10"),
    "source": ("dem", "PART"),
    "industry": ("soft", "care"),
    "title": ("vp", "Sales", "ceo"),
    "extra.tier": ("gol", "3"),
    "email_domain": ("acme", ".com"),
    "grade": ("h", "m"),
}
PATTERNS = ("^vp", "director|head", "ceo$", r"\d{3}", "^(de|at)$", "sales")
NUMERIC = ("company_size", "score", "extra.seats")


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    op = draw(st.sampled_from(list(Op)))
    if op in (Op.gt, Op.gte, Op.lt, Op.lte):
        return Condition(
            field=draw(st.sampled_from(NUMERIC)),
            op=op,
            value=draw(st.sampled_from([0, 10, 50, 99.5, 250, 1000])),
        )
    if op is Op.between:
        low = draw(st.integers(min_value=0, max_value=500))
        return Condition(
            field=draw(st.sampled_from(NUMERIC)),
            op=op,
            value=[low, low + draw(st.integers(min_value=0, max_value=1000))],
        )
    if op in (Op.empty, Op.not_empty):
        return Condition(field=draw(st.sampled_from(TEXT_FIELDS + NUMERIC)), op=op)
    if op is Op.in_territory:
        return Condition(
            field="country", op=op, value=draw(st.sampled_from([t.name for t in TERRITORIES]))
        )
    if op is Op.regex:
        return Condition(
            field=draw(st.sampled_from(TEXT_FIELDS)), op=op, value=draw(st.sampled_from(PATTERNS))
        )
    if op in (Op.contains, Op.starts_with, Op.ends_with):
        name = draw(st.sampled_from(TEXT_FIELDS))
        return Condition(field=name, op=op, value=draw(st.sampled_from(NEEDLES[name])))
    if op in (Op.eq, Op.ne) and draw(st.booleans()):
        return Condition(
            field=draw(st.sampled_from(NUMERIC)), op=op, value=draw(st.sampled_from([10, 50, 250]))
        )
    name = draw(st.sampled_from(TEXT_FIELDS))
    if op in (Op.in_, Op.not_in):
        values = draw(st.lists(st.sampled_from(VALUES[name]), min_size=1, max_size=3))
        return Condition(field=name, op=op, value=values)
    return Condition(field=name, op=op, value=draw(st.sampled_from(VALUES[name])))


whens: st.SearchStrategy[When] = st.recursive(
    conditions(),
    lambda children: (
        st.builds(AllOf, all=st.lists(children, min_size=1, max_size=3))
        | st.builds(AnyOf, any=st.lists(children, min_size=1, max_size=3))
    ),
    max_leaves=5,
)


@st.composite
def rule_lists(draw: st.DrawFn, max_size: int = 12) -> list[Rule]:
    """Rules in order, some disabled, some without conditions (they match every lead)."""
    count = draw(st.integers(min_value=0, max_value=max_size))
    return [
        Rule(
            name=f"rule {i}",
            enabled=draw(st.sampled_from([True, True, True, False])),
            when=draw(st.one_of(whens, st.none()) if draw(st.integers(0, 9)) == 0 else whens),
            assign=Assign(rep="r0@example.com"),
        )
        for i in range(count)
    ]


routing_leads = st.builds(
    LeadSubmission,
    email=st.sampled_from(["ann@acme.com", "BOB@Acme.com", "cy@gmail.com", "di@other.io"]),
    title=st.none() | st.sampled_from(JOB_TITLES),
    country=st.none() | st.sampled_from(COUNTRIES),
    state=st.none() | st.sampled_from(STATES),
    postal_code=st.none() | st.sampled_from(POSTAL_CODES),
    company_size=st.none() | st.sampled_from([1, 10, 49, 50, 51, 250, 999, 1000, 5000]),
    industry=st.none() | st.sampled_from(INDUSTRIES),
    source=st.none() | st.sampled_from(SOURCES),
    extra=st.fixed_dictionaries(
        {},
        optional={
            "tier": st.sampled_from(TIERS),
            "seats": st.sampled_from(["5", "50", "250.5", "many"]),
        },
    ),
)
scores = st.none() | st.integers(min_value=0, max_value=100)
grades = st.none() | st.sampled_from(["hot", "warm", "cold"])


# ----------------------------------------------------------------- scoring, business hours
# For tests/test_scoring.py and tests/test_business_hours.py.


def _tests_no_score(node: When) -> bool:
    if isinstance(node, AllOf | AnyOf):
        return all(_tests_no_score(c) for c in (node.all if isinstance(node, AllOf) else node.any))
    return node.field not in ("score", "grade")


# Whole seconds from one second to ten years: what a ``Duration`` field holds.
durations = st.integers(min_value=1, max_value=3650 * 86400).map(lambda s: timedelta(seconds=s))
# Up to a few weeks of working time, in minutes or seconds.
working_durations = st.integers(min_value=0, max_value=21 * 86400).map(
    lambda s: timedelta(seconds=s)
)
ENGAGEMENT_KINDS = ("email_opened", "link_clicked", "page_visited", "meeting_requested", "other")
engagement_events = st.lists(
    st.tuples(st.sampled_from(ENGAGEMENT_KINDS), moments), min_size=0, max_size=8
)
holiday_lists = st.lists(st.dates(min_value=FIRST_DAY, max_value=LAST_DAY), max_size=10)


@st.composite
def scoring_configs(draw: st.DrawFn) -> ScoringConfig:
    """A scoring model of generated rules (never testing the score or grade), grades
    whose lowest starts at 0, and a half-life of an hour to a year."""
    count = draw(st.integers(min_value=0, max_value=10))
    rules = [
        ScoringRule(
            name=f"rule {i}",
            points=draw(st.integers(min_value=-100, max_value=100).filter(bool)),
            when=draw(whens.filter(_tests_no_score)),
        )
        for i in range(count)
    ]
    max_score = draw(st.integers(min_value=1, max_value=1000))
    minimums = draw(
        st.lists(st.integers(min_value=1, max_value=max_score), max_size=4, unique=True)
    )
    grades = [GradeConfig(name=f"g{m}", min_score=m) for m in [0, *minimums]]
    return ScoringConfig(
        rules=rules,
        engagement=EngagementConfig(
            half_life=timedelta(seconds=draw(st.integers(3600, 365 * 86400))),
            other_points=draw(st.integers(min_value=-100, max_value=100)),
        ),
        grades=draw(st.permutations(grades)),
        max_score=max_score,
    )
