"""Hypothesis strategies for domain objects, in one place."""

from __future__ import annotations

from hypothesis import strategies as st

from domain.lead import LeadSubmission, Owner
from domain.routing import RepCandidate

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


@st.composite
def rep_lists(draw: st.DrawFn, min_size: int = 1, max_size: int = 8) -> list[RepCandidate]:
    count = draw(st.integers(min_value=min_size, max_value=max_size))
    weights = draw(st.lists(st.integers(min_value=0, max_value=4), min_size=count, max_size=count))
    return [
        RepCandidate(
            owner=Owner(rep_id=i + 1, name=f"Rep {i + 1}", email=f"r{i + 1}@x.com"), weight=w
        )
        for i, w in enumerate(weights)
    ]
